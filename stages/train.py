"""DVC stage: train and evaluate one experiment of the catalogue, logging to MLflow.

Training happens in ``runs/.<exp>.tmp-resume`` with a checkpoint per epoch: rerunning a killed
stage resumes it; the finished run replaces ``runs/<exp>`` only once complete."""
import argparse
import json
import sys
import time

from pipeline.errors import stage_errors

t_start = time.perf_counter()
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("experiment")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

with stage_errors("train"):
    from pipeline import distributed, job_slots, outputs
    from pipeline.config import load_params, resolve_run
    from pipeline.overrides import check, committed_params
    from pipeline.paths import run_dir, store_path
    from pipeline.run_record import RECORD_FILES
    from pipeline.run_summary import one_line_summary
    from pipeline.train import run_experiment

    params = load_params(args.params)
    cfg = resolve_run(params, args.experiment)
    check(params, committed_params(args.params), args.experiment)  # a shadowed -S stops here
    slot = job_slots.claim_from_env(cfg.train.devices)  # SVQ_JOBS: a share of the machine, held till exit
    if distributed.maybe_relaunch(cfg.train.devices, __file__, sys.argv[1:]):
        sys.exit(0)  # torchrun's processes did the work
    main = distributed.is_main_process()  # under torchrun every rank trains, rank 0 alone writes
    out = run_dir(args.experiment)
    work = outputs.scratch(out, tag="resume")
    if main:
        outputs.clean_stale(out, keep=work)
    summary = run_experiment(cfg, store_path(params, cfg.dataset), work / "artifacts")
    if main:
        outputs.replace_run_outputs(work, out, RECORD_FILES)
if main:
    print(json.dumps(summary["metrics"], indent=2))
    print(one_line_summary(summary, time.perf_counter() - t_start))
