"""Real-looking generated climate fields, written as CF netCDF files a user could bring.

They are made to look like what the own-data path meets in practice, not like the offline
twins (which were shaped with the sample profile): a large fixed spatial pattern (latitude
gradient, land/sea contrast) with small anomalies on top, trends that leave the training
period's range, spatially correlated red noise, cycles and travelling features. The own-data
recipe is tested and benchmarked on them (``tests/test_own_data_learns.py``,
``bench/own_data_recipe.py``); nothing is tuned to one of them.

Kinds (``KINDS``), each on an odd-sized lat/lon box:

* ``annual``: yearly means on a 360-day calendar, 1850-2089 on 37 x 49 (a climate model's
  annual near-surface temperature): weak then accelerating warming with polar amplification,
  interannual red noise and a slow teleconnection mode.
* ``monthly``: monthly means on a 365-day calendar, 1950-2019 on 30 x 45: a seasonal cycle whose
  amplitude and phase vary with latitude, a trend, month-to-month persistent anomalies.
* ``sixhourly``: 6-hourly steps on the standard calendar, 2000-2002 on 33 x 65: a diurnal cycle
  following local solar time, eastward-travelling synoptic waves, the seasonal cycle.

    write("annual", "tas_annual.nc")   # then point ``datasets.<name>.data.path`` at it
    SPLITS["annual"]                    # matching ``data.splits``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.outputs import atomic

KINDS = ("annual", "monthly", "sixhourly")

# train / val / test dates for ``datasets.<name>.data.splits``, in each file's calendar
SPLITS = {
    "annual": {"train": ["1850", "2009"], "val": ["2010", "2049"], "test": ["2050", "2089"]},
    "monthly": {"train": ["1950", "2004"], "val": ["2005", "2011"], "test": ["2012", "2019"]},
    "sixhourly": {"train": ["2000", "2001"], "val": ["2002-01", "2002-04"], "test": ["2002-05", "2002"]},
}


def field(kind: str, seed: int = 0) -> "xr.Dataset":  # noqa: F821 - xarray imported lazily
    """The generated dataset of ``kind`` (variable ``tas`` in K, CF time axis)."""
    import xarray as xr

    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {KINDS}")
    rng = np.random.default_rng(seed)
    if kind == "annual":
        times = xr.date_range("1850-07-01", periods=240, freq="YS-JUL", calendar="360_day", use_cftime=True)
        lat, lon = np.linspace(15, 75, 37), np.linspace(190, 310, 49)
        tas = _annual(rng, lat, lon, len(times))
    elif kind == "monthly":
        times = xr.date_range("1950-01-16", periods=840, freq="MS", calendar="noleap", use_cftime=True)
        times = [t.replace(day=16) for t in times]
        lat, lon = np.linspace(-58, 58, 30), np.linspace(0, 352, 45)
        tas = _monthly(rng, lat, lon, len(times))
    else:
        import pandas as pd

        times = pd.date_range("2000-01-01", "2002-12-31T18:00", freq="6h")
        lat, lon = np.linspace(-80, 80, 33), np.linspace(0, 360, 65, endpoint=False)
        tas = _sixhourly(rng, lat, lon, times)
    attrs = {"title": f"generated {kind} near-surface temperature (not real data)", "seed": seed}
    return xr.Dataset({"tas": (("time", "lat", "lon"), tas.astype(np.float32), {"units": "K"})},
                      coords={"time": times, "lat": ("lat", lat, {"units": "degrees_north"}),
                              "lon": ("lon", lon, {"units": "degrees_east"})}, attrs=attrs)


def write(kind: str, path: str | Path, seed: int = 0) -> Path:
    """Write the field of ``kind`` to the netCDF file ``path`` (atomically); return the path."""
    path = Path(path)
    ds = field(kind, seed)
    with atomic(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding={"tas": {"zlib": True, "complevel": 1}})
    return path


# --------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, n: int, shape: tuple[int, int], scale: float) -> np.ndarray:
    """``n`` independent Gaussian fields of unit variance, correlated over ~``scale`` grid cells."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    spectrum = np.exp(-0.5 * (ky ** 2 + kx ** 2) * (2 * np.pi * scale) ** 2)
    white = rng.standard_normal((n, *shape))
    out = np.fft.ifft2(np.fft.fft2(white) * spectrum).real
    return out / out.std(axis=(1, 2), keepdims=True)


