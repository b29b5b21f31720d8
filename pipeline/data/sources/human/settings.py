"""``datasets.<name>.data`` of the Human3.6M source (keys documented in ``human/__init__.py``) and
its twin's ``datasets.<name>.sample`` knobs."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.sources.base import DataSettings, Fraction, Url

_META = ("https://raw.githubusercontent.com/chengtan9907/OpenSTL/"
         "a0f4606afe395a0442d210d352bb263e55805f30/tools/prepare_data/meta/human/")
LISTS = {"train": "train.txt", "test": "test.txt"}


class HumanSettings(DataSettings):
    name: str = "human"
    T_in: PositiveInt
    T_out: PositiveInt
    frame_step: PositiveInt
    image_size: Annotated[int, Field(ge=8)]
    val_fraction: Fraction
    val_seed: Annotated[int, Field(ge=0)]
    train_list_url: Url = _META + LISTS["train"]
    test_list_url: Url = _META + LISTS["test"]


class HumanSample(Settings):
    videos: PositiveInt = 3
    frames: PositiveInt = 16            # stored frames per video
    train_windows: PositiveInt = 6      # lines per video
    test_windows: PositiveInt = 2
