"""DVC stage: the paper's tables (CSV + markdown), figures and headline metrics from the committed
run records (runs/<exp>/result.json, history.csv, figures.npz); needs no MLflow store."""
import argparse
import logging

from pipeline.core.errors import stage_errors
from pipeline.core.paths import REPORT_METRICS, REPORT_README, RUNS

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--params", default="params.yaml")
ap.add_argument("--runs", default=str(RUNS), help="folder of runs/<experiment>/result.json")
ap.add_argument("--readme", default=str(REPORT_README))
ap.add_argument("--metrics", default=str(REPORT_METRICS))
args = ap.parse_args()

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
with stage_errors("report"):
    from pipeline.config.load import load_params
    from pipeline.report.build import build_report

    written = build_report(load_params(args.params), runs_dir=args.runs, readme=args.readme, metrics=args.metrics)
print(f"wrote {len(written['tables'])} tables, {len(written['figures'])} figures, {args.readme}, {args.metrics}")
