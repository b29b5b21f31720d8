"""The user's own gridded data: any netCDF file(s) or Zarr store with a time axis and a 2-D grid.

Settings (``datasets.<name>.data``; ``name`` is passed in by the caller and only used in messages)
--------------------------------------------------------------------------------------------------
``source``     "custom" (ignored here).
``path``       required: a netCDF file, a glob of netCDF files (read with ``open_mfdataset``,
               concatenated along time in name order) or a Zarr store (``*.zarr`` or a folder
               with Zarr metadata, read with ``open_zarr``). Relative paths are relative to the
               working directory (the project root when the pipeline runs).
``variables``  required, non-empty list of variable names in the files; channels follow it.
``time``       name of the time coordinate (default "time").
``splits``     required, ``{train: [start, end], val: [...], test: [...]}`` as dates in the
               file's own calendar (``2010``, ``2010-03``, ``2010-02-30`` on a 360-day axis,
               ``2010-01-01T06:00``); both ends inclusive (a bare year, month or day covers all
               of it); splits must not overlap.
``T_in``, ``T_out``  required positive ints.
``step``       frames of a window are ``step`` time steps of the data apart (default 1); frames are
               subsampled to that spacing from each split's first time, so ``Prepared.step`` is 1.
``stride``     distance between window starts in subsampled frames: int or per split (default 1).
``levels``     optional list of values of ``level_dim`` to keep; a variable with that dim gives
               one channel per level named ``<var><level>``. Without ``levels`` a variable may
               have that dim only with length 1.
``level_dim``  name of the level dimension (default "level").
``time_chunk`` dask chunk length along time (default 1024).

``box``        optional ``{lat: [south, north], lon: [west, east]}`` (degrees; either may be
               left out): keep only that part of the grid. Needs 1-D coordinates named
               ``lat``/``latitude`` and ``lon``/``longitude``; ``west > east`` wraps through the
               date line (``[350, 10]``).

Every variable must be ``(time, [level_dim], y, x)`` with the same 2-D grid (any dim names, any
size: the model pads what its stride does not divide, ``model.pad``). Time may be decoded to
numpy dates or cftime dates in any CF calendar (``pipeline.data.calendar``). Inside each split
the time axis must be strictly increasing and regular: the same duration every step (hourly,
daily), or for monthly/annual data the same number of calendar months; gaps between splits are
fine. All windows that fit are used: ``window_starts(n, T_in, T_out, 1, stride)``.

Which files ``load`` reads: ``fetch`` (checks ``path``, hashes the files) and ``make_sample``
(writes a small twin into ``raw_dir``) both record their choice in ``raw_dir/custom.json``;
without that file ``load`` reads ``path`` directly.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data import calendar as cal
from pipeline.data.prepared import SPLITS, DataError, Prepared, Split, window_starts
from pipeline.data.sources.weatherbench import _pos_int, first_nan
from pipeline.data.sources.settings import open_settings, split_strides
from pipeline.errors import ConfigError

POINTER = "custom.json"
_KEYS = {"source", "name", "path", "variables", "time", "splits", "T_in", "T_out", "step",
         "stride", "levels", "level_dim", "time_chunk", "box"}
_REQUIRED = ("path", "variables", "splits", "T_in", "T_out")
_SAMPLE_KEYS = {"frames_per_split", "interval", "height", "width"}


@dataclass(frozen=True)
class Settings:
    name: str
    path: str
    variables: tuple[str, ...]
    time: str
    splits: dict[str, tuple[cal.DateSetting, cal.DateSetting]]
    T_in: int
    T_out: int
    step: int
    stride: dict[str, int]
    levels: tuple | None
    level_dim: str
    time_chunk: int
    box: dict[str, tuple[float, float]]

    def key(self, *parts: str) -> str:
        return ".".join(("datasets", self.name, "data") + parts)


def parse_settings(settings: dict) -> Settings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    name, key = open_settings(settings, _KEYS, _REQUIRED, "custom")
    path = settings["path"]
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"{key('path')}: expected a file, glob or Zarr path, got {path!r}")
    variables = settings["variables"]
    if isinstance(variables, str) or not isinstance(variables, (list, tuple)) or not variables \
            or not all(isinstance(v, str) and v for v in variables):
        raise ConfigError(f"{key('variables')}: expected a non-empty list of variable names, "
                          f"got {variables!r}")
    if len(set(variables)) != len(variables):
        raise ConfigError(f"{key('variables')}: duplicate variable in {list(variables)}")
    time = settings.get("time", "time")
    level_dim = settings.get("level_dim", "level")
    for k, v in (("time", time), ("level_dim", level_dim)):
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{key(k)}: expected a dimension name, got {v!r}")

    splits_in = settings["splits"]
    if not isinstance(splits_in, dict):
        raise ConfigError(f"{key('splits')}: expected {{train: [start, end], val: .., test: ..}}, "
                          f"got {splits_in!r}")
    extra = sorted(set(splits_in) - set(SPLITS))
    if extra:
        raise ConfigError(f"{key('splits', str(extra[0]))}: unknown split; expected {list(SPLITS)}")
    splits = {}
    for split in SPLITS:
        span = splits_in.get(split)
        k = key("splits", split)
        if span is None:
            raise ConfigError(f"{k}: required setting is missing ([start, end] dates)")
        if isinstance(span, str) or not isinstance(span, (list, tuple)) or len(span) != 2:
            raise ConfigError(f"{k}: expected [start, end] dates, got {span!r}")
        start, end = cal.parse_date(span[0], k), cal.parse_date(span[1], k)
        if start.fields >= end.end_fields():
            raise ConfigError(f"{k}: start {span[0]} is after end {span[1]}")
        splits[split] = (start, end)
    for i, a in enumerate(SPLITS):  # field tuples order dates the same way in every calendar
        for b in SPLITS[i + 1:]:
            (a0, a1), (b0, b1) = splits[a], splits[b]
            if a0.fields < b1.end_fields() and b0.fields < a1.end_fields():
                raise ConfigError(f"{key('splits', b)}: [{b0.text}, {b1.text}] overlaps {a} "
                                  f"[{a0.text}, {a1.text}]")

    stride = split_strides(settings.get("stride", 1), key)
    levels = settings.get("levels")
    if levels is not None:
        if isinstance(levels, str) or not isinstance(levels, (list, tuple)) or not levels:
            raise ConfigError(f"{key('levels')}: expected null or a non-empty list, got {levels!r}")
        if len(set(levels)) != len(levels):
            raise ConfigError(f"{key('levels')}: duplicate level in {list(levels)}")
        levels = tuple(levels)
    box = _box(settings.get("box"), key)
    return Settings(
        name, str(path), tuple(variables), time, splits,
        T_in=_pos_int(settings["T_in"], key("T_in")), T_out=_pos_int(settings["T_out"], key("T_out")),
        step=_pos_int(settings.get("step", 1), key("step")), stride=stride, levels=levels,
        level_dim=level_dim, time_chunk=_pos_int(settings.get("time_chunk", 1024), key("time_chunk")),
        box=box)


def _box(value: Any, key) -> dict[str, tuple[float, float]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value or set(value) - {"lat", "lon"}:
        raise ConfigError(f"{key('box')}: expected {{lat: [south, north], lon: [west, east]}}, "
                          f"got {value!r}")
    out = {}
    for axis, (lo_ok, hi_ok) in (("lat", (-90, 90)), ("lon", (-360, 360))):
        if axis not in value:
            continue
        pair = value[axis]
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and lo_ok <= v <= hi_ok for v in pair)
        if not ok or (axis == "lat" and pair[0] > pair[1]):
            raise ConfigError(f"{key('box', axis)}: expected [{'south, north' if axis == 'lat' else 'west, east'}] "
                              f"in degrees, got {pair!r}")
        out[axis] = (float(pair[0]), float(pair[1]))
    return out


# --------------------------------------------------------------------------------------- reading
def _is_zarr(path: str) -> bool:
    p = Path(path)
    markers = ("zarr.json", ".zgroup", ".zarray")
    return p.suffix == ".zarr" or (p.is_dir() and any((p / m).exists() for m in markers))


def _resolve(raw_dir: Path, cfg: Settings) -> tuple[str, bool]:
    """(path or glob to read, whether it is the generated twin)."""
    pointer = raw_dir / POINTER
    if pointer.is_file():
        try:
            rec = json.loads(pointer.read_text(encoding="utf-8"))
            path = Path(rec["path"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{pointer}: not a valid custom-source record ({exc}); delete it and "
                            f"run fetch or make_sample again") from exc
        return str(path if path.is_absolute() else raw_dir / path), bool(rec.get("sample", False))
    return cfg.path, False


def _files(path: str, what: str) -> list[str]:
    if _is_zarr(path):
        if not Path(path).exists():
            raise DataError(f"{what}: Zarr store {path} does not exist")
        return [path]
    files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if Path(path).is_file() else [])
    if not files:
        raise DataError(f"{what}: no netCDF file matches {path}")
    return files


def _check_vars(ds, source: str, cfg: Settings) -> None:
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


def _open(path: str, cfg: Settings):
    """The dataset (variables only, lazily) and, per time step, the file it comes from."""
    import xarray as xr

    files = _files(path, cfg.key("path"))
    if _is_zarr(path):
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
        if seen and times.size and seen[-1][1].size and times[0] <= seen[-1][1][-1]:
            raise DataError(f"{source}: starts at {cal.stamp(times[0])}, not after the end of "
                            f"{seen[-1][0]} ({cal.stamp(seen[-1][1][-1])}); files overlap or sort out of "
                            f"time order (name them so that {cfg.key('path')} sorts them by time)")
        seen.append((source, times))
        return ds[list(cfg.variables)]

    try:
        # model calendars decode to cftime dates; standard ones to numpy dates where they fit
        ds = xr.open_mfdataset(files, decode_times=xr.coders.CFDatetimeCoder(use_cftime=None), combine="nested", concat_dim=cfg.time, preprocess=preprocess,
                               data_vars="minimal", coords="minimal", compat="override",
                               join="override", chunks={cfg.time: cfg.time_chunk}, parallel=False)
    except OSError as exc:
        raise DataError(f"{cfg.key('path')} = {path}: cannot be read as netCDF "
                        f"({type(exc).__name__}: {exc})") from exc
    origin = np.concatenate([np.full(t.size, f, dtype=object) for f, t in seen])
    return ds, origin


_LAT, _LON = ("lat", "latitude"), ("lon", "longitude")


def _grid_names(arr, space: list[str]) -> tuple[str | None, str | None]:
    find = lambda names: next((d for d in space if str(d).lower() in names and d in arr.coords), None)  # noqa: E731
    return find(_LAT), find(_LON)


def _cut_box(arr, space: list[str], cfg: Settings, source: str):
    """``arr`` restricted to ``cfg.box`` (wrapping through the date line when west > east)."""
    if not cfg.box:
        return arr
    lat, lon = _grid_names(arr, space)
    sel = {}
    for axis, dim in (("lat", lat), ("lon", lon)):
        if axis not in cfg.box:
            continue
        if dim is None:
            raise DataError(f"{source}: {cfg.key('box', axis)} needs a 1-D {axis} coordinate on a grid "
                            f"dim ({' or '.join(_LAT if axis == 'lat' else _LON)}); grid dims are {space}")
        lo, hi = cfg.box[axis]
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
            raise DataError(f"{source}: {cfg.key('box', axis)} = {list(cfg.box[axis])} selects no "
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


def _channels(ds, cfg: Settings, source: str):
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
    import dask.array as da

    cfg = parse_settings(settings)
    raw_dir = Path(raw_dir)
    path, is_sample = _resolve(raw_dir, cfg)
    ds, origin = _open(path, cfg)
    arrays, channels, units, grid = _channels(ds, cfg, path)
    times = ds[cfg.time].values
    length = (cfg.T_in + cfg.T_out)
    splits, spans, counts, used, steps = {}, {}, {}, {}, {}
    for split in SPLITS:
        start, end = cfg.splits[split]
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
        starts = window_starts(keep.size, cfg.T_in, cfg.T_out, 1, cfg.stride[split])
        if starts.size == 0:
            raise DataError(f"{where}: {keep.size} frames (every {cfg.step} time step(s) of "
                            f"{idx.size}); one window needs T_in + T_out = {length}: widen {k} "
                            f"or lower T_in/T_out")
        steps[split] = step.describe() if step else None
        frames = da.concatenate([a.data for a in arrays], axis=1)[keep]
        # whole frames per chunk: consumers chunk along time only
        frames = frames.astype(np.float32).rechunk({1: -1, 2: -1, 3: -1})
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
                             "box": {a: list(v) for a, v in cfg.box.items()},
                             "calendar": cal.calendar(times) or "standard", "time_step": steps,
                             "units": units, "grid": grid,
                             "stride": dict(cfg.stride), "files": used, "time_span": spans,
                             "counts": counts,
                             "window_rule": "all windows: window_starts(n, T_in, T_out, 1, stride)"}
    manifest = raw_dir / "manifest.json"
    if manifest.is_file():
        from pipeline.data.download import load_manifest

        attrs["manifest"] = load_manifest(manifest)
    return Prepared(splits=splits, channels=channels, T_in=cfg.T_in, T_out=cfg.T_out, step=1,
                    scaling="zscore", metric_space="physical", attrs=attrs)


# --------------------------------------------------------------------------------------- fetch
def _write_pointer(raw_dir: Path, path: str, sample: bool) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    tmp = raw_dir / f".{POINTER}.tmp"
    tmp.write_text(json.dumps({"path": path, "sample": sample}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, raw_dir / POINTER)


def fetch(raw_dir: Path | str, settings: dict) -> list:
    """Nothing to download: check that ``path`` exists, hash it, and point ``load`` at it."""
    from pipeline.data.download import DownloadResult, sha256_file

    cfg = parse_settings(settings)
    raw_dir = Path(raw_dir)
    path = os.path.abspath(os.path.expanduser(cfg.path))
    results = []
    for f in _files(path, cfg.key("path")):
        if Path(f).is_dir():  # a Zarr store: hash its files in a stable order
            h, size = hashlib.sha256(), 0
            for p in sorted(q for q in Path(f).rglob("*") if q.is_file()):
                h.update(f"{p.relative_to(f).as_posix()}\0{sha256_file(p)}\n".encode())
                size += p.stat().st_size
            results.append(DownloadResult(Path(f), h.hexdigest(), size, Path(f).as_uri(), cached=True))
        else:
            results.append(DownloadResult(Path(f), sha256_file(f), Path(f).stat().st_size,
                                          Path(f).as_uri(), cached=True))
    _write_pointer(raw_dir, path, sample=False)
    return results


# --------------------------------------------------------------------------------------- twin
def make_sample(raw_dir: Path | str, settings: dict, sample: dict | None, seed: int) -> None:
    """Write a small twin (netCDF, or Zarr when ``path`` is one) with ``frames_per_split`` time
    steps from the start of each split, on a ``height`` x ``width`` lat/lon grid."""
    import pandas as pd
    import xarray as xr

    cfg = parse_settings(settings)
    sample = dict(sample or {})
    unknown = sorted(set(sample) - _SAMPLE_KEYS)
    skey = lambda k: f"datasets.{cfg.name}.sample.{k}"  # noqa: E731
    if unknown:
        raise ConfigError(f"{skey(unknown[0])}: unknown setting; expected some of {sorted(_SAMPLE_KEYS)}")
    n = _pos_int(sample.get("frames_per_split", 48), skey("frames_per_split"))
    height = _pos_int(sample.get("height", 32), skey("height"))
    width = _pos_int(sample.get("width", 64), skey("width"))
    try:
        interval = pd.Timedelta(sample.get("interval", "1h")).to_timedelta64()
    except ValueError:
        raise ConfigError(f"{skey('interval')}: expected a duration such as 1h or 1D, got "
                          f"{sample.get('interval')!r}") from None
    if interval <= np.timedelta64(0):
        raise ConfigError(f"{skey('interval')}: must be positive, got {sample.get('interval')!r}")
    parts = []
    for split in SPLITS:
        start, end = cfg.splits[split]
        lo, hi = cal.bounds(start, end, np.zeros(0, "datetime64[ns]"), cfg.key("splits", split))
        t = lo + np.arange(n) * interval
        if t[-1] >= hi:
            raise ConfigError(f"{skey('frames_per_split')}: {n} steps of {sample.get('interval', '1h')} "
                              f"from {start.text} run past the end of split {split!r} ({end.text})")
        parts.append(t)
    times = np.concatenate(parts)

    rng = np.random.default_rng(seed)
    lat = np.linspace(-90 + 90 / height, 90 - 90 / height, height)
    lon = np.arange(width) * 360.0 / width
    phase_t = (times - times[0]) / np.timedelta64(1, "h")
    la, lo = np.deg2rad(lat)[None, :, None], np.deg2rad(lon)[None, None, :]
    levels = list(cfg.levels) if cfg.levels else None
    data_vars = {}
    for vi, var in enumerate(cfg.variables):
        per_level = []
        for li in range(len(levels) if levels else 1):
            field = 10 * np.cos(la) ** 2 + 2 * li
            for _ in range(3):
                k, c = rng.integers(1, 5), rng.uniform(0.02, 0.2)
                field = field + rng.uniform(0.5, 2) * np.cos(k * lo - c * phase_t[:, None, None]
                                                             + rng.uniform(0, 6.3)) * np.cos(la)
            field = field + 0.1 * rng.standard_normal((times.size, height, width)) + 5 * vi
            per_level.append(field.astype(np.float32))
        if levels:
            data_vars[var] = ((cfg.time, cfg.level_dim, "lat", "lon"), np.stack(per_level, axis=1))
        else:
            data_vars[var] = ((cfg.time, "lat", "lon"), per_level[0])
    coords = {cfg.time: times, "lat": lat, "lon": lon}
    if levels:
        coords[cfg.level_dim] = np.asarray(levels)
    ds = xr.Dataset(data_vars, coords=coords, attrs={"title": "generated twin of a custom dataset "
                                                              "(not real data)", "seed": seed})
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if _is_zarr(cfg.path):
        out = raw_dir / "custom_sample.zarr"
        ds.to_zarr(out, mode="w", zarr_format=2, consolidated=True)
    else:
        out = raw_dir / "custom_sample.nc"
        tmp = raw_dir / ".custom_sample.nc.tmp"
        ds.to_netcdf(tmp, engine="netcdf4",
                     encoding={v: {"zlib": True, "complevel": 4} for v in cfg.variables})
        os.replace(tmp, out)
    _write_pointer(raw_dir, out.name, sample=True)
