"""The record files: what a train stage commits under ``runs/<experiment>/``, and a reference
stage under ``runs/reference_<dataset>/``; the report reads these files only. Written and read
here, so their layout is checked in one place.

A record is everything the tables and figures need, so ``reports/`` rebuilds from a clone with no
MLflow store (MLflow is the browsable mirror of the same numbers):

* ``result.json``  experiment, dataset, profile, tables, seeds, the resolved parameters, per seed
  the MLflow run id and every test metric, diagnostic and cost; mean and std over seeds; the
  software versions that trained it (``software``; absent from older records).
* ``history.csv``  per seed and epoch: train/val loss and learning rate.
* ``figures.npz``  the small arrays the figures draw (first seed): one forecast sample, a sample
  of SVQ regression weights, a sample of the codebook.
* ``windows.npz``  per seed and metric, the test error of every test window and lead (``seed<k>.<metric>``,
  float32 (windows, T_out), windows in the test split's order; ``MetricAccumulator.frame_values``),
  so two runs on one dataset compare window by window (absent from older records).
* ``metrics.json``  the run's DVC metrics (``stage_metrics``): its test scores (means over seeds)
  and persistence's on the same windows, with the skill over it, so ``dvc exp show`` and ``dvc
  metrics diff`` show a single-stage experiment's numbers (absent from older records).

A reference stage's ``result.json`` holds, per reference forecast, its label, MLflow run id and
test metrics (``write_reference``, ``read_reference``).
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.outputs import atomic, write_text_atomic

RESULT = "result.json"
HISTORY = "history.csv"
FIGURE_DATA = "figures.npz"
WINDOWS = "windows.npz"
METRICS = "metrics.json"
RECORD_FILES = (RESULT, HISTORY, FIGURE_DATA, WINDOWS, METRICS)  # beside artifacts/ in runs/<experiment>/
VERSION = 2
HISTORY_COLUMNS = ("seed", "epoch", "train_loss", "val_loss", "lr")
# Caps that keep a committed record small whatever the model size
MAX_WEIGHTS = 50_000
MAX_CODES = 1000
# windows.npz's array names: seed, then a metric of MetricAccumulator.frame_values (rmse is sqrt of mse's mean)
WINDOW_METRICS = ("mse", "mae", "ssim", "psnr", "lpips")
_WINDOW_ARRAY = re.compile(rf"seed(\d+)\.({'|'.join(WINDOW_METRICS)})")


def summary(*, experiment: str, dataset: str, profile: str, tables: list[int], params: dict[str, Any],
            seeds: list[dict[str, Any]], software: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The result.json content: ``seeds`` is one ``{"seed", "run_id", "metrics", ...}`` per seed
    (``leads``: per-lead score series of weather runs, ``pipeline.metrics.lead_scores``); ``software``:
    package -> version that trained the run (gathered by the trainer: this module loads no torch)."""
    names = sorted({n for s in seeds for n in s["metrics"]})
    mean, std = {}, {}
    for n in names:
        vals = np.array([_num(s["metrics"].get(n)) for s in seeds], dtype=float)
        mean[n] = _finite(np.mean(vals)) if np.all(np.isfinite(vals)) else None
        std[n] = _finite(np.std(vals)) if np.all(np.isfinite(vals)) else None  # population std; 0 for one seed
    return {
        "version": VERSION, "experiment": experiment, "dataset": dataset, "profile": profile,
        "tables": list(tables), "seeds": [s["seed"] for s in seeds], "run_ids": [s["run_id"] for s in seeds],
        "metrics": mean, "metrics_std": std,
        "params": {k: _jsonable(v) for k, v in sorted(params.items())},
        **({"software": software} if software else {}),
        "runs": [{**s, "metrics": {k: _finite(v) for k, v in sorted(s["metrics"].items())},
                  **({"leads": {k: [_finite(x) for x in v] for k, v in sorted(s["leads"].items())}}
                     if s.get("leads") else {})} for s in seeds],
    }


