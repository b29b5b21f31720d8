"""WeatherBench's on-disk layout, for the reader, the twin and the WB2 fetch alike:
``<raw_dir>/<var>/<var>_<year>_5.625deg.nc`` on the 5.625 deg grid, written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.outputs import atomic
from pipeline.data.sources.weatherbench.settings import VARIABLES

GRID = (32, 64)
LAT = np.linspace(-87.1875, 87.1875, GRID[0])
LON = np.arange(GRID[1]) * 5.625


def year_file(raw_dir: Path | str, var: str, year: int) -> Path:
    return Path(raw_dir) / var / f"{var}_{year}_5.625deg.nc"


def _write_netcdf(ds, path: Path, encoding: dict) -> None:
    with atomic(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


def write_year(path: Path, var: str, times: np.ndarray, data: np.ndarray,
               levels: list[int] | None, attrs: dict | None = None,
               significant_digits: int | None = None) -> None:
    """Write one variable-year in the WeatherBench 1 layout; ``data`` is (T, L, 32, 64).
    ``significant_digits`` quantizes before compression (the twin only, never real data)."""
    import xarray as xr

    short, _, units = VARIABLES[var]
    coords = {"time": times, "lat": LAT, "lon": LON}
    if levels:
        coords["level"] = np.asarray(levels, dtype=np.int32)
        dims = ("time", "level", "lat", "lon")
    else:
        data = data[:, 0]
        dims = ("time", "lat", "lon")
    ds = xr.Dataset({short: (dims, data.astype(np.float32), {"units": units, "long_name": var})},
                    coords=coords, attrs=attrs or {})
    encoding = {short: {"zlib": True, "complevel": 4, "shuffle": True},
                "time": {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian",
                         "dtype": "int64"}}
    if significant_digits:
        encoding[short]["significant_digits"] = significant_digits
    _write_netcdf(ds, path, encoding)
