"""DVC stage: train and evaluate one experiment of the catalogue, logging to MLflow."""
import argparse
import json
import shutil
from pathlib import Path

from pipeline.config import load_params, resolve_run
from pipeline.data.prepare import store_path
from pipeline.experiments import run_dir
from pipeline.train import run_experiment

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("experiment")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

params = load_params(args.params)
cfg = resolve_run(params, args.experiment)
out = Path(run_dir(args.experiment))
artifacts = out / "artifacts"
tmp = out.with_name(f".{out.name}.tmp")
shutil.rmtree(tmp, ignore_errors=True)
try:  # train into a scratch folder: a failed run leaves no half-written outputs behind
    summary = run_experiment(cfg, store_path(params, cfg.dataset), tmp / "artifacts")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in ("result.json", "history.csv"):
        (tmp / "artifacts" / name).replace(out / name)
    (tmp / "artifacts").replace(artifacts)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(json.dumps(summary["metrics"], indent=2))
