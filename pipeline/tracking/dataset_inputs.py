"""The Zarr store a run trained on, logged as the MLflow run's dataset inputs (one per split)."""
from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

from pipeline.data.store import read_meta

CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def store_digest(store: str | Path) -> str:
    """A digest of the store's metadata (shapes, dtypes, scaling, provenance of the raw files):
    changes whenever the preprocess stage writes a different store; reads no frames."""
    store = Path(store)
    h = hashlib.sha256()
    for meta in sorted(p for p in store.rglob("*") if p.name in ("zarr.json", ".zarray", ".zattrs", ".zgroup")):
        h.update(meta.relative_to(store).as_posix().encode())
        h.update(meta.read_bytes())
    return h.hexdigest()[:16]


def log_store_inputs(store: str | Path, dataset: str, windows: dict[str, int]) -> None:
    """One dataset input per split: source = the store's URI, digest, context = the split."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    store = Path(store).resolve()
    meta = read_meta(store)
    digest = store_digest(store)
    with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are the local source
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(store.as_uri())
    splits = list(windows)
    for attempt in range(1, INPUT_ATTEMPTS + 1):
        try:
            mlflow.log_inputs(  # one call: one store transaction
                datasets=[MetaDataset(source=source, name=f"{dataset}-{split}", digest=digest) for split in splits],
                contexts=[CONTEXTS.get(split, split) for split in splits],
                tags_list=[{"split": split, "windows": str(windows[split]), "T_in": str(meta["T_in"]),
                            "T_out": str(meta["T_out"]), "channels": ",".join(meta["channels"])} for split in splits])
            return
        except mlflow.exceptions.MlflowException as exc:
            # Trainings finishing together on one tracking server race to create the same dataset
            # row (MLflow checks, then inserts): the loser's transaction is rolled back whole, and
            # a retry finds the row and links it.
            if attempt == INPUT_ATTEMPTS or not _lost_insert_race(exc):
                raise
            time.sleep(0.2 * attempt)


INPUT_ATTEMPTS = 3


def _lost_insert_race(exc: Exception) -> bool:
    """A unique-key violation, as PostgreSQL or SQLite word it through MLflow."""
    text = str(exc).lower()
    return "unique constraint" in text or "uniqueviolation" in text
