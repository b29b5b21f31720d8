"""Overrides win or fail loudly.

A run's value of a key comes from the last layer that sets it (the order: ``pipeline.core.layers``).
Datasets and experiments specialise a default on purpose (``-S svq.codebook_size=6000`` leaves
``t2m_svq_n10`` at its own 10). The profile is different: it rewrites keys behind the user's back, so a change that
the active profile shadows (``dvc exp run -S train.epochs=3`` under the sample profile, whose
``train.epochs`` wins) would be silently ignored. So, for every key a profile sets:

* the train stage declares its other layers too (``layer_keys``): DVC re-runs it when they change;
* before any work the stage compares params.yaml with the committed one (``git show HEAD:params.yaml``)
  and stops, naming the profile's key, when a changed value is shadowed by it (``check``).

    python -m pipeline.config.overrides t2m_svq     # which layer gives each key of an experiment
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.load import load_params
from pipeline.config.run_config import resolve_run
from pipeline.core.dotted import MISSING, lookup
from pipeline.core.errors import ConfigError, exit_status
from pipeline.core.layers import run_layers
from pipeline.models.quantizers import settings_key


def layers(params: dict[str, Any], name: str, profile: str | None = None) -> dict[str, list[tuple[str, Any]]]:
    """Resolved key -> ``[(params.yaml key, value), ...]`` of every layer that sets it, in
    resolution order (the last one wins; the order: ``pipeline.core.layers``)."""
    cfg = resolve_run(params, name, profile)  # validates, and says which quantizer block applies
    sections = ["model", "train"] + ([settings_key(cfg.model.quantizer)] if cfg.model.quantizer != "none" else [])
    out: dict[str, list[tuple[str, Any]]] = {}
    for section in sections:
        found: dict[str, list[tuple[str, Any]]] = {}
        for layer in run_layers(params, section, dataset=cfg.dataset, profile=cfg.profile, experiment=name):
            for key, value in layer.values.items():
                found.setdefault(f"{section}.{key}", []).append((layer.origin(key), value))
        out |= dict(sorted(found.items()))
    return out


def layer_keys(params: dict[str, Any]) -> dict[str, set[str]]:
    """Per experiment, the params.yaml keys of every layer it reads under any profile (for dvc.yaml)."""
    out: dict[str, set[str]] = {}
    for name in params["experiments"]:
        keys: set[str] = set()
        for profile in params["profiles"]:
            for found in layers(params, name, profile).values():
                if not found[-1][0].startswith("profiles."):
                    continue  # no profile in the way: config's own deps (the winners) suffice
                keys |= {_param_key(origin, name, profile) for origin, _ in found}
        out[name] = keys
    return out


def _param_key(origin: str, name: str, profile: str) -> str:
    """The params.yaml key DVC can track for a layer: a ``set`` block's dotted keys are not paths."""
    for block in (f"experiments.{name}", f"profiles.{profile}.experiments.{name}"):
        if origin.startswith(block + ".set."):
            return block
    return origin


def check(params: dict[str, Any], baseline: dict[str, Any] | None, name: str) -> None:
    """Raise ConfigError naming the profile's key when a value changed since ``baseline`` (the
    committed params.yaml) is shadowed by the active profile for experiment ``name``."""
    if baseline is None:
        return
    base_sets = ((baseline.get("experiments") or {}).get(name) or {}).get("set") or {}
    for key, found in layers(params, name).items():
        win_origin, win_value = found[-1]
        if not win_origin.startswith("profiles."):
            continue
        for origin, value in found[:-1]:
            if origin.startswith(f"experiments.{name}.set."):
                before = base_sets.get(key, MISSING)
            else:
                before = lookup(baseline, origin)
            if before == value or value == win_value:  # unchanged, or harmless
                continue
            raise ConfigError(
                f"{origin}: changed to {value!r}, but {win_origin}={win_value!r} wins for experiment "
                f"{name!r} (profile {params['profile']!r}), so the change would be ignored; change "
                f"{win_origin} instead (e.g. dvc exp run -S '{win_origin}={value}')")


def committed_params(path: str | Path = "params.yaml") -> dict[str, Any] | None:
    """params.yaml as of git HEAD; None outside a git checkout or when it is not committed."""
    path = Path(path).resolve()
    try:
        out = subprocess.run(["git", "show", f"HEAD:./{path.name}"], cwd=path.parent, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        data = yaml.safe_load(out.stdout)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)

    def run() -> int:
        params = load_params(args.params)
        for key, found in layers(params, args.experiment).items():
            shadowed = "".join(f"  (over {o}={v!r})" for o, v in found[:-1])
            print(f"{key} = {found[-1][1]!r}  from {found[-1][0]}{shadowed}")
        check(params, committed_params(args.params), args.experiment)
        return 0

    return exit_status("overrides", run)


if __name__ == "__main__":
    raise SystemExit(main())
