"""params.yaml read and validated whole, every experiment under every profile, before any work
(a train, reference, params or report stage, and every command). The data stages validate only
their dataset's part (``pipeline.data.dataset_params``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config.params_file import ParamsFile, check_profile
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError
from pipeline.core.paths import check_name
from pipeline.core.schema import parse
from pipeline.core.yamlfile import read_yaml


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml and validate all of it, every experiment included, before any work."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found")
    params = read_yaml(path)
    validate_params(params, where=str(path))
    return params


def validate_params(params: dict[str, Any], where: str = "params.yaml") -> None:
    parse(ParamsFile, params, where, origin=lambda key: key)
    check_profile(params, params["profile"])
    for name in params["datasets"]:
        check_name(f"datasets.{name}", name)
    for name in params["experiments"]:
        # under every profile: a bad value the active profile happens to override is still refused
        for profile in params["profiles"]:
            resolve_run(params, name, profile)
