"""DVC stage: train and evaluate one experiment of the catalogue, logging to MLflow.

Training happens in ``runs/.<exp>.tmp-resume`` with a checkpoint per epoch: rerunning a killed
stage resumes it; the finished run replaces ``runs/<exp>`` only once complete."""
import argparse
import sys
import time

from pipeline.core.errors import stage_errors

t_start = time.perf_counter()
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("experiment")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

with stage_errors("train"):
    from pipeline.training.summary_line import one_line_summary
    from pipeline.training.train_stage import run_train_stage

    summary = run_train_stage(args.params, args.experiment, __file__, sys.argv[1:])
if summary is not None:  # its numbers are in runs/<exp>/result.json and metrics.json
    print(one_line_summary(summary, time.perf_counter() - t_start))
