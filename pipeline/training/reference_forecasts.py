"""Reference forecasts: what a trained model must beat to have learned anything.

* ``persistence``: the last input frame repeated over the horizon. On video datasets this is the
  usual "copy last frame" baseline (same key, labelled so in the report).
* ``input_mean``: the mean of the input frames repeated over the horizon: where the changes from
  step to step are mostly noise (annual means), it beats persistence, and a model must beat it too.
* ``climatology``: the per-pixel mean of the training split's frames, the same for every lead.
* ``climatology_hour``: the per-pixel mean of the training frames at the same hour of day as each
  target frame (sub-daily weather only; an hour the training split never shows falls back to the
  all-hours mean).

They are scored with the project's own metric code, with the settings the trained models are
evaluated with (``pipeline.metrics.openstl.evaluation_accumulator``), on every window of the test split
(no cap), through the same window reader and de-normalisation, so a reference's MSE and a trained
run's test MSE are directly comparable.

    reference_scores("data/processed/t2m.zarr", ["mse", "mae"])
    # {"persistence": {"test_mse": ..., "test_mae": ...}, "climatology": {...}, "climatology_hour": {...}}

``run_references`` is the DVC stage's work: the scores of one dataset, one MLflow run per
reference, and ``runs/reference_<ds>/result.json``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.config.params_file import typed
from pipeline.core.errors import DataError
from pipeline.data.store import read_meta
from pipeline.data.windows import WindowDataset
from pipeline.metrics.openstl import evaluation_accumulator
from pipeline.training import record_files

REFERENCES = ("persistence", "input_mean", "climatology", "climatology_hour")
LABELS = {"persistence": "Persistence (last input frame)", "input_mean": "Input mean (mean of the input frames)",
          "climatology": "Climatology (train mean)", "climatology_hour": "Climatology by hour of day"}
VIDEO_LABELS = {"persistence": "Copy last frame", "input_mean": "Mean of the input frames"}
BATCH = 64         # test windows per metric update (metrics do not depend on it)
TRAIN_BLOCK = 256  # training frames read at once for the climatology


def store_kind(store: str | Path) -> str:
    """``weather`` (physical units), ``video`` (integer pixels) or ``grid`` (TaxiBJ-like scaled fields)."""
    meta = read_meta(store)
    if meta["metric_space"] == "physical":
        return "weather"
    dtype = zarr.open_group(Path(store), mode="r")["train"]["frames"].dtype
    return "video" if np.issubdtype(dtype, np.integer) else "grid"


def default_references(store: str | Path) -> tuple[str, ...]:
    """Which references a store gets: copy-last-frame and the input mean for video; persistence, the
    input mean and climatology otherwise; climatology by hour of day too when the frames carry
    sub-daily timestamps."""
    return _defaults(store)[0]


def _defaults(store: str | Path) -> tuple[tuple[str, ...], np.ndarray | None]:
    """:func:`default_references` and the training split's hours it looked at (None if it did not)."""
    kind = store_kind(store)
    if kind == "video":
        return ("persistence", "input_mean"), None
    hours = _hours(store, "train") if kind == "weather" else None
    return (REFERENCES if hours is not None else ("persistence", "input_mean", "climatology")), hours


def label(reference: str, kind: str) -> str:
    return (VIDEO_LABELS if kind == "video" else {}).get(reference, LABELS[reference])


