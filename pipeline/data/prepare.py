"""The download and preprocess steps of one dataset, as the DVC stages run them (where raw files
and stores live: pipeline/core/paths.py)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.core import paths
from pipeline.core.errors import DataError
from pipeline.core.outputs import clean_stale, replace_dir, scratch
from pipeline.core.paths import store_path
from pipeline.data.dataset_params import data_source, dataset_settings
from pipeline.data.download import record_manifest
from pipeline.data.sources import get_source
from pipeline.data.store import write_store

SOURCES_DIR = Path(__file__).with_name("sources")


def raw_dir(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    """The raw folder the active profile's data source uses."""
    return paths.raw_dir(params, ds, data_source(params, ds), root)


def download(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    """Fetch the real files, or write the sample twin (regenerated only when its settings or the
    twin code change)."""
    section = dataset_settings(params, ds)
    source = get_source(section["source"])
    raw = raw_dir(params, ds, root)
    settings = dict(section["data"], name=ds)
    if data_source(params, ds) == "remote":
        raw.mkdir(parents=True, exist_ok=True)
        results = source.fetch(raw, settings)
        if results:  # provenance (url, size, sha256, time) that the store records
            record_manifest(results, raw / "manifest.json")
        return raw
    sample = dict(section.get("sample") or {})
    stamp = json.dumps({"data": settings, "sample": sample,
                        "code": twin_code_digest(section["source"])}, sort_keys=True)
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


def twin_code_digest(source: str, sources_dir: Path | None = None) -> str:
    """sha256 over the source package's files and the helpers all sources share (the modules
    directly in ``sources/``): a generator edit must regenerate the twin, not only a settings edit."""
    sources_dir = SOURCES_DIR if sources_dir is None else sources_dir
    files = sorted(p for p in (sources_dir / source).rglob("*.py")) + sorted(sources_dir.glob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(sources_dir).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def preprocess(params: dict[str, Any], ds: str, root: Path = Path(".")) -> Path:
    section = dataset_settings(params, ds)
    source = get_source(section["source"])
    raw = raw_dir(params, ds, root)
    out = store_path(params, ds, root)
    try:
        prepared = source.load(raw, dict(section["data"], name=ds))
        prepared.attrs.setdefault("dataset", ds)
        prepared.attrs.setdefault("source", data_source(params, ds))
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)  # scratch stores of a killed earlier run
        return write_store(prepared, out, scheduler=params["data"].get("dask_scheduler"))
    except (OSError, RuntimeError) as exc:
        # netCDF/HDF5 report a corrupt chunk as "NetCDF: HDF error", naming no file: find it
        bad = _first_unreadable(raw)
        if bad is None:
            raise
        raise DataError(f"{bad}: corrupt or unreadable ({type(exc).__name__}: {exc}); "
                        f"delete it and rerun the download stage") from exc


def _first_unreadable(raw: Path) -> Path | None:
    import xarray as xr

    for path in sorted(Path(raw).rglob("*.nc")):
        try:
            with xr.open_dataset(path, engine="netcdf4") as ds:
                ds.load()
        except Exception:  # noqa: BLE001 - any failure to read it whole is the answer
            return path
    return None
