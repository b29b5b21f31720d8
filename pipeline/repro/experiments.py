"""The experiment catalogue (params.yaml ``experiments``) expanded into DVC stages.

One download, one preprocess and one reference-forecast stage per dataset the catalogue uses,
one train stage per experiment, one report stage. Each stage depends on exactly the params.yaml keys it reads (resolved
by ``pipeline.config.run_config``), so ``dvc exp run -S svq.codebook_size=6000`` re-runs only the experiments
that take the default codebook size, and the report. An experiment's ``tables`` tag is the
report's business: editing it re-runs the report, not the training. A train stage's keys reach it
through its file ``run_params/<experiment>.yaml``, written by one ``params`` stage
(``pipeline.repro.run_params``): declared in dvc.yaml they made up half of dvc.lock, which DVC re-parses
and rewrites after every stage.

Code deps go through one ``code`` stage: it depends on the files of ``pipeline/`` that any stage
script imports, transitively, lazy and registry imports included (``pipeline.repro.imports``; a folder
whose every file is imported is listed as the folder), and writes one digest per stage kind
(``pipeline.repro.code_digest``); every other stage depends on its kind's digest, which keeps dvc.lock
small (DVC rewrites it after every stage).

    python -m pipeline.repro.experiments            # rewrite dvc.yaml from params.yaml
    python -m pipeline.repro.experiments --check    # exit 1 if dvc.yaml is stale
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.load import load_params
from pipeline.core import paths
from pipeline.core.errors import exit_status
from pipeline.core.outputs import write_or_check
from pipeline.data.dataset_params import dataset_deps, own_files
from pipeline.report.folders import report_dirs
from pipeline.repro import run_params
from pipeline.repro.code_digest import KINDS, digest_path, stage_files
from pipeline.repro.imports import PACKAGE, ImportGraph
from pipeline.repro.run_params import fold_keys
from pipeline.training.record_files import METRICS, RECORD_FILES

ROOT = paths.CHECKOUT

HEADER = ("# Generated from params.yaml by `python -m pipeline.repro.experiments` (make dvc.yaml).\n"
          "# Edit the experiment catalogue in params.yaml, not this file.\n")

# Figures of the report that `dvc plots show` renders (static images: the page needs no network)
PLOT_FILES = ["learning_curves.png", "noise.png", "codebook_size.png"]
SKIP = ("__pycache__", ".")  # never a dep: bytecode, editor and scratch files


def stage_cmd(script: str, *args: str) -> str:
    """A stage command run by the venv's interpreter (stages/python), arguments shell-quoted."""
    return command("sh", "stages/python", f"stages/{script}.py", *args)


def command(*args: str) -> str:
    """A stage command line; every argument quoted for the shell DVC runs it in."""
    return " ".join(shlex.quote(a) for a in args)


def code_deps(scripts: list[str], root: Path = ROOT, graph: ImportGraph | None = None) -> list[str]:
    """The stage scripts, the interpreter wrapper, and every file of the package the scripts may
    load (``pipeline.repro.imports``), a folder standing for all of its files when it holds no other."""
    graph = graph or ImportGraph(root)
    return fold_folders(set().union(*(stage_files(f"stages/{s}.py", root, graph) for s in scripts)), root)


def fold_folders(files: set[str], root: Path) -> list[str]:
    """``files`` sorted, every folder all of whose files are in ``files`` given as the folder."""
    out = set(files)
    folders = sorted({p for f in files for p in Path(f).parents if p.parts[:1] == (PACKAGE,)},
                     key=lambda p: (len(p.parts), p.as_posix()))
    for folder in folders:  # shallowest first: a folded folder takes its subfolders with it
        if folder.as_posix() not in out and _all_files(root, folder) <= files \
                and not any(Path(f) in folder.parents for f in out):
            out = {f for f in out if folder not in Path(f).parents} | {folder.as_posix()}
    return sorted(out)


def _all_files(root: Path, folder: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
            if p.is_file() and not any(part.startswith(SKIP) for part in p.relative_to(root).parts)}


def reference_keys(params: dict[str, Any], ds: str) -> list[str]:
    """``experiments.<name>.dataset`` and ``.tables`` of every experiment on ``ds``."""
    return [f"experiments.{name}.{k}" for name, e in params["experiments"].items() if e["dataset"] == ds
            for k in ("dataset", "tables") if k in e]


def datasets_used(params: dict[str, Any]) -> list[str]:
    return sorted({e["dataset"] for e in params["experiments"].values()})


