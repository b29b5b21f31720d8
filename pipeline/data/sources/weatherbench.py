"""WeatherBench 5.625° (32 x 64) ERA5 fields: WeatherBench-S (t2m, r, uv10, tcc) and WeatherBench-M.

On-disk layout (the real one, and the generated twin): ``<raw_dir>/<var>/<var>_<year>_5.625deg.nc``,
one netCDF per variable and year, holding the variable under its ERA5 short name (``t2m``, ``r``,
``u10``...) on coordinates ``time`` (hourly in WeatherBench 1), ``lat`` (32, ascending), ``lon``
(64) and, for pressure-level variables, ``level`` (hPa).

Settings (``datasets.<name>.data``; ``name`` is passed in by the caller and only used in messages)
--------------------------------------------------------------------------------------------------
``source``     "weatherbench" (ignored here).
``variables``  required, non-empty list of WeatherBench long names (keys of ``VARIABLES``), e.g.
               ``[2m_temperature]`` or ``[10m_u_component_of_wind, 10m_v_component_of_wind]``.
               Channels follow this order (variable-major, then ``levels``).
``levels``     ``null`` (default): a pressure-level variable keeps only the LAST level of its file
               (OpenSTL's rule for r; 1000 hPa in WeatherBench 1), channel name = short name.
               A list of hPa values: each pressure-level variable gives one channel per level, in
               this order, named ``<short><level>`` (``r150``...). Single-level variables ignore it.
``years``      required, ``{train: [first, last], val: [...], test: [...]}``, inclusive calendar
               years, not overlapping; within 1979-2018 (wb1) or 1959-2023 (wb2).
``T_in``, ``T_out``  required positive ints: frames in and out of a window.
``step``       hours between consecutive frames of a window (default 1). Frames are subsampled to
               this spacing before windows are cut, as OpenSTL does, so ``Prepared.step`` is 1 and
               ``attrs["frame_interval_hours"]`` records the spacing. Must be a multiple of the
               files' own interval (1 h for wb1, 6 h for wb2).
``idx_in``, ``idx_out``  optional OpenSTL frame indices of a window's inputs and targets on the
               subsampled series, relative to the last input (e.g. ``[-17, -11, -5, 0]`` and
               ``[1, 7, 13, 19]`` for WB-M); default ``-T_in+1..0`` and ``1..T_out``.
``stride``     distance between window starts, in (subsampled) frames: an int, or
               ``{train: .., val: .., test: ..}`` (default 1, as OpenSTL).
``remote``     "wb1" (default): fetch downloads the WeatherBench 1 zips from the TUM server.
               "wb2": fetch reads the WeatherBench 2 ERA5 64x32 Zarr lazily (needs ``gcsfs`` for
               ``gs://``) and writes the same per-year netCDF layout, 6-hourly.
``wb1_url``    URL template with ``{var}`` (default: the TUM server), for a mirror.
``wb2_store``  Zarr store path or URL (default: the public WeatherBench 2 store).
``time_chunk`` dask chunk length along time when reading (default 2190 native steps).

Window rule (OpenSTL's ``WeatherBenchDataset``)
-----------------------------------------------
For each split the selected years' time steps are taken, the very last one dropped and every
``step``-hours one kept counted from the first (``isel(time=slice(None, -1, step))``). In each run
of consecutive frames of length ``n`` (one run for real data; one per year in the twin, which
holds only a few hours per year) the starts are ``0, stride, ... < n - span`` with
``span = idx_out[-1] - idx_in[0] + 1``: OpenSTL's ``range(-idx_in[0], n - idx_out[-1] - 1)``
shifted to window starts, which leaves out the last complete window. WB-M is what the public code
built: hourly data subsampled to 6-hourly frames (``step: 6``), then ``idx_in [-17, -11, -5, 0]``,
``idx_out [1, 7, 13, 19]`` on that series: inputs at -102, -66, -30, 0 h, targets at +6, +42, +78,
+114 h; 1979-2015 gives Table 9's 54,019 training windows (``split_window_starts``).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import SPLITS, DataError, Prepared, Split
from pipeline.data.sources.settings import open_settings, split_strides
from pipeline.errors import ConfigError

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
GRID = (32, 64)
LAT = np.linspace(-87.1875, 87.1875, GRID[0])
LON = np.arange(GRID[1]) * 5.625
_KEYS = {"source", "name", "variables", "levels", "years", "T_in", "T_out", "step", "stride",
         "idx_in", "idx_out", "remote", "wb1_url", "wb2_store", "time_chunk"}
_REQUIRED = ("variables", "years", "T_in", "T_out")
_SAMPLE_KEYS = {"hours_per_year"}


@dataclass(frozen=True)
class Settings:
    name: str
    variables: tuple[str, ...]
    levels: tuple[int, ...] | None
    years: dict[str, tuple[int, int]]
    T_in: int
    T_out: int
    step: int
    stride: dict[str, int]
    idx_in: tuple[int, ...]
    idx_out: tuple[int, ...]
    remote: str
    wb1_url: str
    wb2_store: str
    time_chunk: int

    def key(self, *parts: str) -> str:
        return ".".join(("datasets", self.name, "data") + parts)

    def channels(self) -> list[str]:
        return [c for c, _ in _channel_vars(self)]

    def window_offsets(self) -> list[int]:
        """Frames of a window counted from its first input."""
        return [i - self.idx_in[0] for i in self.idx_in + self.idx_out]


def _pos_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return int(value)


def parse_settings(settings: dict) -> Settings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    name, key = open_settings(settings, _KEYS, _REQUIRED, "weatherbench")

    remote = settings.get("remote", "wb1")
    if remote not in REMOTES:
        raise ConfigError(f"{key('remote')}: expected one of {sorted(REMOTES)}, got {remote!r}")
    first_year, last_year, native_h = REMOTES[remote]

    variables = settings["variables"]
    if isinstance(variables, str) or not isinstance(variables, (list, tuple)) or not variables:
        raise ConfigError(f"{key('variables')}: expected a non-empty list of variable names, "
                          f"got {variables!r}")
    for v in variables:
        if v not in VARIABLES:
            raise ConfigError(f"{key('variables')}: unknown variable {v!r}; expected WeatherBench "
                              f"names {sorted(VARIABLES)}")
    if len(set(variables)) != len(variables):
        raise ConfigError(f"{key('variables')}: duplicate variable in {list(variables)}")

    levels = settings.get("levels")
    if levels is not None:
        if isinstance(levels, (int, str)) or not isinstance(levels, (list, tuple)) or not levels:
            raise ConfigError(f"{key('levels')}: expected null or a non-empty list of hPa levels, "
                              f"got {levels!r}")
        levels = tuple(_pos_int(lev, key("levels")) for lev in levels)
        if len(set(levels)) != len(levels):
            raise ConfigError(f"{key('levels')}: duplicate level in {list(levels)}")

    years_in = settings["years"]
    if not isinstance(years_in, dict):
        raise ConfigError(f"{key('years')}: expected {{train: [first, last], val: .., test: ..}}, "
                          f"got {years_in!r}")
    extra = sorted(set(years_in) - set(SPLITS))
    if extra:
        raise ConfigError(f"{key('years', str(extra[0]))}: unknown split; expected {list(SPLITS)}")
    years: dict[str, tuple[int, int]] = {}
    for split in SPLITS:
        span = years_in.get(split)
        k = key("years", split)
        if span is None:
            raise ConfigError(f"{k}: required setting is missing ([first, last] years)")
        if (isinstance(span, (str, int)) or not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in span)):
            raise ConfigError(f"{k}: expected [first, last] as two integer years, got {span!r}")
        y0, y1 = int(span[0]), int(span[1])
        if y0 > y1:
            raise ConfigError(f"{k}: first year {y0} is after last year {y1}")
        if y0 < first_year or y1 > last_year:
            raise ConfigError(f"{k}: {[y0, y1]} outside the years remote {remote} covers "
                              f"({first_year}-{last_year})")
        years[split] = (y0, y1)
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            if years[a][0] <= years[b][1] and years[b][0] <= years[a][1]:
                raise ConfigError(f"{key('years', b)}: {list(years[b])} overlaps {a} "
                                  f"{list(years[a])}; splits must not share years")

    T_in = _pos_int(settings["T_in"], key("T_in"))
    T_out = _pos_int(settings["T_out"], key("T_out"))
    step = _pos_int(settings.get("step", 1), key("step"))
    if step % native_h:
        raise ConfigError(f"{key('step')}: {step} h is not a multiple of remote {remote}'s "
                          f"{native_h}-hourly time steps")
    stride = split_strides(settings.get("stride", 1), key)
    idx_in = _indices(settings.get("idx_in"), tuple(range(1 - T_in, 1)), T_in, key("idx_in"), "T_in")
    idx_out = _indices(settings.get("idx_out"), tuple(range(1, T_out + 1)), T_out, key("idx_out"), "T_out")
    if idx_out[0] <= idx_in[-1]:
        raise ConfigError(f"{key('idx_out')}: targets {list(idx_out)} must come after the inputs {list(idx_in)}")

    wb1_url = settings.get("wb1_url", WB1_URL)
    if not isinstance(wb1_url, str) or "{var}" not in wb1_url:
        raise ConfigError(f"{key('wb1_url')}: expected a URL template containing {{var}}, got {wb1_url!r}")
    wb2_store = settings.get("wb2_store", WB2_STORE)
    if not isinstance(wb2_store, str) or not wb2_store:
        raise ConfigError(f"{key('wb2_store')}: expected a Zarr path or URL, got {wb2_store!r}")
    time_chunk = _pos_int(settings.get("time_chunk", 2190), key("time_chunk"))
    return Settings(name, tuple(variables), levels, years, T_in, T_out, step, stride, idx_in, idx_out,
                    remote, wb1_url, wb2_store, time_chunk)


def _indices(value: Any, default: tuple[int, ...], n: int, key: str, n_key: str) -> tuple[int, ...]:
    if value is None:
        return default
    if (isinstance(value, (str, int)) or not isinstance(value, (list, tuple)) or len(value) != n
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
            or any(b <= a for a, b in zip(value, value[1:]))):
        raise ConfigError(f"{key}: expected {n} increasing integer frame indices (one per {n_key}), got {value!r}")
    return tuple(int(v) for v in value)


def split_window_starts(times: np.ndarray, cfg: Settings, split: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(kept frame indices, window starts into the kept frames, runs) of one split's time axis:
    the window rule of the module docstring, from the time axis alone."""
    step = np.timedelta64(cfg.step, "h")
    keep = select_frames(times, step, drop_last=True)
    bounds = runs(times[keep], step)
    span = cfg.window_offsets()[-1] + 1
    return keep, run_starts(bounds, span, cfg.stride[split], openstl=True), bounds


