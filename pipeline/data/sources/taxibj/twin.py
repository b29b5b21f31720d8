"""The TaxiBJ twin: a ``dataset.npz`` with the release's keys, shapes and value range."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.taxibj.reader import CHANNELS, FILE, GRID
from pipeline.data.sources.taxibj.settings import TaxiBJSample, TaxiBJSettings


def _city_flows(rng: np.random.Generator, steps: int, first_slot: int) -> np.ndarray:
    """Half-hourly crowd flows (steps, 2, 32, 32) >= 0 in counts, shaped like Beijing's: a fixed
    city (population density everywhere, arterial roads, business and residential hot spots)
    whose inflow and outflow rise from a night low into morning and evening rush hours (business
    areas fill in the morning and empty in the evening, residential ones the reverse), weaker on
    weekends, with Poisson count noise. Over the 2 h of a target the daily ramps move the flows
    far more than persistence allows for, while the layout and the phase of the day are
    learnable from the inputs."""
    H, W = GRID
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    density = np.zeros(GRID, np.float32)
    for _ in range(6):  # smooth districts of different density
        cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(4, 10)
        density += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    density = 0.2 + density / density.max()
    roads = np.zeros(GRID, np.float32)
    for r in rng.choice(np.arange(3, H - 3), size=3, replace=False):
        roads += 0.6 * np.exp(-(yy - r) ** 2 / 1.5)
    for c in rng.choice(np.arange(3, W - 3), size=3, replace=False):
        roads += 0.6 * np.exp(-(xx - c) ** 2 / 1.5)
    roads += 0.6 * np.exp(-(np.hypot(yy - H / 2, xx - W / 2) - 10) ** 2 / 2.0)  # a ring road
    kinds = []  # (map, business?)
    for k in range(10):
        cy, cx, r = rng.uniform(3, H - 3), rng.uniform(3, W - 3), rng.uniform(1.5, 3.5)
        kinds.append((rng.uniform(0.8, 1.6) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2)), k % 2 == 0))
    slot = first_slot + np.arange(steps)
    hour = (slot % 48) / 2.0
    weekend = ((slot // 48) % 7) >= 5
    awake = 0.08 + 0.92 / (1 + np.exp(-(hour - 7.0) * 1.2)) / (1 + np.exp((hour - 22.5) * 1.2))
    peak = np.where(weekend, 0.35, 1.0)
    morning = peak * np.exp(-(hour - 8.5) ** 2 / (2 * 1.2 ** 2))
    evening = peak * np.exp(-(hour - 18.0) ** 2 / (2 * 1.5 ** 2))
    curves = {  # business: in at the morning rush, out at the evening one; residential the reverse
        True: (awake + 2.0 * morning + 0.5 * evening, awake + 0.5 * morning + 2.0 * evening),
        False: (awake + 0.5 * morning + 2.0 * evening, awake + 2.0 * morning + 0.5 * evening),
    }
    flows = np.empty((steps, len(CHANNELS), H, W), np.float32)
    for c in range(len(CHANNELS)):
        flows[:, c] = (awake + morning + evening)[:, None, None] * (density + roads)[None]
        for shape, business in kinds:
            flows[:, c] += curves[business][c][:, None, None] * shape[None]
    counts = rng.poisson(100.0 * flows)  # a busy cell sees several hundred people per half hour
    return counts.astype(np.float32)


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small ``dataset.npz`` twin: same keys, (N, T, 2, 32, 32) float32 in [-1, 1]."""
    s = data_settings(TaxiBJSettings, settings)
    k = sample_settings(TaxiBJSample, sample, s.name)
    length = s.T_in + s.T_out
    if k.train_samples < length + 1:
        raise ConfigError(f"datasets.{s.name}.sample.train_samples: expected at least {length + 1} "
                          f"(one for training, the gap of {length - 1}, one for validation), "
                          f"got {k.train_samples}")
    rng = np.random.default_rng(seed)
    steps = k.train_samples + k.test_samples + 2 * (length - 1)
    flows = _city_flows(rng, steps, first_slot=2 * 48)  # a Wednesday midnight: train spans a weekend
    # the release is min-max normalised to [-1, 1] over the whole series
    series = flows / flows.max() * 2 - 1  # (T, C, H, W)

    def cut(first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        w = np.stack([series[first + i:first + i + length] for i in range(count)])
        return w[:, :s.T_in], w[:, s.T_in:]

    x_train, y_train = cut(0, k.train_samples)
    x_test, y_test = cut(k.train_samples + length - 1, k.test_samples)
    Path(raw_dir).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(raw_dir) / FILE, X_train=x_train, Y_train=y_train,
                        X_test=x_test, Y_test=y_test)