def build_stages(params: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    code = {kind: [digest_path(kind).as_posix()] for kind in KINDS}
    stages: dict[str, Any] = {"code": {  # seconds: hashes ~100 small files
        "cmd": stage_cmd("code"),
        "deps": code_deps(["code", *KINDS], root),
        # cache: false, like the run records; persist: replaced atomically by the stage
        "outs": [{p: {"cache": False, "persist": True}} for p in sum(code.values(), [])],
    }, "params": {  # a second: the values each train stage reads, one file per experiment
        "cmd": stage_cmd("params"),
        "deps": code["params"],
        "params": [{"params.yaml": None}],  # the whole file: any edit may change a train stage's values
        # persist: the folder is swapped in whole by the stage
        "outs": [{run_params.FOLDER.as_posix(): {"cache": False, "persist": True}}],
    }}
    for ds in datasets_used(params):
        deps = dataset_deps(params, ds)
        raw = paths.raw_root(params, ds).as_posix()
        store = paths.store_path(params, ds).as_posix()
        stages[f"download_{ds}"] = {
            "cmd": stage_cmd("download", ds),
            "deps": code["download"],
            "params": fold_keys(set(deps), params),
            # persist: a re-run resumes/reuses downloads instead of deleting them first
            "outs": [{raw: {"persist": True, "cache": False}}],
        }
        stages[f"preprocess_{ds}"] = {
            "cmd": stage_cmd("preprocess", ds),
            # an own dataset's files too: editing one re-runs the store and what it feeds
            "deps": [raw, *own_files(params, ds), *code["preprocess"]],
            "params": fold_keys(set(deps), params),
            # persist: the store is swapped in atomically; DVC must not delete it before the run
            "outs": [{store: {"persist": True}}],
        }
    for ds in datasets_used(params):
        stages[f"reference_{ds}"] = {  # persistence / climatology: no training, seconds
            "cmd": stage_cmd("reference", ds),
            "deps": [paths.store_path(params, ds).as_posix(), *code["reference"]],
            # which experiments use the dataset, and their tables (MLflow tags): their keys, not the
            # whole catalogue (DVC would copy it into dvc.lock once per dataset); an experiment that
            # joins or leaves the dataset changes this list, which re-runs the stage too
            "params": ["profile", f"datasets.{ds}.metrics", *reference_keys(params, ds)],
            # a record in runs/ (no DVC metric); persist: replaced atomically by the stage
            "outs": [{f"{paths.reference_dir(ds).as_posix()}/result.json": {"cache": False, "persist": True}}],
        }
    for name, exp in params["experiments"].items():
        rd = paths.run_dir(name).as_posix()
        stages[f"train_{name}"] = {
            "cmd": stage_cmd("train", name),
            # its params: the values of train_keys, in its run_params file
            "deps": [paths.store_path(params, exp["dataset"]).as_posix(), *code["train"],
                     run_params.path_of(name).as_posix()],
            # the record (pipeline/training/record_files.py) is committed and is all the report reads;
            # its metrics.json is the stage's DVC metric (a single-stage experiment shows its numbers).
            # persist: the stage swaps its outputs in when done, so a killed run keeps the old ones
            "outs": [{f"{rd}/artifacts": {"cache": False, "persist": True}},
                     *({f"{rd}/{f}": {"cache": False, "persist": True}} for f in RECORD_FILES if f != METRICS)],
            "metrics": [{f"{rd}/{METRICS}": {"cache": False, "persist": True}}],
        }
    tables, figures = report_dirs(params, root)
    stages["report"] = {
        "cmd": stage_cmd("report"),
        # the runs folder as one dep (the records of every train stage are in it): one column in
        # `dvc exp show`, not three per experiment
        "deps": [paths.RUNS.as_posix(), *code["report"]],
        "params": ["profile", "seeds", "report", "experiments"],
        # persist: DVC must not delete the committed report before the stage has built its
        # replacement (build_report swaps files in only once all of them exist)
        "outs": [{tables.as_posix(): {"cache": False, "persist": True}},
                 {figures.as_posix(): {"cache": False, "persist": True}},
                 {paths.REPORT_README.as_posix(): {"cache": False, "persist": True}}],
        "metrics": [{paths.REPORT_METRICS.as_posix(): {"cache": False, "persist": True}}],
    }
    return {"stages": stages, "plots": plots(params, root)}


def plots(params: dict[str, Any], root: Path = ROOT) -> list[str]:
    return [(report_dirs(params, root)[1] / f).as_posix() for f in PLOT_FILES]


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):  # shared param lists are written out in full, for readers
        return True


def render(params: dict[str, Any]) -> str:
    return _dump(build_stages(params))


def _dump(pipeline: dict[str, Any]) -> str:
    return HEADER + yaml.dump(pipeline, Dumper=_NoAliases, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="dvc.yaml")
    ap.add_argument("--check", action="store_true", help="fail if the file differs from what params.yaml gives")
    args = ap.parse_args(argv)

    def run() -> int:
        pipeline = build_stages(load_params(args.params))
        return write_or_check(Path(args.out), _dump(pipeline), check=args.check,
                              command="python -m pipeline.repro.experiments", summary=f"{len(pipeline['stages'])} stages")

    return exit_status("experiments", run)


if __name__ == "__main__":
    raise SystemExit(main())
