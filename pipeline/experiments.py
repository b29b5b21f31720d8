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

from pipeline.config import dataset_deps, load_params, run_deps_all_profiles
from pipeline.errors import stage_errors
from pipeline.paths import check_name, inside

HEADER = ("# Generated from params.yaml by `python -m pipeline.experiments` (make dvc.yaml).\n"
          "# Edit the experiment catalogue in params.yaml, not this file.\n")

DATA_CODE = ["pipeline/data/sources", "pipeline/data/download.py", "pipeline/data/prepared.py"]
TRAIN_CODE = ["pipeline/models", "pipeline/svq.py", "pipeline/train.py", "pipeline/metrics.py",
              "pipeline/cost.py", "pipeline/config.py", "pipeline/data/windows.py", "pipeline/data/noise.py",
              "pipeline/plots.py", "pipeline/lr_schedule.py"]
REFERENCE_CODE = ["pipeline/references.py", "pipeline/metrics.py", "pipeline/data/windows.py"]


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
            "cmd": command("python", "stages/download.py", ds),
            "deps": ["stages/download.py", *DATA_CODE],
            "params": deps,
            # persist: a re-run resumes/reuses downloads instead of deleting them first
            "outs": [{raw_dir(ds): {"persist": True, "cache": False}}],
        }
        stages[f"preprocess_{ds}"] = {
            "cmd": command("python", "stages/preprocess.py", ds),
            "deps": ["stages/preprocess.py", raw_dir(ds), *DATA_CODE, "pipeline/data/store.py"],
            "params": deps,
            # persist: the store is swapped in atomically; DVC must not delete it before the run
            "outs": [{store_path(ds): {"persist": True}}],
        }
    for ds in datasets_used(params):
        stages[f"reference_{ds}"] = {  # persistence / climatology: no training, seconds
            "cmd": command("python", "stages/reference.py", ds),
            "deps": ["stages/reference.py", store_path(ds), *REFERENCE_CODE],
            "params": ["profile", f"datasets.{ds}.metrics", "experiments"],
            "metrics": [{f"{reference_dir(ds)}/result.json": {"cache": False, "persist": True}}],
        }
    for name, exp in params["experiments"].items():
        rd = run_dir(name).as_posix()
        stages[f"train_{name}"] = {
            "cmd": command("python", "stages/train.py", name),
            "deps": ["stages/train.py", store_path(exp["dataset"]), *TRAIN_CODE],
            "params": run_deps_all_profiles(params, name),
            # persist: the stage swaps its outputs in when done, so a killed run keeps the old ones
            "outs": [{f"{rd}/artifacts": {"cache": False, "persist": True}}],
            "metrics": [{f"{rd}/result.json": {"cache": False, "persist": True}}],
            "plots": [{f"{rd}/history.csv": {"cache": False, "persist": True, "x": "epoch", "y": "val_loss"}}],
        }
    stages["report"] = {
        "cmd": "python stages/report.py",
        "deps": ["stages/report.py", "pipeline/report", "pipeline/plots.py",
                 *[f"{run_dir(n)}/result.json" for n in params["experiments"]],
                 *[f"{reference_dir(ds)}/result.json" for ds in datasets_used(params)]],
        "params": ["profile", "seeds", "report", "experiments"],
        "outs": [{"reports/tables": {"cache": False}}, {"reports/figures": {"cache": False}},
                 {"reports/README.md": {"cache": False}}],
        "metrics": [{"reports/metrics.json": {"cache": False}}],
    }
    return {"stages": stages}


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
