"""Run params: for every experiment, the values its train stage runs with, resolved under the
active profile, in one small file, ``run_params/<experiment>.yaml``, the train stage's only params
dependency.

DVC keeps the params a stage declares in dvc.lock, and it re-parses and rewrites the whole lock
(pure-Python round-trip YAML) after every stage it runs; declared per train stage, the keys were
over half of the lock, and DVC's time per stage follows the lock's size (``bench/dvc_overhead.py``).
Instead one ``params`` stage tracks params.yaml whole and writes, per experiment, the run's
resolved configuration (``RunConfig.to_dict`` but the report's ``tables`` tag). A file changes,
and its stage re-runs, exactly when a value the run takes changes: ``dvc exp run -S
svq.codebook_size=6000`` re-runs the experiments that take the default codebook size and leaves
those whose profile or own settings pin another one, which the stage lists
(``pipeline.config.overrides.plan``); a change no run takes, or one a train stage named on the
command line would not take, stops the stage before any training.

    python stages/params.py         # what the `params` stage runs: rewrite run_params/*.yaml
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.overrides import layer_keys, plan, refusal
from pipeline.config.run_config import collapse, resolve_run, run_deps_all_profiles
from pipeline.core.errors import ConfigError
from pipeline.core.outputs import clean_stale, remove, replace_dir, scratch
from pipeline.core.paths import check_name, inside

FOLDER = Path("run_params")
HEADER = ("# Written by the `params` stage (pipeline/repro/run_params.py) from params.yaml: the values\n"
          "# train_{name} runs with. Its DVC dependency: edit params.yaml, not this file.\n")


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
    """The params.yaml keys behind ``train_<name>``'s values, as its stage declared them before
    run_params (``bench/dvc_overhead.py`` measures that layout): every layer of every key, shadowed ones too (a change to any of
    them re-runs the stage, which then uses it or stops naming the winning key,
    pipeline/config/overrides.py); ``experiments.<name>`` but its tables tag; sections read whole folded.
    ``shadowed``: ``layer_keys(params)``, when the caller asks for every experiment."""
    shadowed = layer_keys(params) if shadowed is None else shadowed
    keys = set(run_deps_all_profiles(params, name)) | shadowed[name]
    if f"experiments.{name}" in keys:  # all of it but the tables tag
        keys = (keys - {f"experiments.{name}"}) | set(experiment_keys(params, name))
    return fold_keys(collapse(keys), params)


def resolved(params: dict[str, Any], name: str) -> dict[str, Any]:
    """What ``train_<name>`` runs with under the active profile, as plain YAML values; the
    ``tables`` tag is the report's (re-tagging re-runs no training)."""
    out = resolve_run(params, name).to_dict()
    out.pop("tables")
    return json.loads(json.dumps(out))  # tuples as lists: plain YAML


def render(params: dict[str, Any], name: str) -> str:
    body = yaml.safe_dump(resolved(params, name), sort_keys=True, width=120)
    return HEADER.format(name=name) + body


def write_all(params: dict[str, Any], folder: Path = FOLDER) -> list[Path]:
    """Every experiment's file, swapped in as one folder (a catalogue that dropped an experiment
    drops its file; a killed stage leaves the previous folder). Returns the new files' paths."""
    folder = Path(folder)
    clean_stale(folder)
    work = scratch(folder)
    work.mkdir(parents=True)
    try:
        for name in params["experiments"]:
            path_of(name, work).write_text(render(params, name))
        replace_dir(work, folder)
    except BaseException:
        remove(work)
        raise
    return [path_of(name, folder) for name in params["experiments"]]


def plan_and_write(params: dict[str, Any], baseline: dict[str, Any] | None, named: set[str] | None,
                   folder: Path = FOLDER) -> tuple[list[str], list[Path]]:
    """The ``params`` stage: what each change to params.yaml since ``baseline`` reaches (lines to
    print), then every experiment's file. A change no run takes, or one that a train stage the
    command named would not take, raises ConfigError before anything is written."""
    changes = plan(params, baseline)
    why = refusal(changes, named)
    if why:
        raise ConfigError(why)
    lines = [line for change in changes for line in change.describe()]
    return lines, write_all(params, folder)
