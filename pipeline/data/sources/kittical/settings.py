"""``datasets.<name>.data`` of the KittiCaltech source (keys documented in
``kittical/__init__.py``) and its twin's ``datasets.<name>.sample`` knobs."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PlainValidator
from pydantic_core import PydanticCustomError

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.sources.base import ChannelOrder, DataSettings, NonEmpty, Sha256, Url

KITTI_URL = "https://www.dropbox.com/s/rpwlnn6j39jjme4/kitti_data.zip?dl=1"
CALTECH_URL = "https://data.caltech.edu/records/f6rph-90m20/files/data_and_labels.zip?download=1"


def _size_pair(value: Any) -> tuple[int, int]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in value)
    if not ok:
        raise PydanticCustomError("expected", "[height, width], two integers >= 8")
    return int(value[0]), int(value[1])


SizePair = Annotated[tuple[int, int], PlainValidator(_size_pair)]
Lengths = Annotated[list[PositiveInt], NonEmpty]  # frames per recording


class KittiCalSettings(DataSettings):
    name: str = "kittical"
    T_in: PositiveInt
    T_out: PositiveInt
    image_size: SizePair
    caltech_frame_step: PositiveInt
    caltech_channel_order: ChannelOrder
    kitti_url: Url = KITTI_URL
    kitti_sha256: Sha256 = None
    caltech_url: Url = CALTECH_URL
    caltech_sha256: Sha256 = None
    caltech_sets: Annotated[list[Annotated[str, Field(min_length=1)]], NonEmpty] = [
        "set06", "set07", "set08", "set09", "set10"]


class KittiCalSample(Settings):
    kitti_train: Lengths = [24, 13]
    kitti_val: Lengths = [12]
    kitti_test: Lengths = [4]
    caltech_videos: PositiveInt = 2
    caltech_frames: PositiveInt = 36   # raw frames per video
    caltech_size: SizePair = (480, 640)
