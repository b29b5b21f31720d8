"""TaxiBJ as OpenSTL ships it (``taxibj_dataset.zip`` -> ``dataset.npz``): 4 -> 4 crowd flows.

Raw layout: ``<raw_dir>/dataset.npz`` (also found one or two folders down, wherever the zip put
it) holding ``X_train``, ``Y_train``, ``X_test``, ``Y_test``, each ``(N, T, 2, 32, 32)``: T_in
input and T_out target maps of inflow and outflow, min-max normalised to [-1, 1]. Each sample is
already cut; consecutive samples may be overlapping slices of one half-hourly series.

Rules (OpenSTL ``openstl/datasets/dataloader_taxibj.py``):

* A sample is ``concat(X[i], Y[i])`` along time: T_in + T_out frames, one window per sample,
  so a split's frames are its samples laid end to end and ``starts = arange(N) * (T_in+T_out)``.
* OpenSTL feeds ``(x + 1) / 2``: stored here as float32 in the file's [-1, 1] units with fixed
  scaling offset -1, scale 2 per channel; metrics in the model's [0, 1] space.
* Splits: OpenSTL trains on all of train and validates on test. Here validation is a held-out
  slice of the END of train (``val_fraction`` of the train samples, at least one), and the
  ``T_in + T_out - 1`` train samples just before it are dropped, so that no frame of a
  validation sample also appears in a training sample when samples are stride-1 slices of the
  series. Test is OpenSTL's test set unchanged.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "taxibj"), ``source`` is ignored):

* ``T_in``, ``T_out``: must equal the file's X and Y lengths (4 and 4; OpenSTL asserts the same).
* ``val_fraction``: fraction of train samples held out at its end for validation (e.g. 0.1).
* ``url`` (default: OpenSTL's v0.1.0 release of ``taxibj_dataset.zip``), ``sha256`` (default none).

Sample knobs (``datasets.<name>.sample``, optional): ``train_samples`` (default 40),
``test_samples`` (default 10). The twin is a half-hourly series of a fixed city's crowd flows with
rush hours, weekends and Poisson count noise (``_city_flows``), starting on a Wednesday, min-max
normalised like the release, cut into stride-1 samples, saved with ``np.savez_compressed`` (same
keys and shapes, dtype float32).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import DataError, Prepared, Split
from pipeline.data.sources.frames import find_dir
from pipeline.data.sources.settings import REQUIRED, check_settings, data_settings, fraction, int_at_least, sha256_or_none, url_string
from pipeline.data.sources import SOURCES
from pipeline.errors import ConfigError

NAME = "taxibj"
SOURCES.register(NAME)(sys.modules[__name__])  # a package of its own next
URL = "https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/taxibj_dataset.zip"
ARCHIVE = "taxibj_dataset.zip"
FILE = "dataset.npz"
KEYS = ("X_train", "Y_train", "X_test", "Y_test")
CHANNELS = ["inflow", "outflow"]
GRID = (32, 32)

_SPEC = {
    "T_in": (REQUIRED, int_at_least(1)),
    "T_out": (REQUIRED, int_at_least(1)),
    "val_fraction": (REQUIRED, fraction),
    "url": (URL, url_string),
    "sha256": (None, sha256_or_none),
}
_SAMPLE_SPEC = {
    "train_samples": (40, int_at_least(2)),
    "test_samples": (10, int_at_least(1)),
}


def _settings(settings: Any) -> dict[str, Any]:
    return data_settings(settings, _SPEC, NAME)


def _npz(raw_dir: Path) -> Path:
    return find_dir(Path(raw_dir), lambda d: (d / FILE).is_file(), FILE) / FILE


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``taxibj_dataset.zip`` into ``raw_dir`` and unpack ``dataset.npz``."""
    from pipeline.data.download import fetch_archive

    s = _settings(settings)
    raw_dir = Path(raw_dir)
    target = raw_dir / "taxibj_dataset"
    result = fetch_archive(s["url"], raw_dir / ARCHIVE, target, sha256=s["sha256"])
    find_dir(target, lambda d: (d / FILE).is_file(), f"{FILE} inside {result.path.name}")
    return [result]


