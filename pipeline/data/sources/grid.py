"""Helpers shared by the gridded sources (WeatherBench, custom): time axes, OpenSTL's frame
selection and windows, stacking variables into (N, C, H, W) frames, NaN checks, provenance."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError


def iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "s")))


def hours(d: np.timedelta64) -> float:
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
        raise DataError(f"{where}: time axis is not strictly increasing: {iso(times[i])} is followed "
                        f"by {iso(times[i + 1])}")
    bad = np.flatnonzero(d != d[0])
    if bad.size:
        i = bad[0]
        raise DataError(f"{where}: time axis is not evenly spaced (a gap or an irregular step): "
                        f"steps of {hours(d[0]):g} h, but {iso(times[i])} -> {iso(times[i + 1])} "
                        f"is {hours(d[i]):g} h")
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


def as_index(keep: np.ndarray):
    """A slice when the kept frames are evenly spaced (always, for real data): a lighter dask graph."""
    if keep.size > 1 and (np.diff(keep) == keep[1] - keep[0]).all():
        return slice(int(keep[0]), int(keep[-1]) + 1, int(keep[1] - keep[0]))
    return keep


def stack_frames(arrays: list, index) -> Any:
    """Per-variable (time, level, y, x) arrays as float32 (N, C, H, W) frames at ``index``,
    whole frames per chunk (consumers chunk along time only)."""
    import dask.array as da

    frames = da.concatenate([a.data for a in arrays], axis=1)[index]
    return frames.astype(np.float32).rechunk({1: -1, 2: -1, 3: -1})


def first_nan(frames, channels: list[str]) -> tuple[int, str] | None:
    """(frame index, channel) of the first NaN in a (N, C, H, W) numpy/dask array, or None."""
    import dask.array as da

    arr = da.asarray(frames)
    bad = np.asarray(da.isnan(arr).any(axis=(2, 3)).compute())  # (N, C)
    if not bad.any():
        return None
    i, c = np.argwhere(bad)[0]
    return int(i), channels[int(c)]


def add_manifest(attrs: dict[str, Any], raw_dir: Path) -> dict[str, Any]:
    """The download manifest (url, size, sha256 of each fetched file), when there is one."""
    manifest = Path(raw_dir) / "manifest.json"
    if manifest.is_file():
        from pipeline.data.download import load_manifest

        attrs["manifest"] = load_manifest(manifest)
    return attrs
