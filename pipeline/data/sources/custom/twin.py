"""The custom source's twin: a small netCDF file (or Zarr store, when ``path`` is one) with the
configured variables, levels and splits, on a lat/lon grid of travelling waves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.outputs import atomic
from pipeline.data import calendar as cal
from pipeline.data.prepared import SPLITS
from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.custom.files import is_zarr, write_pointer
from pipeline.data.sources.custom.settings import CustomSample, CustomSettings


def make_sample(raw_dir: Path | str, settings: dict, sample: dict | None, seed: int) -> None:
    """Write a small twin (netCDF, or Zarr when ``path`` is one) with ``frames_per_split`` time
    steps from the start of each split, on a ``height`` x ``width`` lat/lon grid."""
    import xarray as xr

    cfg = data_settings(CustomSettings, settings)
    k = sample_settings(CustomSample, sample, cfg.name)
    n, height, width, interval = k.frames_per_split, k.height, k.width, k.step()
    parts = []
    for split in SPLITS:
        start, end = cfg.dates(split)
        lo, hi = cal.bounds(start, end, np.zeros(0, "datetime64[ns]"), cfg.key("splits", split))
        t = lo + np.arange(n) * interval
        if t[-1] >= hi:
            raise ConfigError(f"datasets.{cfg.name}.sample.frames_per_split: {n} steps of {k.interval} "
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
    out = Path(raw_dir) / ("custom_sample.zarr" if is_zarr(cfg.path) else "custom_sample.nc")
    with atomic(out) as tmp:
        if out.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
        else:
            ds.to_netcdf(tmp, engine="netcdf4", encoding={v: {"zlib": True, "complevel": 4} for v in cfg.variables})
    write_pointer(raw_dir, out.name, sample=True)
