"""``datasets.<name>.data`` of the custom source (keys documented in ``custom/__init__.py``) and
its twin's ``datasets.<name>.sample`` knobs."""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data import calendar as cal
from pipeline.data.prepared import SPLITS
from pipeline.data.sources.base import DataSettings, Distinct, NonEmpty, SplitStride, Stride, invalid


def _date_range(value: Any) -> tuple[cal.DateSetting, cal.DateSetting]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise PydanticCustomError("expected", "[start, end] dates")
    try:
        start, end = cal.date_setting(value[0]), cal.date_setting(value[1])
    except ValueError as exc:
        raise PydanticCustomError("expected", str(exc)) from None
    if start.fields >= end.end_fields():
        raise PydanticCustomError("expected", "[start, end] with start not after end")
    return start, end


DateRange = Annotated[tuple[cal.DateSetting, cal.DateSetting], PlainValidator(_date_range)]


class SplitDates(Settings):
    train: DateRange
    val: DateRange
    test: DateRange

    @model_validator(mode="after")
    def _disjoint(self):
        for i, a in enumerate(SPLITS):  # field tuples order dates the same way in every calendar
            for b in SPLITS[i + 1:]:
                (a0, a1), (b0, b1) = getattr(self, a), getattr(self, b)
                if a0.fields < b1.end_fields() and b0.fields < a1.end_fields():
                    raise invalid((b,), f"dates not overlapping {a} [{a0.text}, {a1.text}]",
                                  [b0.text, b1.text])
        return self


def _degrees(low: float, high: float, names: str, ordered: bool):
    def check(value: Any) -> tuple[float, float]:
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high for v in value)
        if not ok or (ordered and value[0] > value[1]):
            raise PydanticCustomError("expected", f"[{names}] in degrees")
        return float(value[0]), float(value[1])
    return PlainValidator(check)


class Box(Settings):
    lat: Annotated[tuple[float, float] | None, _degrees(-90, 90, "south, north", True)] = None
    lon: Annotated[tuple[float, float] | None, _degrees(-360, 360, "west, east", False)] = None

    def bounds(self) -> dict[str, tuple[float, float]]:
        """The axes given, ``{axis: (low, high)}``."""
        return {a: v for a, v in (("lat", self.lat), ("lon", self.lon)) if v is not None}

    @model_validator(mode="before")
    @classmethod
    def _some(cls, value: Any) -> Any:
        if isinstance(value, dict) and not value:
            raise PydanticCustomError("expected", "{lat: [south, north], lon: [west, east]}")
        return value


Name = Annotated[str, AfterValidator(lambda v: v or _missing_name())]


def _missing_name():
    raise PydanticCustomError("expected", "a non-empty name")


class CustomSettings(DataSettings):
    name: str = "<name>"
    path: Name
    variables: Annotated[list[Name], NonEmpty, Distinct]
    time: Name = "time"
    splits: SplitDates
    T_in: PositiveInt
    T_out: PositiveInt
    step: PositiveInt = 1
    stride: Stride = SplitStride()
    levels: Annotated[list[int | float | str], NonEmpty, Distinct] | None = None
    level_dim: Name = "level"
    time_chunk: PositiveInt = 1024
    box: Box | None = None

    def box_bounds(self) -> dict[str, tuple[float, float]]:
        return self.box.bounds() if self.box else {}

    def dates(self, split: str) -> tuple[cal.DateSetting, cal.DateSetting]:
        return getattr(self.splits, split)


class CustomSample(Settings):
    frames_per_split: PositiveInt = 48
    interval: str = "1h"   # a pandas duration: 1h, 90min, 1D
    height: PositiveInt = 32
    width: PositiveInt = 64

    @model_validator(mode="after")
    def _interval(self):
        if self.step() <= np.timedelta64(0):
            raise invalid(("interval",), "a positive duration such as 1h or 1D", self.interval)
        return self

    def step(self) -> np.timedelta64:
        import pandas as pd

        try:
            return pd.Timedelta(self.interval).to_timedelta64()
        except ValueError:
            raise invalid(("interval",), "a duration such as 1h or 1D", self.interval) from None