def _read(path: Path, s: dict[str, Any]) -> dict[str, np.ndarray]:
    T_in, T_out = s["T_in"], s["T_out"]
    try:
        with np.load(path, allow_pickle=False) as z:
            found = list(z.files)
            arrays = {k: z[k] for k in KEYS if k in found}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: lacks arrays {missing}; expected {list(KEYS)}, found {found}")
    for k, a in arrays.items():
        if a.ndim != 5 or a.shape[2:] != (len(CHANNELS), *GRID) or not np.issubdtype(a.dtype, np.number):
            raise DataError(f"{path}: {k} has shape {a.shape} and dtype {a.dtype}; expected numbers "
                            f"shaped (N, T, {len(CHANNELS)}, {GRID[0]}, {GRID[1]})")
    for split in ("train", "test"):
        x, y = arrays[f"X_{split}"], arrays[f"Y_{split}"]
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{path}: X_{split} has {x.shape[0]} samples but Y_{split} has {y.shape[0]}")
        if x.shape[1] != T_in:
            raise DataError(f"{path}: X_{split} holds {x.shape[1]} input frames but "
                            f"datasets.{s['name']}.data.T_in is {T_in}")
        if y.shape[1] != T_out:
            raise DataError(f"{path}: Y_{split} holds {y.shape[1]} target frames but "
                            f"datasets.{s['name']}.data.T_out is {T_out}")
        if x.shape[0] == 0:
            raise DataError(f"{path}: X_{split} holds no samples")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise DataError(f"{path}: X_{split}/Y_{split} contain NaN or infinite values")
    return arrays


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    samples = np.concatenate([x, y], axis=1, dtype=np.float32)
    n, length = samples.shape[:2]
    return Split(frames=samples.reshape(n * length, *samples.shape[2:]),
                 starts=np.arange(n, dtype=np.int64) * length)


def load(raw_dir: Path, settings: Any) -> Prepared:
    s = _settings(settings)
    path = _npz(raw_dir)
    a = _read(path, s)
    n = a["X_train"].shape[0]
    gap = s["T_in"] + s["T_out"] - 1
    n_val = max(1, int(round(s["val_fraction"] * n)))
    n_train = n - n_val - gap
    if n_train < 1:
        raise DataError(f"{path}: {n} train samples cannot give {n_val} validation samples "
                        f"(datasets.{s['name']}.data.val_fraction={s['val_fraction']}) plus a gap of {gap} "
                        f"and leave any for training")
    splits = {
        "train": _split(a["X_train"][:n_train], a["Y_train"][:n_train]),
        "val": _split(a["X_train"][n - n_val:], a["Y_train"][n - n_val:]),
        "test": _split(a["X_test"], a["Y_test"]),
    }
    ranges = {k: [float(v.frames.min()), float(v.frames.max())] for k, v in splits.items()}
    return Prepared(
        splits=splits, channels=list(CHANNELS), T_in=s["T_in"], T_out=s["T_out"], step=1,
        scaling="fixed", metric_space="model", offset=[-1.0] * len(CHANNELS),
        scale=[2.0] * len(CHANNELS),
        attrs={"source": NAME, "file": str(path), "url": s["url"],
               "samples": {"train_file": n, "test_file": int(a["X_test"].shape[0]),
                           "train": n_train, "val": n_val, "test": int(a["X_test"].shape[0]),
                           "dropped_before_val": gap},
               "val_rule": f"last {n_val} train samples; the {gap} before them dropped",
               "value_range": ranges})


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
    s = _settings(settings)
    k = check_settings(sample, _SAMPLE_SPEC, f"datasets.{s['name']}.sample")
    length = s["T_in"] + s["T_out"]
    if k["train_samples"] < length + 1:
        raise ConfigError(f"datasets.{s['name']}.sample.train_samples: expected at least {length + 1} "
                          f"(one for training, the gap of {length - 1}, one for validation), "
                          f"got {k['train_samples']}")
    rng = np.random.default_rng(seed)
    steps = k["train_samples"] + k["test_samples"] + 2 * (length - 1)
    flows = _city_flows(rng, steps, first_slot=2 * 48)  # a Wednesday midnight: train spans a weekend
    # the release is min-max normalised to [-1, 1] over the whole series
    series = flows / flows.max() * 2 - 1  # (T, C, H, W)

    def cut(first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        w = np.stack([series[first + i:first + i + length] for i in range(count)])
        return w[:, :s["T_in"]], w[:, s["T_in"]:]

    x_train, y_train = cut(0, k["train_samples"])
    x_test, y_test = cut(k["train_samples"] + length - 1, k["test_samples"])
    Path(raw_dir).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(raw_dir) / FILE, X_train=x_train, Y_train=y_train,
                        X_test=x_test, Y_test=y_test)