def _red(rng: np.random.Generator, n: int, shape: tuple[int, int], rho: float, scale: float) -> np.ndarray:
    """AR(1) in time (lag-1 correlation ``rho``) of smooth unit-variance fields."""
    return _ar1(_smooth_noise(rng, n, shape, scale), rho)


def _ar1(shocks: np.ndarray, rho: float) -> np.ndarray:
    """Unit-variance AR(1) series along the first axis, driven by unit-variance ``shocks``."""
    out = np.empty_like(shocks)
    out[0] = shocks[0]
    for t in range(1, len(shocks)):
        out[t] = rho * out[t - 1] + np.sqrt(1 - rho ** 2) * shocks[t]
    return out


def _base(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A fixed pattern: warm tropics, cold poles, a land/sea contrast of a few kelvin."""
    pattern = 300 - 45 * np.sin(np.deg2rad(lat))[:, None] ** 2 + 0 * lon[None, :]
    return pattern + 4 * _smooth_noise(rng, 1, pattern.shape, 4)[0]


def _annual(rng, lat, lon, n):
    years = np.arange(n)  # 1850 + k
    warming = np.where(years > 100, 0.01 * (years - 100) + 1.2e-4 * (years - 100) ** 2, 0.0)  # ~3.7 K by 2089
    amplify = 1 + (lat - lat.min()) / np.ptp(lat)                                              # polar amplification
    noise_std = 0.5 + 0.8 * (lat - lat.min()) / np.ptp(lat)
    mode = np.cos(np.deg2rad(3 * (lon - 200)))[None, :] * np.exp(-((lat - 40) / 20) ** 2)[:, None]
    mode_index = _ar1(rng.standard_normal(n), 0.6)
    return (_base(rng, lat, lon)[None] + warming[:, None, None] * amplify[None, :, None]
            + noise_std[None, :, None] * _red(rng, n, (lat.size, lon.size), 0.35, 3)
            + 0.8 * mode_index[:, None, None] * mode[None]
            + 0.15 * rng.standard_normal((n, lat.size, lon.size)))


def _monthly(rng, lat, lon, n):
    month = np.arange(n)
    hemisphere = np.sign(lat)[None, :, None]
    amplitude = (2 + 14 * np.abs(np.sin(np.deg2rad(lat))))[None, :, None]
    lag = 0.5 + 0.3 * _smooth_noise(rng, 1, (lat.size, lon.size), 5)[0][None]  # ocean-like lag, months
    season = -hemisphere * amplitude * np.cos(2 * np.pi * (month[:, None, None] - lag) / 12)
    trend = 0.002 * month[:, None, None]                                          # ~1.7 K over 70 years
    return (_base(rng, lat, lon)[None] + season + trend
            + 1.2 * _red(rng, n, (lat.size, lon.size), 0.55, 3)
            + 0.2 * rng.standard_normal((n, lat.size, lon.size)))


def _sixhourly(rng, lat, lon, times):
    hours = (times - times[0]) / np.timedelta64(1, "h")
    h = np.asarray(hours, dtype=np.float64)[:, None, None]
    la, lo = np.deg2rad(lat)[None, :, None], np.deg2rad(lon)[None, None, :]
    local_hour = (h + lon[None, None, :] / 15) % 24
    diurnal = (2 + 4 * np.cos(la) ** 2) * np.cos(2 * np.pi * (local_hour - 15) / 24)
    season = -np.sign(lat)[None, :, None] * 10 * np.abs(np.sin(la)) * np.cos(2 * np.pi * (h / 24 - 20) / 365.25)
    waves = np.zeros((len(times), lat.size, lon.size))
    for _ in range(4):  # eastward synoptic waves, ~10 degrees a day, mid-latitude storm tracks
        k = rng.integers(4, 8)
        speed = np.deg2rad(rng.uniform(8, 14)) / 24       # radians of longitude per hour
        centre = rng.choice([-45, 45]) + rng.uniform(-10, 10)
        envelope = np.exp(-((lat - centre) / 15) ** 2)[None, :, None]
        waves += rng.uniform(2, 5) * envelope * np.cos(k * (lo - speed * h) + rng.uniform(0, 2 * np.pi))
    return (_base(rng, lat, lon)[None] + diurnal + season + waves
            + 0.8 * _red(rng, len(times), (lat.size, lon.size), 0.8, 3)
            + 0.2 * rng.standard_normal((len(times), lat.size, lon.size)))


__all__ = ["KINDS", "SPLITS", "field", "write"]
