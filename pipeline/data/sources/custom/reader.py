"""Reading the custom source: the user's netCDF files or Zarr store (or the twin) into physical
frames and window starts per split. Rules in ``custom/__init__.py``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data import calendar as cal
from pipeline.data.prepared import SPLITS, Prepared, Split, window_starts
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.custom.files import files, is_zarr, resolve
from pipeline.data.sources.custom.settings import CustomSettings
from pipeline.data.sources.grid import add_manifest, first_nan, stack_frames


def _check_vars(ds, source: str, cfg: CustomSettings) -> None:
    if cfg.time not in ds.coords and cfg.time not in ds.dims:
        raise DataError(f"{source}: no time coordinate {cfg.time!r} ({cfg.key('time')}); it has "
                        f"{sorted(map(str, ds.coords))}")
    for var in cfg.variables:
        if var not in ds.data_vars:
            raise DataError(f"{source}: variable {var!r} ({cfg.key('variables')}) expected, found "
                            f"{sorted(map(str, ds.data_vars))}")
        if cfg.time not in ds[var].dims:
            raise DataError(f"{source}: variable {var!r} has dims {ds[var].dims}, none of them {cfg.time!r}")
    times = ds[cfg.time].values
    try:
        cal.calendar(times)
    except TypeError:
        raise DataError(f"{source}: time coordinate {cfg.time!r} is not decodable to dates (dtype "
                        f"{times.dtype}; it needs CF 'units' such as 'days since 1850-01-01' and a "
                        f"'calendar' attribute, or set {cfg.key('time')} to the right coordinate)") from None
    if times.size > 1:
        bad = np.flatnonzero(np.asarray(times[1:] <= times[:-1], dtype=bool))
        if bad.size:
            i = bad[0]
            raise DataError(f"{source}: time axis is not strictly increasing: {cal.stamp(times[i])} is "
                            f"followed by {cal.stamp(times[i + 1])}; sort the file by time")


def open_files(path: str, cfg: CustomSettings):
    """The dataset (variables only, lazily) and, per time step, the file it comes from."""
    import xarray as xr

    found = files(path, cfg.key("path"))
    if is_zarr(path):
        try:
            ds = xr.open_zarr(path, chunks={cfg.time: cfg.time_chunk},
                              decode_times=xr.coders.CFDatetimeCoder(use_cftime=None))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: cannot be read as a Zarr store ({type(exc).__name__}: {exc})") from exc
        _check_vars(ds, path, cfg)
        ds = ds[list(cfg.variables)]
        return ds, np.full(ds.sizes[cfg.time], path, dtype=object)

    seen: list[tuple[str, np.ndarray]] = []

    def preprocess(ds):
        source = ds.encoding.get("source", "?")
        _check_vars(ds, source, cfg)
        times = ds[cfg.time].values
        if seen and times.size and seen[-1][1].size and _time_kind(times) != _time_kind(seen[-1][1]):
            raise DataError(f"{source}: its dates are in the {_time_kind(times)} calendar but those of "
                            f"{seen[-1][0]} in the {_time_kind(seen[-1][1])} calendar; the files of "
                            f"{cfg.key('path')} must share one calendar")
        if seen and times.size and seen[-1][1].size and times[0] <= seen[-1][1][-1]:
            raise DataError(f"{source}: starts at {cal.stamp(times[0])}, not after the end of "
                            f"{seen[-1][0]} ({cal.stamp(seen[-1][1][-1])}); files overlap or sort out of "
                            f"time order (name them so that {cfg.key('path')} sorts them by time)")
        seen.append((source, times))
        return ds[list(cfg.variables)]

    try:
        # model calendars decode to cftime dates; standard ones to numpy dates where they fit
        ds = xr.open_mfdataset(found, decode_times=xr.coders.CFDatetimeCoder(use_cftime=None), combine="nested", concat_dim=cfg.time, preprocess=preprocess,
                               data_vars="minimal", coords="minimal", compat="override",
                               join="override", chunks={cfg.time: cfg.time_chunk}, parallel=False)
    except OSError as exc:
        raise DataError(f"{cfg.key('path')} = {path}: cannot be read as netCDF "
                        f"({type(exc).__name__}: {exc})") from exc
    origin = np.concatenate([np.full(t.size, f, dtype=object) for f, t in seen])
    return ds, origin


def _time_kind(times: np.ndarray) -> str:
    """The calendar dates decode to: ``standard`` (numpy datetimes) or a cftime calendar; dates of
    two kinds do not compare."""
    if np.issubdtype(times.dtype, np.datetime64) or not times.size:
        return "standard"
    return str(getattr(times[0], "calendar", type(times[0]).__name__))


_LAT, _LON = ("lat", "latitude"), ("lon", "longitude")


def _grid_names(arr, space: list[str]) -> tuple[str | None, str | None]:
    find = lambda names: next((d for d in space if str(d).lower() in names and d in arr.coords), None)  # noqa: E731
    return find(_LAT), find(_LON)


def _cut_box(arr, space: list[str], cfg: CustomSettings, source: str):
    """``arr`` restricted to ``cfg.box`` (wrapping through the date line when west > east)."""
    box = cfg.box_bounds()
    if not box:
        return arr
    lat, lon = _grid_names(arr, space)
    sel = {}
    for axis, dim in (("lat", lat), ("lon", lon)):
        if axis not in box:
            continue
        if dim is None:
            raise DataError(f"{source}: {cfg.key('box', axis)} needs a 1-D {axis} coordinate on a grid "
                            f"dim ({' or '.join(_LAT if axis == 'lat' else _LON)}); grid dims are {space}")
        lo, hi = box[axis]
        v = np.asarray(arr[dim].values, dtype=np.float64)
        if axis == "lat":
            keep = (v >= lo) & (v <= hi)
        else:
            v, lo, hi = v % 360, lo % 360, hi % 360
            keep = ((v >= lo) & (v <= hi)) if lo <= hi else ((v >= lo) | (v <= hi))
        idx = np.flatnonzero(keep)
        if axis == "lon" and lo > hi:  # west of the date line first, so the box stays contiguous
            idx = np.concatenate([idx[v[idx] >= lo], idx[v[idx] <= hi]])
        if idx.size == 0:
            raise DataError(f"{source}: {cfg.key('box', axis)} = {list(box[axis])} selects no "
                            f"{dim} (the file spans {v.min():g} .. {v.max():g})")
        sel[dim] = idx
    return arr.isel(sel)


def _grid(arr, space: list[str]) -> dict[str, Any]:
    """Grid dims and their 1-D coordinates (lat/lon when the file has them), for the store."""
    lat, lon = _grid_names(arr, space)
    out: dict[str, Any] = {"dims": [str(d) for d in space]}
    for d in space:
        if d in arr.coords and arr[d].ndim == 1 and np.issubdtype(arr[d].dtype, np.number):
            out[str(d)] = [float(v) for v in arr[d].values]
    if lat is not None:
        out["lat"] = [float(v) for v in arr[lat].values]
    if lon is not None:
        out["lon"] = [float(v) for v in arr[lon].values]
    return out


def channel_arrays(ds, cfg: CustomSettings, source: str):
    """Per variable a DataArray (time, level, y, x), the channel names, their units and the grid."""
    arrays, names, units, grid, coords = [], [], [], None, None
    for var in cfg.variables:
        arr = ds[var]
        if cfg.level_dim in arr.dims:
            if cfg.levels:
                have = list(arr[cfg.level_dim].values) if cfg.level_dim in arr.coords else []
                missing = [lev for lev in cfg.levels if lev not in have]
                if missing:
                    raise DataError(f"{source}: {var!r} lacks {cfg.level_dim} {missing} "
                                    f"({cfg.key('levels')}); it has {have}")
                arr = arr.sel({cfg.level_dim: list(cfg.levels)})
                names += [f"{var}{lev}" for lev in cfg.levels]
            elif arr.sizes[cfg.level_dim] == 1:
                names.append(var)
            else:
                raise DataError(f"{source}: {var!r} has {arr.sizes[cfg.level_dim]} values of "
                                f"{cfg.level_dim!r}; choose some with {cfg.key('levels')}")
        else:
            arr = arr.expand_dims(cfg.level_dim, axis=1)
            names.append(var)
        space = [d for d in arr.dims if d not in (cfg.time, cfg.level_dim)]
        if len(space) != 2:
            raise DataError(f"{source}: {var!r} has dims {arr.dims}; expected {cfg.time!r}, an optional "
                            f"{cfg.level_dim!r} and two grid dims")
        arr = _cut_box(arr.transpose(cfg.time, cfg.level_dim, *space), space, cfg, source)
        units += [str(ds[var].attrs.get("units", ""))] * (len(names) - len(units))
        shape = tuple(arr.shape[2:])
        if grid is not None and shape != grid:
            raise DataError(f"{source}: {var!r} is on a {shape[0]} x {shape[1]} grid, "
                            f"{cfg.variables[0]!r} on {grid[0]} x {grid[1]}")
        grid = shape
        coords = coords or _grid(arr, space)
        arrays.append(arr)
    return arrays, names, units, coords


def _rel(path: str, raw_dir: Path) -> str:
    """Paths inside raw_dir are recorded relative to it, so provenance does not depend on where
    the project is checked out; the user's own files keep their path."""
    try:
        return Path(path).resolve().relative_to(raw_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def load(raw_dir: Path | str, settings: dict) -> Prepared:
    """Read the user's files (or the twin) into physical frames and window starts per split."""
    cfg = data_settings(CustomSettings, settings)
    raw_dir = Path(raw_dir)
    path, is_sample = resolve(raw_dir, cfg.path)
    ds, origin = open_files(path, cfg)
    arrays, channels, units, grid = channel_arrays(ds, cfg, path)
    times = ds[cfg.time].values
    length = (cfg.T_in + cfg.T_out)
    splits, spans, counts, used, steps = {}, {}, {}, {}, {}
    for split in SPLITS:
        start, end = cfg.dates(split)
        k = cfg.key("splits", split)
        idx = cal.select(times, *cal.bounds(start, end, times, k))
        where = f"split {split!r} ({start.text} .. {end.text}) of {path}"
        step, i = cal.regular_step(times[idx])
        if i is not None:  # increasing order was checked per file and across files on opening
            a, b = origin[idx[i]], origin[idx[i + 1]]
            raise DataError(f"{a if a == b else f'{a} / {b}'}: time axis of split {split!r} is not "
                            f"evenly spaced (a gap or an irregular step): steps of {step.describe()}, but "
                            f"{cal.stamp(times[idx[i]])} -> {cal.stamp(times[idx[i + 1]])} is "
                            f"{cal.step_between(times[idx[i]], times[idx[i + 1]])}; choose {k} to "
                            f"avoid it or fill the gap")
        keep = idx[::cfg.step]
        starts = window_starts(keep.size, cfg.T_in, cfg.T_out, 1, getattr(cfg.stride, split))
        if starts.size == 0:
            raise DataError(f"{where}: {keep.size} frames (every {cfg.step} time step(s) of "
                            f"{idx.size}); one window needs T_in + T_out = {length}: widen {k} "
                            f"or lower T_in/T_out")
        steps[split] = step.describe() if step else None
        frames = stack_frames(arrays, keep)
        bad = first_nan(frames, channels)
        if bad is not None:
            i, ch = bad
            raise DataError(f"{origin[keep[i]]}: NaN in {ch!r} at {cal.stamp(times[keep[i]])} (split "
                            f"{split!r}); fill the gaps, or cut them off with {cfg.key('box')} or "
                            f"{cfg.key('splits', split)}")
        splits[split] = Split(frames=frames, starts=starts, time=times[keep])
        spans[split] = [cal.stamp(times[keep[0]]), cal.stamp(times[keep[-1]])]
        counts[split] = {"frames": int(keep.size), "windows": int(starts.size)}
        used[split] = sorted({_rel(f, raw_dir) for f in origin[keep]})
    attrs: dict[str, Any] = {"reader": "custom", "path": _rel(path, raw_dir), "sample": is_sample,
                             "variables": list(cfg.variables), "step_in_time_steps": cfg.step,
                             "levels": list(cfg.levels) if cfg.levels else None,
                             "level_dim": cfg.level_dim, "time": cfg.time,
                             "box": {a: list(v) for a, v in cfg.box_bounds().items()},
                             "calendar": cal.calendar(times) or "standard", "time_step": steps,
                             "units": units, "grid": grid,
                             "stride": cfg.stride.model_dump(), "files": used, "time_span": spans,
                             "counts": counts,
                             "window_rule": "all windows: window_starts(n, T_in, T_out, 1, stride)"}
    add_manifest(attrs, raw_dir)
    return Prepared(splits=splits, channels=channels, T_in=cfg.T_in, T_out=cfg.T_out, step=1,
                    scaling="zscore", metric_space="physical", attrs=attrs)