def year_file(raw_dir: Path | str, var: str, year: int) -> Path:
    return Path(raw_dir) / var / f"{var}_{year}_5.625deg.nc"


def _split_years(cfg: Settings, split: str) -> range:
    y0, y1 = cfg.years[split]
    return range(y0, y1 + 1)


def _all_years(cfg: Settings) -> list[int]:
    return sorted({y for s in SPLITS for y in _split_years(cfg, s)})


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "s")))


def _hours(d: np.timedelta64) -> float:
    return float(d / np.timedelta64(1, "h"))


def check_time_axis(times: np.ndarray, where: str) -> np.timedelta64 | None:
    """Raise unless ``times`` is strictly increasing and evenly spaced; return the spacing."""
    times = np.asarray(times)
    if times.size < 2:
        return None
    d = np.diff(times)
    bad = np.flatnonzero(d <= np.timedelta64(0))
    if bad.size:
        i = bad[0]
        raise DataError(f"{where}: time axis is not strictly increasing: {_iso(times[i])} is followed "
                        f"by {_iso(times[i + 1])}")
    bad = np.flatnonzero(d != d[0])
    if bad.size:
        i = bad[0]
        raise DataError(f"{where}: time axis is not evenly spaced (a gap or an irregular step): "
                        f"steps of {_hours(d[0]):g} h, but {_iso(times[i])} -> {_iso(times[i + 1])} "
                        f"is {_hours(d[i]):g} h")
    return d[0]


