"""The WeatherBench twin: plausible fields in physical units (climatology, diurnal and seasonal
cycles, eastward-moving weather) in the real per-year layout, a few hours from each Jan 1."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.weatherbench.layout import GRID, LAT, LON, write_year, year_file
from pipeline.data.sources.weatherbench.settings import (REMOTES, VARIABLES, WeatherBenchSample,
                                                         WeatherBenchSettings)


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


def make_sample(raw_dir: Path | str, settings: dict, sample: dict | None, seed: int) -> None:
    """Write a generated twin: the real per-year layout, ``hours_per_year`` hours from Jan 1."""
    cfg = data_settings(WeatherBenchSettings, settings)
    hours = sample_settings(WeatherBenchSample, sample, cfg.name).hours_per_year
    native = REMOTES[cfg.remote][2]  # wb2 fetches 6-hourly files: the twin matches them
    raw_dir = Path(raw_dir)
    for vi, var in enumerate(cfg.variables):
        has_level = VARIABLES[var][1]
        # without ``levels`` a few, so that keeping the last one is exercised
        levels = (list(cfg.levels) if cfg.levels else [500, 850, 1000]) if has_level else None
        for year in cfg.all_years():
            rng = np.random.default_rng([seed, vi, year])
            times = np.datetime64(f"{year}-01-01T00", "h") + np.arange(0, hours, native).astype(
                "timedelta64[h]")
            times = times.astype("datetime64[ns]")
            data = _sample_field(var, times, levels, rng)
            write_year(year_file(raw_dir, var, year), var, times, data, levels,
                       attrs={"title": "generated WeatherBench twin (not real data)", "seed": seed},
                       significant_digits=4)  # 0.1 K at 280 K: keeps the twin small once zipped
