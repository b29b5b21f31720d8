"""The experiment catalogue (params.yaml ``experiments``) expanded into DVC stages.

One download, one preprocess and one reference-forecast stage per dataset the catalogue uses,
one train stage per experiment, one report stage. Each stage declares exactly the params.yaml keys it reads (resolved
by ``pipeline.config``), so ``dvc exp run -S svq.codebook_size=6000`` re-runs only the experiments
that take the default codebook size, and the report.

    python -m pipeline.experiments            # rewrite dvc.yaml from params.yaml
    python -m pipeline.experiments --check    # exit 1 if dvc.yaml is stale
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import _collapse, dataset_deps, load_params, run_deps_all_profiles
from pipeline.errors import stage_errors
from pipeline.overrides import layer_keys
from pipeline.paths import check_name, inside
from pipeline.run_record import FIGURE_DATA, HISTORY, RESULT

RECORD_FILES = (RESULT, HISTORY, FIGURE_DATA)

HEADER = ("# Generated from params.yaml by `python -m pipeline.experiments` (make dvc.yaml).\n"
          "# Edit the experiment catalogue in params.yaml, not this file.\n")

DATA_CODE = ["pipeline/data/sources", "pipeline/data/download.py", "pipeline/data/prepared.py"]
TRAIN_CODE = ["pipeline/models", "pipeline/svq.py", "pipeline/train.py", "pipeline/run_record.py", "pipeline/metrics.py",
              "pipeline/cost.py", "pipeline/config.py", "pipeline/overrides.py", "pipeline/data/windows.py",
              "pipeline/data/noise.py", "pipeline/plots.py", "pipeline/lr_schedule.py", "pipeline/mlflow_model.py",
              "pipeline/mlflow_dataset.py"]
REFERENCE_CODE = ["pipeline/references.py", "pipeline/metrics.py", "pipeline/data/windows.py"]


# Figures of the report that `dvc plots show` renders (static images: the page needs no network)
PLOTS = ["reports/figures/learning_curves.png", "reports/figures/noise.png", "reports/figures/codebook_size.png"]


def stage_cmd(script: str, *args: str) -> str:
    """A stage command run by the venv's interpreter (stages/python), arguments shell-quoted."""
    return command("sh", "stages/python", f"stages/{script}.py", *args)


def raw_dir(ds: str) -> str:
    return inside("data/raw", check_name("dataset", ds)).as_posix()


def store_path(ds: str) -> str:
    return inside("data/processed", f"{check_name('dataset', ds)}.zarr").as_posix()


def run_dir(exp: str) -> Path:
    return inside("runs", check_name("experiment", exp))


def command(*args: str) -> str:
    """A stage command line; every argument quoted for the shell DVC runs it in."""
    return " ".join(shlex.quote(a) for a in args)


def reference_dir(ds: str) -> str:
    return inside("runs", f"reference_{check_name('dataset', ds)}").as_posix()


def datasets_used(params: dict[str, Any]) -> list[str]:
    return sorted({e["dataset"] for e in params["experiments"].values()})


def build_stages(params: dict[str, Any]) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for ds in datasets_used(params):
        deps = dataset_deps(params, ds)
        stages[f"download_{ds}"] = {
            "cmd": stage_cmd("download", ds),
            "deps": ["stages/download.py", *DATA_CODE],
            "params": deps,
            # persist: a re-run resumes/reuses downloads instead of deleting them first
            "outs": [{raw_dir(ds): {"persist": True, "cache": False}}],
        }
        stages[f"preprocess_{ds}"] = {
            "cmd": stage_cmd("preprocess", ds),
            "deps": ["stages/preprocess.py", raw_dir(ds), *DATA_CODE, "pipeline/data/store.py"],
            "params": deps,
            # persist: the store is swapped in atomically; DVC must not delete it before the run
            "outs": [{store_path(ds): {"persist": True}}],
        }
    for ds in datasets_used(params):
        stages[f"reference_{ds}"] = {  # persistence / climatology: no training, seconds
            "cmd": stage_cmd("reference", ds),
            "deps": ["stages/reference.py", "stages/python", store_path(ds), *REFERENCE_CODE],
            "params": ["profile", f"datasets.{ds}.metrics", "experiments"],
            # a record in runs/ (no DVC metric); persist: replaced atomically by the stage
            "outs": [{f"{reference_dir(ds)}/result.json": {"cache": False, "persist": True}}],
        }
    shadowed = layer_keys(params)
    for name, exp in params["experiments"].items():
        rd = run_dir(name).as_posix()
        stages[f"train_{name}"] = {
            "cmd": stage_cmd("train", name),
            "deps": ["stages/train.py", "stages/python", store_path(exp["dataset"]), *TRAIN_CODE],
            # every layer of every key, shadowed ones too: a change to any of them re-runs the stage,
            # which then uses it or stops naming the winning key (pipeline/overrides.py)
            "params": sorted(_collapse(set(run_deps_all_profiles(params, name)) | shadowed[name])),
            # the record (pipeline/run_record.py) is committed and is all the report reads; it is
            # no DVC metric: reports/metrics.json holds the headline cells. persist: the stage swaps
            # its outputs in when done, so a killed run keeps the old ones
            "outs": [{f"{rd}/artifacts": {"cache": False, "persist": True}},
                     *({f"{rd}/{f}": {"cache": False, "persist": True}} for f in RECORD_FILES)],
        }
    stages["report"] = {
        "cmd": stage_cmd("report"),
        # the runs folder as one dep (the records of every train stage are in it): one column in
        # `dvc exp show`, not three per experiment
        "deps": ["stages/report.py", "stages/python", "pipeline/report", "pipeline/plots.py",
                 "pipeline/run_record.py", "runs"],
        "params": ["profile", "seeds", "report", "experiments"],
        # persist: DVC must not delete the committed report before the stage has built its
        # replacement (build_report swaps files in only once all of them exist)
        "outs": [{"reports/tables": {"cache": False, "persist": True}},
                 {"reports/figures": {"cache": False, "persist": True}},
                 {"reports/README.md": {"cache": False, "persist": True}}],
        "metrics": [{"reports/metrics.json": {"cache": False, "persist": True}}],
    }
    return {"stages": stages, "plots": list(PLOTS)}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):  # shared param lists are written out in full, for readers
        return True


def render(params: dict[str, Any]) -> str:
    return HEADER + yaml.dump(build_stages(params), Dumper=_NoAliases, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="dvc.yaml")
    ap.add_argument("--check", action="store_true", help="fail if the file differs from what params.yaml gives")
    args = ap.parse_args(argv)
    with stage_errors("experiments"):
        text = render(load_params(args.params))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is stale: run `python -m pipeline.experiments`", file=sys.stderr)
            return 1
        return 0
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(f"wrote {out}: {len(build_stages(load_params(args.params))['stages'])} stages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