def select_frames(times: np.ndarray, step: np.timedelta64, drop_last: bool) -> np.ndarray:
    """Indices of the frames kept: every ``step`` counted from the first time (OpenSTL's
    ``isel(time=slice(None, -1, step))`` on a gap-free axis, with ``drop_last``)."""
    n = len(times) - (1 if drop_last else 0)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    offset = (times[:n] - times[0]) % step
    return np.flatnonzero(offset == np.timedelta64(0)).astype(np.int64)


def runs(times: np.ndarray, step: np.timedelta64) -> list[tuple[int, int]]:
    """[start, stop) of each run of frames exactly ``step`` apart."""
    if len(times) == 0:
        return []
    cuts = np.flatnonzero(np.diff(times) != step) + 1
    bounds = np.concatenate([[0], cuts, [len(times)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def run_starts(bounds: list[tuple[int, int]], length: int, stride: int, openstl: bool) -> np.ndarray:
    """Window starts inside each run. ``openstl`` leaves out each run's last complete window
    (OpenSTL's off-by-one), otherwise every window that fits is used."""
    out = []
    for a, b in bounds:
        last = (b - a) - length + (0 if openstl else 1)  # exclusive bound on the start offset
        if last > 0:
            out.append(np.arange(0, last, stride, dtype=np.int64) + a)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _as_index(keep: np.ndarray):
    """A slice when the kept frames are evenly spaced (always, for real data): a lighter dask graph."""
    if keep.size > 1 and (np.diff(keep) == keep[1] - keep[0]).all():
        return slice(int(keep[0]), int(keep[-1]) + 1, int(keep[1] - keep[0]))
    return keep


def first_nan(frames, channels: list[str]) -> tuple[int, str] | None:
    """(frame index, channel) of the first NaN in a (N, C, H, W) numpy/dask array, or None."""
    import dask.array as da

    arr = da.asarray(frames)
    bad = np.asarray(da.isnan(arr).any(axis=(2, 3)).compute())  # (N, C)
    if not bad.any():
        return None
    i, c = np.argwhere(bad)[0]
    return int(i), channels[int(c)]


# --------------------------------------------------------------------------------------- reading
def _open_year(path: Path, var: str, cfg: Settings, year: int, chunk: int):
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
        raise DataError(f"{path}: holds times {_iso(times[0])} .. {_iso(times[-1])}, expected only "
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


def _open_split(raw_dir: Path, cfg: Settings, split: str):
    """Per variable: the split's years lazily concatenated (time, level, lat, lon); the files
    read; and the files' common time step."""
    import xarray as xr

    per_var, files, intervals = [], [], {}
    for var in cfg.variables:
        paths = [year_file(raw_dir, var, y) for y in _split_years(cfg, split)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"split {split!r}: {len(missing)} file(s) missing, first {missing[0]}; "
                            f"run fetch (real data) or make_sample (generated twin) first")
        arrays = []
        for p, y in zip(paths, _split_years(cfg, split)):
            arr, interval = _open_year(p, var, cfg, y, cfg.time_chunk)
            if arrays and arr.sizes["time"] and arrays[-1].sizes["time"] and \
                    arr["time"].values[0] <= arrays[-1]["time"].values[-1]:
                raise DataError(f"{p}: starts at {_iso(arr['time'].values[0])}, not after the end of "
                                f"{paths[len(arrays) - 1]} ({_iso(arrays[-1]['time'].values[-1])})")
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
            raise DataError(f"{p}: time step {_hours(d):g} h differs from {_hours(ref):g} h in {ref_path}")
    return per_var, files, ref


def load(raw_dir: Path | str, settings: dict) -> Prepared:
    """Read the per-year netCDF files (real or twin) into physical-unit frames and OpenSTL's
    window starts per split; the store writer z-scores them with the train statistics."""
    import dask.array as da

    cfg = parse_settings(settings)
    raw_dir = Path(raw_dir)
    channels = cfg.channels()
    length = cfg.window_offsets()[-1] + 1
    step = np.timedelta64(cfg.step, "h")
    splits, spans, rel_files, counts = {}, {}, {}, {}
    for split in SPLITS:
        per_var, files, native = _open_split(raw_dir, cfg, split)
        if step % native:
            raise DataError(f"{cfg.key('step')} = {cfg.step} h is not a multiple of the files' "
                            f"{_hours(native):g} h time step ({files[0][0]})")
        times = per_var[0]["time"].values
        for var, arr, paths in zip(cfg.variables[1:], per_var[1:], files[1:]):
            if arr.sizes["time"] != times.size or not np.array_equal(arr["time"].values, times):
                raise DataError(f"split {split!r}: times of {var} ({paths[0].parent}) differ from "
                                f"those of {cfg.variables[0]} ({files[0][0].parent})")
        keep, starts, bounds = split_window_starts(times, cfg, split)
        sel_times = times[keep]
        if starts.size == 0:
            longest = max((b - a for a, b in bounds), default=0)
            y0, y1 = cfg.years[split]
            raise DataError(f"split {split!r} ({y0}-{y1}): {keep.size} frames {cfg.step} h apart, "
                            f"longest unbroken run {longest}; one window needs span + 1 = {length + 1} "
                            f"consecutive frames (OpenSTL leaves out the last window)")
        frames = da.concatenate([a.data for a in per_var], axis=1)[_as_index(keep)]
        # whole frames per chunk: consumers chunk along time only
        frames = frames.astype(np.float32).rechunk({1: -1, 2: -1, 3: -1})
        bad = first_nan(frames, channels)
        if bad is not None:
            i, ch = bad
            var = dict(_channel_vars(cfg))[ch]
            year = int(str(np.datetime64(sel_times[i], "Y")))
            raise DataError(f"{year_file(raw_dir, var, year)}: NaN in {ch!r} at {_iso(sel_times[i])} "
                            f"(split {split!r}); WeatherBench fields must be complete")
        splits[split] = Split(frames=frames, starts=starts, time=sel_times)
        spans[split] = [_iso(sel_times[0]), _iso(sel_times[-1])]
        rel_files[split] = [os.path.relpath(p, raw_dir) for paths in files for p in paths]
        counts[split] = {"frames": int(keep.size), "windows": int(starts.size)}

    attrs: dict[str, Any] = {
        "reader": "weatherbench",  # "source" is left to the caller (sample or remote)
        "remote": cfg.remote,
        "variables": list(cfg.variables),
        "levels": list(cfg.levels) if cfg.levels else None,
        "frame_interval_hours": cfg.step,
        "stride": dict(cfg.stride),
        "window_rule": "openstl: per run of n frames, starts 0..n-span-1 every stride; "
                       "last time step of each split dropped before subsampling",
        "idx_in": list(cfg.idx_in), "idx_out": list(cfg.idx_out),
        "files": rel_files,
        "time_span": spans,
        "counts": counts,
        "grid": {"dims": ["lat", "lon"], "lat": [float(v) for v in LAT], "lon": [float(v) for v in LON]},
        "units": [VARIABLES[var][2] for _, var in _channel_vars(cfg)],
    }
    manifest = raw_dir / "manifest.json"
    if manifest.is_file():
        from pipeline.data.download import load_manifest

        attrs["manifest"] = load_manifest(manifest)
    return Prepared(splits=splits, channels=channels, T_in=cfg.T_in, T_out=cfg.T_out, step=1,
                    scaling="zscore", metric_space="physical", attrs=attrs, offsets=cfg.window_offsets())


def _channel_vars(cfg: Settings) -> list[tuple[str, str]]:
    """(channel, variable) pairs in channel order."""
    out = []
    for var in cfg.variables:
        short, has_level, _ = VARIABLES[var]
        names = [f"{short}{lev}" for lev in cfg.levels] if has_level and cfg.levels else [short]
        out += [(c, var) for c in names]
    return out


# -------------------------------------------------------------------------------------- twin
def _anomalies(rng: np.random.Generator, hours: np.ndarray, n_waves: int = 6) -> np.ndarray:
    """Eastward-moving wave packets, (T, 32, 64), about unit amplitude: the weather to forecast.
    Broad packets over all latitudes, so that every region has weather (the climatology of a
    few hours per year cannot know it) that moves slowly enough for the last frame to be a
    good short-range forecast, as in ERA5."""
    lat = np.deg2rad(LAT)[None, :, None]
    lon = np.deg2rad(LON)[None, None, :]
    t = hours[:, None, None]
    out = np.zeros((hours.size,) + GRID)
    for _ in range(n_waves):
        k = rng.integers(2, 7)  # zonal wavenumber
        # once round the globe in 20-60 days: ~500-1400 km/day at 45°, as synoptic systems move
        speed = rng.uniform(0.5, 1.5) * 2 * np.pi / (24 * 30)
        centre = np.deg2rad(rng.uniform(-70, 70))
        width = np.deg2rad(rng.uniform(20, 40))
        phase = rng.uniform(0, 2 * np.pi)
        out += np.cos(k * lon - k * speed * t + phase) * np.exp(-((lat - centre) / width) ** 2)
    return out / np.sqrt(n_waves / 2)


def _sample_field(var: str, times: np.ndarray, levels: list[int], rng: np.random.Generator) -> np.ndarray:
    """A plausible field in physical units, (T, L, 32, 64) (L = 1 without levels)."""
    lat = np.deg2rad(LAT)[None, :, None]
    lon = LON[None, None, :]
    hours = (times - times.astype("datetime64[Y]")) / np.timedelta64(1, "h")  # hour of year
    doy = hours[:, None, None] / 24.0
    utc = (hours % 24)[:, None, None]
    season = -np.cos(2 * np.pi * (doy - 15) / 365.25)  # +1 in NH summer, -1 in NH winter
    diurnal = np.cos(2 * np.pi * (utc + lon / 15.0 - 14) / 24)  # peak at 14 h local solar time
    short = VARIABLES[var][0]
    common = _anomalies(rng, hours)  # levels share most of their weather
    out = []
    for lev in (levels or [None]):
        p = 1000.0 if lev is None else float(lev)
        anom = (common + 0.5 * _anomalies(rng, hours)) / np.sqrt(1.25)
        noise = rng.standard_normal(anom.shape)
        if short in ("t2m", "t"):
            surface = 250 + 50 * np.cos(lat) ** 2 + 12 * season * np.sin(lat)
            # synoptic anomalies of a few K, strongest towards the poles (as in winter ERA5)
            f = surface * (p / 1013.25) ** 0.19 + (4 + 8 * np.sin(lat) ** 2) * anom + 0.3 * noise
            if short == "t2m":
                f = f + 5 * np.cos(lat) * diurnal
        elif short == "r":
            base = 75 - 20 * np.cos(3 * lat) ** 2 * np.cos(lat) - 30 * (1 - p / 1000)
            f = np.clip(base + 15 * anom + 1.5 * noise, 0, 100)
        elif short in ("u10", "u"):
            peak = 8 if short == "u10" else 8 + 25 * (1 - p / 1000)  # jets strengthen aloft
            jet = peak * np.exp(-((np.abs(lat) - 0.7) / 0.25) ** 2)
            # 10 m winds carry ~1 m/s of unresolved gusts, which no forecast can know
            gusts = 1.0 if short == "u10" else 0.3
            f = jet - 5 * np.exp(-(lat / 0.25) ** 2) + (3 if short == "u10" else 8) * anom + gusts * noise
        elif short in ("v10", "v"):
            f = (2.5 if short == "v10" else 7) * anom + (1.0 if short == "v10" else 0.3) * noise
        elif short == "tcc":
            logit = 0.6 * np.cos(2 * lat) ** 2 - 0.3 + 1.5 * anom + 0.3 * noise
            f = 1 / (1 + np.exp(-logit))
        elif short == "z":
            height = 44330 * (1 - (p / 1013.25) ** 0.19) * (1 + 0.03 * np.cos(lat) ** 2)
            f = 9.80665 * (height + 60 * anom) + 5 * noise
        elif short == "q":
            f = 0.018 * np.cos(lat) ** 3 * (p / 1000) ** 3 * (1 + 0.3 * anom) + 1e-5 * noise
            f = np.clip(f, 1e-6, None)
        elif short == "tp":
            f = np.clip(4e-4 * (anom - 0.5) * np.cos(lat), 0, None)
        elif short == "tisr":
            decl = np.deg2rad(23.44) * season
            cosz = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(
                2 * np.pi * (utc + lon / 15.0 - 12) / 24)
            f = 1361.0 * 3600 * np.clip(cosz, 0, None)
        elif short == "pv":
            f = 1e-6 * (np.sin(lat) * (1 + 5 * (1 - p / 1000)) + 0.3 * anom)
        else:  # vo
            f = 1e-5 * (anom + 0.1 * noise)
        out.append(np.broadcast_to(f, anom.shape))
    return np.stack(out, axis=1).astype(np.float32)


def _write_netcdf(ds, path: Path, encoding: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def make_sample(raw_dir: Path | str, settings: dict, sample: dict | None, seed: int) -> None:
    """Write a generated twin: the real per-year layout, ``hours_per_year`` hours from Jan 1."""
    cfg = parse_settings(settings)
    sample = dict(sample or {})
    unknown = sorted(set(sample) - _SAMPLE_KEYS)
    if unknown:
        raise ConfigError(f"datasets.{cfg.name}.sample.{unknown[0]}: unknown setting; expected "
                          f"some of {sorted(_SAMPLE_KEYS)}")
    hours = _pos_int(sample.get("hours_per_year", 96), f"datasets.{cfg.name}.sample.hours_per_year")
    if hours > 8760:
        raise ConfigError(f"datasets.{cfg.name}.sample.hours_per_year: {hours} is more than a year (8760 h)")
    native = REMOTES[cfg.remote][2]  # wb2 fetches 6-hourly files: the twin matches them
    raw_dir = Path(raw_dir)
    for vi, var in enumerate(cfg.variables):
        has_level = VARIABLES[var][1]
        # without ``levels`` a few, so that keeping the last one is exercised
        levels = (list(cfg.levels) if cfg.levels else [500, 850, 1000]) if has_level else None
        for year in _all_years(cfg):
            rng = np.random.default_rng([seed, vi, year])
            times = np.datetime64(f"{year}-01-01T00", "h") + np.arange(0, hours, native).astype(
                "timedelta64[h]")
            times = times.astype("datetime64[ns]")
            data = _sample_field(var, times, levels, rng)
            write_year(year_file(raw_dir, var, year), var, times, data, levels,
                       attrs={"title": "generated WeatherBench twin (not real data)", "seed": seed},
                       significant_digits=4)  # 0.1 K at 280 K: keeps the twin small once zipped


# -------------------------------------------------------------------------------------- fetch
def _flatten_into(folder: Path, var: str) -> None:
    """Some zips nest ``<var>/`` inside: move the year files up to ``folder``."""
    for p in folder.rglob(f"{var}_*_5.625deg.nc"):
        if p.parent != folder:
            os.replace(p, folder / p.name)
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def _fetch_wb1(raw_dir: Path, cfg: Settings) -> list:
    from pipeline.data.download import download, extract

    results = []
    for var in cfg.variables:
        url = cfg.wb1_url.format(var=var)
        result = download(url, raw_dir / f"{var}_5.625deg.zip")
        results.append(result)
        needed = [year_file(raw_dir, var, y) for y in _all_years(cfg)]
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


def _fetch_wb2(raw_dir: Path, cfg: Settings) -> list:
    import xarray as xr

    from pipeline.data.download import DownloadResult, sha256_file

    results, store = [], None
    for var in cfg.variables:
        for year in _all_years(cfg):
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
    cfg = parse_settings(settings)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    return _fetch_wb1(raw_dir, cfg) if cfg.remote == "wb1" else _fetch_wb2(raw_dir, cfg)
