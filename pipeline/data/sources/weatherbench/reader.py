"""Reading WeatherBench's per-year netCDF files (real or twin) into physical frames and
OpenSTL's window starts per split (the window rule of ``weatherbench/__init__.py``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.prepared import SPLITS, Prepared, Split
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.grid import (add_manifest, as_index, check_time_axis, first_nan, hours, iso, run_starts,
                                        runs, select_frames, stack_frames)
from pipeline.data.sources.weatherbench.layout import GRID, LAT, LON, year_file
from pipeline.data.sources.weatherbench.settings import VARIABLES, WeatherBenchSettings


def split_window_starts(times: np.ndarray, cfg: WeatherBenchSettings, split: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(kept frame indices, window starts into the kept frames, runs) of one split's time axis:
    the window rule of the module docstring, from the time axis alone."""
    step = np.timedelta64(cfg.step, "h")
    keep = select_frames(times, step, drop_last=True)
    bounds = runs(times[keep], step)
    span = cfg.window_offsets()[-1] + 1
    return keep, run_starts(bounds, span, getattr(cfg.stride, split), openstl=True), bounds


def _open_year(path: Path, var: str, cfg: WeatherBenchSettings, year: int, chunk: int):
    """Open one year file lazily and check it; return a DataArray (time, level, lat, lon)."""
    import xarray as xr

    short, has_level, _ = VARIABLES[var]
    try:
        ds = xr.open_dataset(path, engine="netcdf4", chunks={"time": chunk})
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as netCDF ({type(exc).__name__}: {exc})") from exc
    if short not in ds.data_vars:
        raise DataError(f"{path}: variable {short!r} ({var}) expected, found {sorted(ds.data_vars)}")
    arr = ds[short]
    for dim in ("time", "lat", "lon"):
        if dim not in arr.dims:
            raise DataError(f"{path}: variable {short!r} has dims {arr.dims}; expected time, lat, lon"
                            f"{' (and level)' if has_level else ''}")
    extra = set(arr.dims) - {"time", "lat", "lon", "level"}
    if extra:
        raise DataError(f"{path}: variable {short!r} has unexpected dims {sorted(extra)}")
    if (arr.sizes["lat"], arr.sizes["lon"]) != GRID:
        raise DataError(f"{path}: grid is {arr.sizes['lat']} x {arr.sizes['lon']} (lat x lon), "
                        f"expected {GRID[0]} x {GRID[1]} (5.625 deg)")
    times = arr["time"].values
    if not np.issubdtype(times.dtype, np.datetime64):
        raise DataError(f"{path}: time coordinate is not decodable to dates (dtype {times.dtype})")
    interval = check_time_axis(times, str(path))
    years = times.astype("datetime64[Y]").astype(int) + 1970
    if times.size and (years.min() != year or years.max() != year):
        raise DataError(f"{path}: holds times {iso(times[0])} .. {iso(times[-1])}, expected only "
                        f"year {year}")
    if "level" in arr.dims:
        if has_level and cfg.levels:
            have = [int(v) for v in arr["level"].values]
            missing = [lev for lev in cfg.levels if lev not in have]
            if missing:
                raise DataError(f"{path}: levels {missing} hPa (datasets.{cfg.name}.data.levels) not "
                                f"in the file, which has {have}")
            arr = arr.sel(level=list(cfg.levels))
        else:
            arr = arr.isel(level=[-1])  # OpenSTL keeps the last level (r, single-level files)
    else:
        if has_level and cfg.levels:
            raise DataError(f"{path}: variable {short!r} has no level dimension but "
                            f"datasets.{cfg.name}.data.levels = {list(cfg.levels)}")
        arr = arr.expand_dims("level", axis=1)
    arr = arr.transpose("time", "level", "lat", "lon")
    return arr.drop_vars([c for c in arr.coords if c != "time"]), interval


