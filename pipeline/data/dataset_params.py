"""The part of params.yaml a dataset's download and preprocess stages read, validated alone: the
``data`` section, ``datasets.<ds>`` and the active profile's word on it. A data stage so reads no
model, training or quantizer settings, and editing those never re-runs it (its code digest holds
only ``pipeline/core`` and ``pipeline/data``). The train stages validate the whole file
(``pipeline.config.params_file``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict

from pipeline.core.dotted import has_key
from pipeline.core.errors import ConfigError
from pipeline.core.layers import dataset_layers, merged
from pipeline.core.paths import check_name
from pipeline.core.schema import Settings, parse
from pipeline.core.yamlfile import read_yaml
from pipeline.data.sources import get_source
from pipeline.data.sources.base import data_settings, sample_settings

Section = dict[str, Any]


class DataSection(Settings):
    """``data``: where raw files come from and where the stores live."""

    source: Literal["sample", "remote"]
    root: str
    dask_scheduler: str | None = None


class DatasetFiles(Settings):
    """What the data stages read of ``datasets.<ds>`` (the rest is the runs', checked there)."""

    model_config = ConfigDict(**{**Settings.model_config, "extra": "ignore"})
    source: str
    raw: Literal["sample", "remote"] | None = None
    data: Section
    sample: Section | None = None


def load_dataset_params(path: str | Path, ds: str) -> dict[str, Any]:
    """params.yaml with dataset ``ds``'s part validated (see the module's doc), before any work."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found")
    params = read_yaml(path)
    check_dataset_params(params, ds)
    return params


def check_dataset_params(params: Any, ds: str) -> None:
    if not isinstance(params, dict):
        raise ConfigError(f"params.yaml: expected a mapping, got {type(params).__name__}")
    for key in ("profile", "profiles", "data", "datasets"):
        if key not in params:
            raise ConfigError(f"{key}: missing from params.yaml")
    profiles = params["profiles"]
    if not isinstance(profiles, dict) or params["profile"] not in profiles:
        raise ConfigError(f"profile: {params['profile']!r} is not defined under profiles")
    parse(DataSection, params["data"], "data")
    check_name(f"datasets.{ds}", ds)
    if not isinstance(params["datasets"], dict) or ds not in params["datasets"]:
        raise ConfigError(f"datasets.{ds}: no such dataset; known: {sorted(params['datasets'] or {})}")
    entry = parse(DatasetFiles, params["datasets"][ds], f"datasets.{ds}")
    section = dataset_settings(params, ds)
    source = get_source(entry.source)
    data_settings(source.settings, dict(section["data"], name=ds))
    sample_settings(source.sample, section.get("sample"), ds)


def dataset_settings(params: dict[str, Any], ds: str) -> dict[str, Any]:
    """``datasets.<ds>`` with its ``data`` and ``sample`` blocks layered (``pipeline.core.layers``:
    the active profile may shrink a dataset, e.g. fewer years). The profile's ``model`` and
    ``train`` blocks for the dataset are its runs' (``pipeline.config.run_config``)."""
    if ds not in params["datasets"]:
        raise ConfigError(f"datasets.{ds}: no such dataset; known: {sorted(params['datasets'])}")
    out = dict(params["datasets"][ds])
    for block in ("data", "sample"):
        layers = dataset_layers(params, block, dataset=ds, profile=params["profile"])
        if layers:
            out[block] = merged(layers)
    return out


def data_source(params: dict[str, Any], ds: str | None = None) -> str:
    """Where raw files come from: ``datasets.<ds>.raw`` when set (own data: always your files),
    else ``data.source`` after the active profile's ``profiles.<p>.data.source``."""
    if ds is not None and params["datasets"][ds].get("raw"):
        return params["datasets"][ds]["raw"]
    prof = params["profiles"][params["profile"]] or {}
    return (prof.get("data") or {}).get("source", params["data"]["source"])


def dataset_deps(params: dict[str, Any], ds: str) -> list[str]:
    """Keys the download/preprocess stages of a dataset read (under any profile)."""
    deps = {"profile", "data.source", "data.root", f"datasets.{ds}.source", f"datasets.{ds}.raw",
            f"datasets.{ds}.data", f"datasets.{ds}.sample"}
    for profile, prof in params["profiles"].items():
        if "source" in ((prof or {}).get("data") or {}):
            deps.add(f"profiles.{profile}.data.source")
        deps.add(f"profiles.{profile}.datasets.{ds}")
    return sorted(k for k in deps if has_key(params, k))


def own_files(params: dict[str, Any], ds: str) -> list[str]:
    """The user's files a custom dataset reads (``datasets.<ds>.data.path``: a file, a glob's
    matches now, or a Zarr store), as the preprocess stage's DVC dependencies: an edited file
    re-runs its store, references and trainings. [] for other sources, for a custom dataset on
    its generated twin, and for a path that matches nothing yet (the stage then says so)."""
    settings = dataset_settings(params, ds)
    path = (settings.get("data") or {}).get("path")
    if settings.get("source") != "custom" or not path or data_source(params, ds) != "remote":
        return []
    from pipeline.core.errors import DataError
    from pipeline.data.sources.custom.files import files

    try:
        return files(str(path), f"datasets.{ds}.data.path")
    except DataError:
        return []