MAY_BE_MISSING = ("test_lpips",)  # NaN by design where its weights cannot be had (offline)


def require_finite(run: str, metrics: dict[str, Any]) -> None:
    """A DataError naming the first test metric of ``metrics`` (``test_<name>``) that is not a finite
    number: NaN frames (a chunk Zarr filled in, NaN in the source) or a diverged training, which must
    fail the run, not be recorded as a result."""
    for k, v in metrics.items():
        if k.startswith("test_") and k not in MAY_BE_MISSING and not (
                isinstance(v, (int, float)) and math.isfinite(v)):
            raise DataError(f"{run}: {k} is {'null' if v is None else v}, expected a finite number (NaN frames "
                            f"in the store, or a training that diverged); nothing is recorded, the previous "
                            f"record stays")


def write(out_dir: Path, result: dict[str, Any], history: list[dict[str, Any]],
          figure_data: dict[str, np.ndarray] | None,
          windows: dict[int, dict[str, np.ndarray]] | None = None) -> None:
    """Write the record's files into ``out_dir`` (each atomically); ``windows``: seed -> metric -> per-window,
    per-lead test errors (windows.npz)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HISTORY_COLUMNS)
    for h in history:
        w.writerow([h["seed"], h["epoch"], *(f"{h[k]:.6g}" for k in HISTORY_COLUMNS[2:])])
    write_text_atomic(out_dir / HISTORY, buf.getvalue())
    write_text_atomic(out_dir / RESULT, json.dumps(result, indent=2) + "\n")
    if figure_data:
        _write_npz(out_dir / FIGURE_DATA, figure_data)
    if windows:
        _write_npz(out_dir / WINDOWS, {f"seed{seed}.{m}": np.asarray(a, dtype=np.float32)
                                       for seed, arrays in windows.items() for m, a in arrays.items()})


def read(run_dir: Path) -> dict[str, Any]:
    """result.json of one run folder, checked; errors name the file and the stage that rewrites it."""
    path = Path(run_dir) / RESULT
    stage = f"train_{Path(run_dir).name}"
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run its stage (dvc repro {stage})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-run its stage (dvc repro -f {stage})") from exc
    if not isinstance(result, dict) or not isinstance(result.get("runs"), list) or not result["runs"]:
        raise DataError(f"{path}: expected a record with a non-empty 'runs' list (written by the train "
                        f"stage since record version {VERSION}); re-run its stage (dvc repro -f {stage})")
    for key in ("experiment", "profile", "metrics", "metrics_std", "params"):
        if key not in result:
            raise DataError(f"{path}: missing key {key!r}; re-run its stage (dvc repro -f {stage})")
    return result


def read_windows(run_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """windows.npz of one run folder, checked: seed -> metric -> float32 (windows, T_out); empty when the record
    has none (written before it was). Errors name the file and the stage that rewrites it."""
    path = Path(run_dir) / WINDOWS
    stage = f"train_{Path(run_dir).name}"
    if not path.exists():
        return {}
    redo = f"re-run its stage (dvc repro -f {stage})"
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an npz archive")
        with data:
            arrays = {k: data[k] for k in data.files}  # a pickled (object) array raises here
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable npz of numeric arrays ({exc}); {redo}") from exc
    out: dict[int, dict[str, np.ndarray]] = {}
    for name, a in sorted(arrays.items()):
        match = _WINDOW_ARRAY.fullmatch(name)
        if match is None:
            raise DataError(f"{path}: unexpected array {name!r}, expected seed<k>.<metric> with a metric among "
                            f"{list(WINDOW_METRICS)}; {redo}")
        if a.ndim != 2 or a.dtype.kind != "f":
            raise DataError(f"{path}: array {name!r} is {a.dtype} {a.shape}, expected float (windows, leads); {redo}")
        out.setdefault(int(match[1]), {})[match[2]] = a
    shapes = sorted({a.shape for a in arrays.values()})
    if len(shapes) > 1:  # every seed and metric scores the same test windows and leads
        raise DataError(f"{path}: arrays of different shapes {shapes}; {redo}")
    return out


def stage_metrics(result: dict[str, Any]) -> dict[str, float | None]:
    """``metrics.json``: the test scores of ``result`` (mean over seeds, the dataset's metrics) and,
    for each reference forecast on the same windows (``result["references"]``,
    ``pipeline.training.reference_comparison``): its test MSE ``<reference>_mse``, the skill
    ``skill_mse_<reference>`` = 1 - test_mse / <reference>_mse (above 0: the model beats it) and
    ``leads_lost_<reference>``, the number of leads where the model does not beat it."""
    metrics = result.get("metrics") or {}
    out: dict[str, float | None] = {k: _finite(v) for k, v in sorted(metrics.items()) if k.startswith("test_")}
    for name, c in (result.get("references") or {}).items():
        out[f"{name}_mse"] = _finite(c.get("mse"))
        out[f"skill_mse_{name}"] = _finite(c.get("skill_mse"))
        out[f"leads_lost_{name}"] = len(c.get("leads_lost") or [])
    return out


def write_reference(out_dir: Path, record: dict[str, Any]) -> None:
    """A reference stage's result.json (atomically)."""
    write_text_atomic(Path(out_dir) / RESULT, json.dumps(record, indent=2) + "\n")


def read_reference(ref_dir: Path) -> dict[str, Any] | None:
    """A reference stage's result.json, checked (None when the stage has not run); errors name the
    file and the stage that rewrites it."""
    path = Path(ref_dir) / RESULT
    stage = Path(ref_dir).name
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-run its stage ({stage})") from exc
    refs = record.get("references") if isinstance(record, dict) else None
    if not isinstance(refs, dict) or not all(isinstance(e, dict) and isinstance(e.get("metrics"), dict)
                                             for e in refs.values()):
        raise DataError(f"{path}: expected a 'references' mapping of reference -> "
                        f"{{label, metrics}}; re-run its stage ({stage})")
    return record


def read_history(run_dir: Path, column: str = "val_loss") -> dict[int, list[tuple[int, float]]]:
    """``column`` of history.csv per epoch that has it (validation loss: per validated epoch,
    ``train.val_every``), by seed (empty when the run has no history file)."""
    if column not in HISTORY_COLUMNS[2:]:
        raise ValueError(f"history column {column!r}: expected one of {HISTORY_COLUMNS[2:]}")
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return {}
    out: dict[int, list[tuple[int, float]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            val = float(row[column])
            if not math.isnan(val):
                out.setdefault(int(row["seed"]), []).append((int(row["epoch"]), val))
    return out


def write_figure_data(out_dir: Path, seed: int, data: dict[str, np.ndarray]) -> None:
    """One seed's figure arrays, beside its checkpoint; ``write`` commits the first seed's."""
    _write_npz(Path(out_dir) / f"figures-seed{seed}.npz", data)


def read_figure_data(run_dir: Path, seed: int | None = None) -> dict[str, np.ndarray]:
    """The committed figures.npz (or, with ``seed``, that seed's file written while training)."""
    path = Path(run_dir) / (FIGURE_DATA if seed is None else f"figures-seed{seed}.npz")
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def sample_rows(a: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """At most ``n`` rows of ``a``, a seeded random choice in their original order."""
    if len(a) <= n:
        return a
    idx = np.sort(np.random.default_rng(seed).choice(len(a), size=n, replace=False))
    return a[idx]


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(Path(path), json.dumps(data, indent=2) + "\n")


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic(path, suffix=".npz") as tmp:  # np.savez would append .npz to any other name
        np.savez_compressed(tmp, **arrays)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _finite(v: Any) -> float | None:
    """JSON (and so DVC) has no NaN: an unavailable metric (LPIPS offline) is written as null."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v
