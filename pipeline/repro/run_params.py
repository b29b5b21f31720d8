"""Run params: for every experiment, the params.yaml values its train stage reads, in one small
file, ``run_params/<experiment>.yaml``, the train stage's only params dependency.

DVC keeps the params a stage declares in dvc.lock, and it re-parses and rewrites the whole lock
(pure-Python round-trip YAML) after every stage it runs. The ~70 lines of params of each of the
~90 train stages were over half of the lock, and DVC's time per stage follows the lock's size
(``bench/dvc_overhead.py``). Instead one ``params`` stage tracks params.yaml whole and writes, per
experiment, the values of exactly the keys the train stage would have declared
(``train_keys``: every layer of every key it reads, shadowed ones too); each
train stage depends on its file. A file changes, and its stage re-runs, exactly when one of those
values changes: ``dvc exp run -S svq.codebook_size=6000`` still re-runs only the experiments that
take the default codebook size.

    python stages/params.py         # what the `params` stage runs: rewrite run_params/*.yaml
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.config.overrides import layer_keys
from pipeline.config.run_config import collapse, run_deps_all_profiles
from pipeline.core.dotted import MISSING, lookup
from pipeline.core.outputs import clean_stale, remove, replace_dir, scratch
from pipeline.core.paths import check_name, inside

FOLDER = Path("run_params")
HEADER = ("# Written by the `params` stage (pipeline/repro/run_params.py) from params.yaml: every value\n"
          "# train_{name} reads. Its DVC dependency: edit params.yaml, not this file.\n")


def path_of(name: str, folder: Path = FOLDER) -> Path:
    return inside(folder, f"{check_name('experiment', name)}.yaml")


def fold_keys(keys: set[str], params: dict[str, Any]) -> list[str]:
    """``keys`` sorted, every section of params.yaml all of whose keys are in ``keys`` given as the
    section: the same values tracked, with far fewer look-ups (DVC walks the whole of params.yaml
    once per declared key, for every stage it checks). The catalogue is never folded: an
    experiment's ``tables`` tag is no train dep."""
    out = set(keys)

    def leaves(node: Any, key: str) -> set[str]:
        if isinstance(node, dict) and node:
            return set().union(*(leaves(v, f"{key}.{k}") for k, v in node.items()))
        return {key}

    def visit(node: dict[str, Any], prefix: str) -> None:
        nonlocal out
        for k, v in node.items():
            key = prefix + k
            if not isinstance(v, dict) or not v or key == "experiments":
                continue
            below = leaves(v, key)
            if len(below) > 1 and all(any(b == o or b.startswith(o + ".") for o in out) for b in below):
                out = {o for o in out if not o.startswith(key + ".")} | {key}
            else:
                visit(v, key + ".")

    visit(params, "")
    return sorted(out)


def experiment_keys(params: dict[str, Any], name: str) -> list[str]:
    """``experiments.<name>`` as a train stage reads it: every key but ``tables`` (a tag)."""
    return [f"experiments.{name}.{k}" for k in sorted(params["experiments"][name]) if k != "tables"]


def train_keys(params: dict[str, Any], name: str, shadowed: dict[str, set[str]] | None = None) -> list[str]:
    """What ``train_<name>`` reads: every layer of every key, shadowed ones too (a change to any of
    them re-runs the stage, which then uses it or stops naming the winning key,
    pipeline/config/overrides.py); ``experiments.<name>`` but its tables tag; sections read whole folded.
    ``shadowed``: ``layer_keys(params)``, when the caller asks for every experiment."""
    shadowed = layer_keys(params) if shadowed is None else shadowed
    keys = set(run_deps_all_profiles(params, name)) | shadowed[name]
    if f"experiments.{name}" in keys:  # all of it but the tables tag
        keys = (keys - {f"experiments.{name}"}) | set(experiment_keys(params, name))
    return fold_keys(collapse(keys), params)


def values(params: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``key: value`` of every key present in params.yaml (a section: the whole section, as DVC
    records it); a key absent now and added later changes the file too."""
    found = {k: lookup(params, k) for k in keys}
    return {k: v for k, v in found.items() if v is not MISSING}


def render(params: dict[str, Any], name: str, shadowed: dict[str, set[str]] | None = None) -> str:
    body = yaml.safe_dump(values(params, train_keys(params, name, shadowed)), sort_keys=True, width=120)
    return HEADER.format(name=name) + body


def write_all(params: dict[str, Any], folder: Path = FOLDER) -> list[Path]:
    """Every experiment's file, swapped in as one folder (a catalogue that dropped an experiment
    drops its file; a killed stage leaves the previous folder). Returns the new files' paths."""
    folder = Path(folder)
    shadowed = layer_keys(params)
    clean_stale(folder)
    work = scratch(folder)
    work.mkdir(parents=True)
    try:
        for name in params["experiments"]:
            path_of(name, work).write_text(render(params, name, shadowed))
        replace_dir(work, folder)
    except BaseException:
        remove(work)
        raise
    return [path_of(name, folder) for name in params["experiments"]]
