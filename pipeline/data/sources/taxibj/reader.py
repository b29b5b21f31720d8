"""Reading TaxiBJ's ``dataset.npz`` (real or twin) into the three splits (rules in
``taxibj/__init__.py``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.prepared import Prepared, Split
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import find_dir
from pipeline.data.sources.taxibj.settings import TaxiBJSettings

NAME = "taxibj"
FILE = "dataset.npz"
KEYS = ("X_train", "Y_train", "X_test", "Y_test")
CHANNELS = ["inflow", "outflow"]
GRID = (32, 32)


def _npz(raw_dir: Path) -> Path:
    return find_dir(Path(raw_dir), lambda d: (d / FILE).is_file(), FILE) / FILE


def _read(path: Path, s: TaxiBJSettings) -> dict[str, np.ndarray]:
    T_in, T_out = s.T_in, s.T_out
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
                            f"datasets.{s.name}.data.T_in is {T_in}")
        if y.shape[1] != T_out:
            raise DataError(f"{path}: Y_{split} holds {y.shape[1]} target frames but "
                            f"datasets.{s.name}.data.T_out is {T_out}")
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
    s = data_settings(TaxiBJSettings, settings)
    path = _npz(raw_dir)
    a = _read(path, s)
    n = a["X_train"].shape[0]
    gap = s.T_in + s.T_out - 1
    n_val = max(1, int(round(s.val_fraction * n)))
    n_train = n - n_val - gap
    if n_train < 1:
        raise DataError(f"{path}: {n} train samples cannot give {n_val} validation samples "
                        f"(datasets.{s.name}.data.val_fraction={s.val_fraction}) plus a gap of {gap} "
                        f"and leave any for training")
    splits = {
        "train": _split(a["X_train"][:n_train], a["Y_train"][:n_train]),
        "val": _split(a["X_train"][n - n_val:], a["Y_train"][n - n_val:]),
        "test": _split(a["X_test"], a["Y_test"]),
    }
    ranges = {k: [float(v.frames.min()), float(v.frames.max())] for k, v in splits.items()}
    return Prepared(
        splits=splits, channels=list(CHANNELS), T_in=s.T_in, T_out=s.T_out, step=1,
        scaling="fixed", metric_space="model", offset=[-1.0] * len(CHANNELS),
        scale=[2.0] * len(CHANNELS),
        attrs={"source": NAME, "file": str(path), "url": s.url,
               "samples": {"train_file": n, "test_file": int(a["X_test"].shape[0]),
                           "train": n_train, "val": n_val, "test": int(a["X_test"].shape[0]),
                           "dropped_before_val": gap},
               "val_rule": f"last {n_val} train samples; the {gap} before them dropped",
               "value_range": ranges})
