"""The download and preprocess steps of one dataset, as the DVC stages run them.

Raw files live under ``data/raw/<dataset>/<source>/`` (``sample`` twins or ``remote`` downloads
side by side, so switching profile never deletes downloaded data); the store is
``data/processed/<dataset>.zarr``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.config import data_source, dataset_settings
from pipeline.data.sources import get_source
from pipeline.data.store import write_store
from pipeline.outputs import clean_stale, replace_dir, scratch
from pipeline.paths import check_name, inside


def raw_dir(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    return inside(root / params["data"]["root"] / "raw", check_name("dataset", ds), data_source(params, ds))


def store_path(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    return inside(root / params["data"]["root"] / "processed", f"{check_name('dataset', ds)}.zarr")


def download(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    """Fetch the real files, or write the sample twin (regenerated only when its settings change)."""
    section = dataset_settings(params, ds)
    source = get_source(section["source"])
    raw = raw_dir(params, ds, root)
    settings = dict(section["data"], name=ds)
    if data_source(params, ds) == "remote":
        raw.mkdir(parents=True, exist_ok=True)
        source.fetch(raw, settings)
        return raw
    sample = dict(section.get("sample") or {})
    stamp = json.dumps({"data": settings, "sample": sample}, sort_keys=True)
    marker = raw / ".sample-settings.json"
    if marker.exists() and marker.read_text() == stamp:
        return raw
    clean_stale(raw)
    tmp = scratch(raw)
    try:
        tmp.mkdir(parents=True)
        source.make_sample(tmp, settings, sample, 0)
        (tmp / marker.name).write_text(stamp)
        replace_dir(tmp, raw)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return raw


def preprocess(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    section = dataset_settings(params, ds)
    source = get_source(section["source"])
    prepared = source.load(raw_dir(params, ds, root), dict(section["data"], name=ds))
    prepared.attrs.setdefault("dataset", ds)
    prepared.attrs.setdefault("source", data_source(params, ds))
    out = store_path(params, ds, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)  # scratch stores of a killed earlier run
    return write_store(prepared, out, scheduler=params["data"].get("dask_scheduler"))
