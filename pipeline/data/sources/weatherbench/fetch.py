"""Fetching WeatherBench: the WeatherBench 1 zips from the TUM server (``remote: wb1``), or the
WeatherBench 2 ERA5 64x32 Zarr read lazily and written in the same per-year layout (``wb2``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.weatherbench.layout import GRID, write_year, year_file
from pipeline.data.sources.weatherbench.settings import VARIABLES, WeatherBenchSettings


def _flatten_into(folder: Path, var: str) -> None:
    """Some zips nest ``<var>/`` inside: move the year files up to ``folder``."""
    for p in folder.rglob(f"{var}_*_5.625deg.nc"):
        if p.parent != folder:
            os.replace(p, folder / p.name)
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def _fetch_wb1(raw_dir: Path, cfg: WeatherBenchSettings) -> list:
    from pipeline.data.download import download, extract

    results = []
    for var in cfg.variables:
        url = cfg.wb1_url.format(var=var)
        result = download(url, raw_dir / f"{var}_5.625deg.zip")
        results.append(result)
        needed = [year_file(raw_dir, var, y) for y in cfg.all_years()]
        if not result.cached or not all(p.is_file() for p in needed):
            extract(result.path, raw_dir / var, overwrite=True)
            _flatten_into(raw_dir / var, var)
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise DataError(f"{result.path} (from {url}) does not contain {len(missing)} needed "
                            f"file(s), first {missing[0]}")
    return results


def _open_wb2(store: str, chunk: int):
    import xarray as xr

    opts = None
    if store.startswith(("gs://", "gcs://")):
        try:
            import gcsfs  # noqa: F401  (xarray/fsspec pick it up by protocol)
        except ImportError:
            raise DataError(f"remote wb2 reads {store} through gcsfs, which is not installed: "
                            f"pip install gcsfs (or use remote: wb1)") from None
        opts = {"token": "anon"}
    try:
        return xr.open_zarr(store, chunks={"time": chunk}, storage_options=opts)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{store}: cannot open as a Zarr store ({type(exc).__name__}: {exc})") from exc


def read_wb2(ds, store: str, var: str, year: int, levels: tuple[int, ...] | None):
    """One variable-year of an opened WeatherBench 2 style store ``ds`` (named ``store`` in
    messages) as (times, data (T, L, 32, 64), levels written or None).

    WB2 names variables by their long names on ``time``/``latitude``/``longitude``/``level``;
    relative humidity there is a fraction, WeatherBench 1's is in %.
    """
    if var not in ds.data_vars:
        raise DataError(f"{store}: variable {var!r} expected, found {sorted(ds.data_vars)}")
    arr = ds[var]
    rename = {k: v for k, v in (("latitude", "lat"), ("longitude", "lon")) if k in arr.dims}
    arr = arr.rename(rename)
    for dim in ("time", "lat", "lon"):
        if dim not in arr.dims:
            raise DataError(f"{store}: {var} has dims {arr.dims}; expected time, latitude, longitude")
    if (arr.sizes["lat"], arr.sizes["lon"]) != GRID:
        raise DataError(f"{store}: grid is {arr.sizes['lat']} x {arr.sizes['lon']}, expected "
                        f"{GRID[0]} x {GRID[1]} (64x32 equiangular)")
    arr = arr.sortby("lat")  # WeatherBench 1 files run south to north
    arr = arr.sel(time=slice(str(year), str(year)))
    if arr.sizes["time"] == 0:
        raise DataError(f"{store}: no time steps in {year}")
    out_levels = None
    if "level" in arr.dims:
        have = [int(v) for v in arr["level"].values]
        if VARIABLES[var][1] and levels:
            missing = [lev for lev in levels if lev not in have]
            if missing:
                raise DataError(f"{store}: {var} lacks levels {missing} hPa; it has {have}")
            out_levels = list(levels)
        else:
            out_levels = [have[-1]]
        arr = arr.sel(level=out_levels)
    else:
        arr = arr.expand_dims("level", axis=1)
    data = np.asarray(arr.transpose("time", "level", "lat", "lon").values, dtype=np.float32)
    if var == "relative_humidity" and arr.attrs.get("units") not in ("%", "percent"):
        data = data * 100.0
    return arr["time"].values, data, out_levels


def _fetch_wb2(raw_dir: Path, cfg: WeatherBenchSettings) -> list:
    import xarray as xr

    from pipeline.data.download import DownloadResult, sha256_file

    results, store = [], None
    for var in cfg.variables:
        for year in cfg.all_years():
            path = year_file(raw_dir, var, year)
            lv = f"&levels={','.join(map(str, cfg.levels))}" if cfg.levels else ""
            url = f"{cfg.wb2_store}?variable={var}&year={year}{lv}"
            cached = False
            if path.is_file():
                with xr.open_dataset(path, engine="netcdf4") as ds:
                    cached = ds.attrs.get("wb2_request") == url
            if not cached:
                if store is None:
                    store = _open_wb2(cfg.wb2_store, cfg.time_chunk)
                times, data, levels = read_wb2(store, cfg.wb2_store, var, year, cfg.levels)
                write_year(path, var, times, data, levels,
                           attrs={"title": "WeatherBench 2 ERA5 64x32, WeatherBench 1 layout",
                                  "wb2_request": url})
            results.append(DownloadResult(path, sha256_file(path), path.stat().st_size, url,
                                          cached=cached))
    return results


def fetch(raw_dir: Path | str, settings: dict) -> list:
    """Put the real files for ``settings`` into ``raw_dir`` (see ``remote``)."""
    cfg = data_settings(WeatherBenchSettings, settings)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    return _fetch_wb1(raw_dir, cfg) if cfg.remote == "wb1" else _fetch_wb2(raw_dir, cfg)
