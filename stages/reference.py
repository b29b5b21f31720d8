"""DVC stage: score the reference forecasts (persistence, climatology; copy-last-frame for video)
of one dataset on its whole test split, log them to MLflow, write runs/reference_<ds>/result.json."""
import argparse
import json

from pipeline.core.errors import stage_errors

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("dataset")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

with stage_errors(f"reference {args.dataset}"):
    from pipeline.config.load import load_params
    from pipeline.core.paths import reference_dir, store_path
    from pipeline.training.reference_forecasts import run_references

    params = load_params(args.params)
    record = run_references(params, args.dataset, store_path(params, args.dataset), reference_dir(args.dataset))
print(json.dumps({r: e["metrics"] for r, e in record["references"].items()}, indent=2))