def reference_scores(store: str | Path, metrics: Sequence[str], references: Sequence[str] | None = None,
                     window_mse: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Test-split scores of the reference forecasts of one Zarr store.

    ``metrics``: metric names as in ``datasets.<ds>.metrics`` (mse, mae, rmse, ssim, psnr, lpips).
    ``references``: among :data:`REFERENCES`; default :func:`default_references`. Returns
    ``{reference: {"test_<metric>": value}}``, keys named as in a trained run's result.json;
    an unavailable metric (LPIPS offline) is NaN, as for trained runs. Given a dict ``window_mse``,
    each reference's MSE per test window and lead, (windows, T_out), is put in it too (its mean is
    ``test_mse``; a trained run's are in its windows.npz).
    """
    test = WindowDataset(store, "test")
    forecasts = ReferenceForecasts(store, test, references)
    keep = window_mse is not None
    if keep and "mse" not in metrics:
        metrics = [*metrics, "mse"]
    accs = {r: evaluation_accumulator(metrics, test.metric_space, keep_frames=keep, channels=test.channels)
            for r in forecasts.names}
    for lo in range(0, len(test), BATCH):
        idx = range(lo, min(lo + BATCH, len(test)))
        pairs = [test[i] for i in idx]
        x = np.stack([p[0].numpy() for p in pairs])
        y = np.stack([p[1].numpy() for p in pairs])
        truth = test.to_metric_space(y)
        for r in forecasts.names:
            accs[r].update(test.to_metric_space(forecasts.predict(r, x, np.asarray(idx))), truth)
    if keep:
        window_mse.update({r: acc.frame_values()["mse"].astype(np.float64) for r, acc in accs.items()})
    return {r: {f"test_{k}": v for k, v in acc.compute().items()} for r, acc in accs.items()}


class ReferenceForecasts:
    """The reference forecasts of the test windows of one store, in the model's space (also used
    for the per-lead skill scores of trained runs, ``pipeline.metrics.lead_scores``)."""

    def __init__(self, store: str | Path, test: WindowDataset, references: Sequence[str] | None = None):
        store = Path(store)
        train_hours = None  # read once: the defaults and the hourly climatology both need them
        if references is None:
            refs, train_hours = _defaults(store)
        else:
            refs = tuple(references)
        unknown = [r for r in refs if r not in REFERENCES]
        if unknown:
            raise DataError(f"references: unknown reference(s) {unknown}; expected among {list(REFERENCES)}")
        self.names, self.T_out = refs, test.T_out
        self.climatology = self.hourly = self.target_hours = None
        if "climatology" in refs or "climatology_hour" in refs:
            if "climatology_hour" in refs and train_hours is None:
                train_hours = _hours(store, "train")
            self.climatology, self.hourly = _train_means(store, test, train_hours if "climatology_hour" in refs
                                                         else None)
        if "climatology_hour" in refs:
            hours = _hours(store, "test")
            if self.hourly is None or hours is None:
                raise DataError(f"{store}: climatology_hour needs sub-daily timestamps in the train and "
                                f"test splits; this store has none")
            # hour of day of every target frame, (windows, T_out)
            self.target_hours = hours[test.starts[:, None] + test.offsets[None, test.T_in:]]

    def predict(self, reference: str, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Forecast of ``reference`` for inputs ``x`` (B, T_in, C, H, W) of test windows ``windows``."""
        if reference == "persistence":
            return np.repeat(x[:, -1:], self.T_out, axis=1)
        if reference == "input_mean":
            return np.repeat(x.mean(axis=1, keepdims=True), self.T_out, axis=1)
        shape = (len(x), self.T_out, *x.shape[2:])
        if reference == "climatology":
            return np.broadcast_to(self.climatology, shape)
        return self.hourly[self.target_hours[windows]]


# --------------------------------------------------------------------------------------------
def _hours(store: Path | str, split: str) -> np.ndarray | None:
    """Hour of day of every frame of ``split``; None without timestamps, for daily or coarser
    steps, or when every frame falls on the same hour (no diurnal cycle to follow)."""
    import xarray as xr

    try:
        # chunks=None: plain lazily read arrays; dask's graph for one small time axis costs more than reading it
        ds = xr.open_zarr(Path(store), group=split, consolidated=False, chunks=None)
    except Exception as exc:  # xarray/zarr raise several types for an unreadable group
        raise DataError(f"{store}: cannot read split {split!r} ({exc})") from exc
    if "time" not in ds.variables or ds.sizes.get("frame", 0) < 2:
        return None
    import pandas as pd

    # the typical step, not the hours seen: monthly means stamped mid-month fall on varying hours
    step = pd.to_timedelta(np.diff(ds["time"].values)).median()
    if not step < pd.Timedelta(days=1):
        return None
    hours = np.asarray(ds["time"].dt.hour.values, dtype=np.int64)
    return hours if np.unique(hours).size > 1 else None