def _open_split(raw_dir: Path, cfg: WeatherBenchSettings, split: str):
    """Per variable: the split's years lazily concatenated (time, level, lat, lon); the files
    read; and the files' common time step."""
    import xarray as xr

    per_var, files, intervals = [], [], {}
    for var in cfg.variables:
        paths = [year_file(raw_dir, var, y) for y in cfg.split_years(split)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"split {split!r}: {len(missing)} file(s) missing, first {missing[0]}; "
                            f"run fetch (real data) or make_sample (generated twin) first")
        arrays = []
        for p, y in zip(paths, cfg.split_years(split)):
            arr, interval = _open_year(p, var, cfg, y, cfg.time_chunk)
            if arrays and arr.sizes["time"] and arrays[-1].sizes["time"] and \
                    arr["time"].values[0] <= arrays[-1]["time"].values[-1]:
                raise DataError(f"{p}: starts at {iso(arr['time'].values[0])}, not after the end of "
                                f"{paths[len(arrays) - 1]} ({iso(arrays[-1]['time'].values[-1])})")
            if interval is not None:
                intervals[p] = interval
            arrays.append(arr)
        per_var.append(xr.concat(arrays, dim="time", coords="minimal", compat="override",
                                 join="override") if len(arrays) > 1 else arrays[0])
        files.append(paths)
    if not intervals:
        raise DataError(f"split {split!r}: every file holds a single time step, so the time "
                        f"interval is unknown ({files[0][0]} ...)")
    ref_path, ref = next(iter(intervals.items()))
    for p, d in intervals.items():
        if d != ref:
            raise DataError(f"{p}: time step {hours(d):g} h differs from {hours(ref):g} h in {ref_path}")
    return per_var, files, ref


def load(raw_dir: Path | str, settings: dict) -> Prepared:
    """Read the per-year netCDF files (real or twin) into physical-unit frames and OpenSTL's
    window starts per split; the store writer z-scores them with the train statistics."""
    cfg = data_settings(WeatherBenchSettings, settings)
    raw_dir = Path(raw_dir)
    channels = cfg.channels()
    length = cfg.window_offsets()[-1] + 1
    step = np.timedelta64(cfg.step, "h")
    splits, spans, rel_files, counts = {}, {}, {}, {}
    for split in SPLITS:
        per_var, files, native = _open_split(raw_dir, cfg, split)
        if step % native:
            raise DataError(f"{cfg.key('step')} = {cfg.step} h is not a multiple of the files' "
                            f"{hours(native):g} h time step ({files[0][0]})")
        times = per_var[0]["time"].values
        for var, arr, paths in zip(cfg.variables[1:], per_var[1:], files[1:]):
            if arr.sizes["time"] != times.size or not np.array_equal(arr["time"].values, times):
                raise DataError(f"split {split!r}: times of {var} ({paths[0].parent}) differ from "
                                f"those of {cfg.variables[0]} ({files[0][0].parent})")
        keep, starts, bounds = split_window_starts(times, cfg, split)
        sel_times = times[keep]
        if starts.size == 0:
            longest = max((b - a for a, b in bounds), default=0)
            y0, y1 = getattr(cfg.years, split)
            raise DataError(f"split {split!r} ({y0}-{y1}): {keep.size} frames {cfg.step} h apart, "
                            f"longest unbroken run {longest}; one window needs span + 1 = {length + 1} "
                            f"consecutive frames (OpenSTL leaves out the last window)")
        frames = stack_frames(per_var, as_index(keep))
        bad = first_nan(frames, channels)
        if bad is not None:
            i, ch = bad
            var = dict(cfg.channel_vars())[ch]
            year = int(str(np.datetime64(sel_times[i], "Y")))
            raise DataError(f"{year_file(raw_dir, var, year)}: NaN in {ch!r} at {iso(sel_times[i])} "
                            f"(split {split!r}); WeatherBench fields must be complete")
        splits[split] = Split(frames=frames, starts=starts, time=sel_times)
        spans[split] = [iso(sel_times[0]), iso(sel_times[-1])]
        rel_files[split] = [os.path.relpath(p, raw_dir) for paths in files for p in paths]
        counts[split] = {"frames": int(keep.size), "windows": int(starts.size)}

    attrs: dict[str, Any] = {
        "reader": "weatherbench",  # "source" is left to the caller (sample or remote)
        "remote": cfg.remote,
        "variables": list(cfg.variables),
        "levels": list(cfg.levels) if cfg.levels else None,
        "frame_interval_hours": cfg.step,
        "stride": cfg.stride.model_dump(),
        "window_rule": "openstl: per run of n frames, starts 0..n-span-1 every stride; "
                       "last time step of each split dropped before subsampling",
        "idx_in": list(cfg.inputs()), "idx_out": list(cfg.targets()),
        "files": rel_files,
        "time_span": spans,
        "counts": counts,
        "grid": {"dims": ["lat", "lon"], "lat": [float(v) for v in LAT], "lon": [float(v) for v in LON]},
        "units": [VARIABLES[var][2] for _, var in cfg.channel_vars()],
    }
    add_manifest(attrs, raw_dir)
    return Prepared(splits=splits, channels=channels, T_in=cfg.T_in, T_out=cfg.T_out, step=1,
                    scaling="zscore", metric_space="physical", attrs=attrs, offsets=cfg.window_offsets())
