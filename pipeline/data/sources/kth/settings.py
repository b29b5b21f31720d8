"""``datasets.<name>.data`` of the KTH source (keys documented in ``kth/__init__.py``) and its
twin's ``datasets.<name>.sample`` knobs."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.sources.base import DataSettings, Distinct, NonEmpty, Sha256, Url, invalid

URL = "https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/kth_action.zip"
SPLIT_KEYS = {"train": "train_persons", "val": "val_persons", "test": "test_persons"}
Persons = Annotated[list[Annotated[int, Field(ge=1, le=25)]], NonEmpty, Distinct]


class KTHSettings(DataSettings):
    name: str = "kth"
    T_in: PositiveInt
    T_out: PositiveInt
    image_size: Annotated[int, Field(ge=8)]
    train_persons: Persons
    val_persons: Persons
    test_persons: Persons
    url: Url = URL
    sha256: Sha256 = None

    @model_validator(mode="after")
    def _disjoint(self):
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = sorted(set(self.persons(a)) & set(self.persons(b)))
            if shared:
                raise invalid((SPLIT_KEYS[b],), f"persons not in {SPLIT_KEYS[a]} (the person lists "
                                                f"must be disjoint; {shared} are in both)", self.persons(b))
        return self

    def persons(self, split: str) -> list[int]:
        return getattr(self, SPLIT_KEYS[split])


class KTHSample(Settings):
    frames: PositiveInt = 36            # base clip length; clips get 0-10 extra frames
    scenarios: PositiveInt = 1          # clips per person and action
    persons_per_split: PositiveInt = 1  # the first persons of each list