def _train_means(store: Path, test: WindowDataset, hours: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-pixel mean of the train frames, and per hour of day (24, C, H, W) when given the train
    frames' ``hours``, in the model's space (scaled as the windows are), float32 like the model's
    forecasts."""
    frames = zarr.open_group(store, mode="r")["train"]["frames"]
    shape = frames.shape[1:]
    total = np.zeros(shape, dtype=np.float64)
    by_hour = np.zeros((24, *shape), dtype=np.float64) if hours is not None else None
    counts = np.zeros(24, dtype=np.int64)
    for lo in range(0, frames.shape[0], TRAIN_BLOCK):
        block = np.asarray(frames[lo:lo + TRAIN_BLOCK], dtype=np.float64)
        total += block.sum(axis=0)
        if by_hour is not None:
            h = hours[lo:lo + len(block)]
            np.add.at(by_hour, h, block)
            counts += np.bincount(h, minlength=24)
    mean = total / frames.shape[0]
    scale = lambda a: ((a - test.offset) / test.scale).astype(np.float32)  # noqa: E731
    if by_hour is None:
        return scale(mean), None
    seen = counts > 0
    by_hour[seen] /= counts[seen][:, None, None, None]
    by_hour[~seen] = mean
    return scale(mean), scale(by_hour)


# --------------------------------------------------------------------------------------------
def _offline_store(params: dict[str, Any], dataset: str) -> Path | None:
    """Reference runs log where the dataset's trainings do: its first experiment's train.tracking
    (``TrainSettings.offline_store``), None for the tracking server."""
    from pipeline.config.run_config import resolve_run

    names = [n for n, e in params["experiments"].items() if e["dataset"] == dataset]
    return resolve_run(params, names[0]).train.offline_store() if names else None


def run_references(params: dict[str, Any], dataset: str, store: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Score the references of ``dataset``, log one MLflow run per reference, and write
    ``out_dir/result.json`` (the same conventions as a trained run's: metrics ``test_<m>``, null
    for an unavailable value); return the record."""
    from pipeline.tracking import mlflow_runs

    catalogue = typed(params)
    if dataset not in catalogue.datasets:
        raise DataError(f"references: unknown dataset {dataset!r}; expected one of {sorted(catalogue.datasets)}")
    metrics = list(catalogue.datasets[dataset].metrics)
    profile = catalogue.profile
    name = f"reference_{dataset}"
    tables = catalogue.tables_of(dataset)
    kind = store_kind(store)
    scores = reference_scores(store, metrics)
    n_test = len(WindowDataset(store, "test"))
    offline = _offline_store(params, dataset)
    entries: dict[str, Any] = {}
    for ref, values in scores.items():
        tags = {"experiment": name, "dataset": dataset, "profile": profile, "seed": "none",
                "tables": ",".join(str(t) for t in tables), "kind": "reference", "reference": ref}
        run_params = {"reference": ref, "dataset": dataset, "data.store": str(store),
                      "data.windows_test": n_test, "metrics": metrics}
        with mlflow_runs.start_run(f"{name}/{ref}", profile=profile, tags=tags, params=run_params,
                                   offline_dir=offline) as run:
            mlflow_runs.log_metrics({k: v for k, v in values.items() if math.isfinite(v)})
            run_id = run.info.run_id
        entries[ref] = {"label": label(ref, kind), "run_id": run_id,
                        "metrics": {k: _finite(v) for k, v in values.items()}}
    record = {"experiment": name, "kind": "reference", "dataset": dataset, "profile": profile,
              "tables": tables, "seeds": [], "run_ids": [e["run_id"] for e in entries.values()],
              "windows_test": n_test, "references": entries}
    record_files.write_reference(Path(out_dir), record)
    return record


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


__all__ = ["REFERENCES", "LABELS", "store_kind", "default_references", "label", "reference_scores",
           "run_references"]
