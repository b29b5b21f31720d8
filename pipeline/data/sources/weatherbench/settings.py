"""``datasets.<name>.data`` of the WeatherBench source (keys documented in
``weatherbench/__init__.py``), its variables and remotes, and the twin's sample knobs."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.prepared import SPLITS
from pipeline.data.sources.base import DataSettings, Distinct, NonEmpty, SplitStride, Stride, invalid

# long name -> (short name inside the files, has pressure levels, units)
VARIABLES: dict[str, tuple[str, bool, str]] = {
    "2m_temperature": ("t2m", False, "K"),
    "10m_u_component_of_wind": ("u10", False, "m s**-1"),
    "10m_v_component_of_wind": ("v10", False, "m s**-1"),
    "total_cloud_cover": ("tcc", False, "(0 - 1)"),
    "total_precipitation": ("tp", False, "m"),
    "toa_incident_solar_radiation": ("tisr", False, "J m**-2"),
    "relative_humidity": ("r", True, "%"),
    "temperature": ("t", True, "K"),
    "u_component_of_wind": ("u", True, "m s**-1"),
    "v_component_of_wind": ("v", True, "m s**-1"),
    "geopotential": ("z", True, "m**2 s**-2"),
    "specific_humidity": ("q", True, "kg kg**-1"),
    "potential_vorticity": ("pv", True, "K m**2 kg**-1 s**-1"),
    "vorticity": ("vo", True, "s**-1"),
}
WB1_URL = ("https://dataserv.ub.tum.de/s/m1524895/download?path=%2F5.625deg%2F{var}"
           "&files={var}_5.625deg.zip")
WB2_STORE = "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr"
REMOTES = {"wb1": (1979, 2018, 1), "wb2": (1959, 2023, 6)}  # first year, last year, hours per step


def _year_span(value: Any) -> tuple[int, int]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(y, int) and not isinstance(y, bool) for y in value)
    if not ok:
        raise PydanticCustomError("expected", "[first, last] as two integer years")
    if value[0] > value[1]:
        raise PydanticCustomError("expected", "[first, last] with the first year not after the last")
    return int(value[0]), int(value[1])


YearSpan = Annotated[tuple[int, int], PlainValidator(_year_span)]


class Years(Settings):
    train: YearSpan
    val: YearSpan
    test: YearSpan

    @model_validator(mode="after")
    def _disjoint(self):
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1:]:
                (a0, a1), (b0, b1) = getattr(self, a), getattr(self, b)
                if a0 <= b1 and b0 <= a1:
                    raise invalid((b,), f"years not overlapping {a} {[a0, a1]} (splits must not "
                                        f"share years)", [b0, b1])
        return self


def _template(value: Any) -> str:
    if not isinstance(value, str) or "{var}" not in value:
        raise PydanticCustomError("expected", "a URL template containing {var}")
    return value


class WeatherBenchSettings(DataSettings):
    name: str = "<name>"
    variables: Annotated[list[Literal[tuple(VARIABLES)]], NonEmpty, Distinct]  # type: ignore[valid-type]
    levels: Annotated[list[PositiveInt], NonEmpty, Distinct] | None = None
    years: Years
    T_in: PositiveInt
    T_out: PositiveInt
    step: PositiveInt = 1
    stride: Stride = SplitStride()
    idx_in: list[int] | None = None
    idx_out: list[int] | None = None
    remote: Literal["wb1", "wb2"] = "wb1"
    wb1_url: Annotated[str, PlainValidator(_template)] = WB1_URL
    wb2_store: Annotated[str, Field(min_length=1)] = WB2_STORE
    time_chunk: PositiveInt = 2190

    @model_validator(mode="after")
    def _consistent(self):
        first, last, native_h = REMOTES[self.remote]
        for split in SPLITS:
            y0, y1 = getattr(self.years, split)
            if y0 < first or y1 > last:
                raise invalid(("years", split), f"years the remote {self.remote} covers "
                                                f"({first}-{last})", [y0, y1])
        if self.step % native_h:
            raise invalid(("step",), f"a multiple of remote {self.remote}'s {native_h}-hourly "
                                     f"time steps", self.step)
        for key, n, n_key in (("idx_in", self.T_in, "T_in"), ("idx_out", self.T_out, "T_out")):
            value = getattr(self, key)
            if value is not None and (len(value) != n or any(b <= a for a, b in zip(value, value[1:]))):
                raise invalid((key,), f"{n} increasing integer frame indices (one per {n_key})", value)
        if self.targets()[0] <= self.inputs()[-1]:
            raise invalid(("idx_out",), f"targets after the inputs {list(self.inputs())}",
                          list(self.targets()))
        return self

    def inputs(self) -> tuple[int, ...]:
        """OpenSTL's ``idx_in``: frame indices of the inputs relative to the last input."""
        return tuple(self.idx_in) if self.idx_in is not None else tuple(range(1 - self.T_in, 1))

    def targets(self) -> tuple[int, ...]:
        return tuple(self.idx_out) if self.idx_out is not None else tuple(range(1, self.T_out + 1))

    def channel_vars(self) -> list[tuple[str, str]]:
        """(channel, variable) pairs in channel order."""
        out = []
        for var in self.variables:
            short, has_level, _ = VARIABLES[var]
            names = [f"{short}{lev}" for lev in self.levels] if has_level and self.levels else [short]
            out += [(c, var) for c in names]
        return out

    def channels(self) -> list[str]:
        return [c for c, _ in self.channel_vars()]

    def window_offsets(self) -> list[int]:
        """Frames of a window counted from its first input."""
        idx_in = self.inputs()
        return [i - idx_in[0] for i in idx_in + self.targets()]

    def split_years(self, split: str) -> range:
        y0, y1 = getattr(self.years, split)
        return range(y0, y1 + 1)

    def all_years(self) -> list[int]:
        return sorted({y for s in SPLITS for y in self.split_years(s)})


class WeatherBenchSample(Settings):
    hours_per_year: Annotated[int, Field(gt=0, le=8760)] = 96  # hours from Jan 1 of each year
