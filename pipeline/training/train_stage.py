"""The train stage (``stages/train.py``) as a function, so that tests run what DVC runs.

Training happens in ``runs/.<exp>.tmp-resume`` with a checkpoint per epoch: rerunning a killed
stage resumes it; the finished run replaces ``runs/<exp>`` only once complete, and only with finite
test metrics, so a run gone to NaN fails and keeps the previous record. A second run of the same
experiment while one runs is refused (``runs/.<exp>.lock``).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pipeline.config.load import load_params
from pipeline.config.run_config import RunConfig, resolve_run
from pipeline.core import outputs
from pipeline.core.errors import DataError
from pipeline.core.paths import run_dir, store_path
from pipeline.training import distributed, job_slots, record_files
from pipeline.training.fit import run_experiment

_slot: job_slots.Slot | None = None  # SVQ_JOBS's slot, kept beyond the call: its lock is held until the process exits


def run_train_stage(params_path: str | Path, experiment: str, script: str, argv: list[str]) -> dict[str, Any] | None:
    """Train ``experiment`` into ``runs/<experiment>`` (relative to the working directory) and return its
    summary; None where this process has nothing to report: a rank other than 0, or a process that ran
    ``script argv`` again under torchrun for ``train.devices > 1``."""
    global _slot
    params = load_params(params_path)
    cfg = resolve_run(params, experiment)
    distributed.check_device(cfg.train.device, cfg.key_of("train.device"))  # before any work
    out = run_dir(experiment)
    # One run of an experiment at a time: two share runs/.<exp>.tmp-resume. Under torchrun the
    # launching process holds the lock for its ranks.
    lock = nullcontext() if distributed.under_launcher() else outputs.exclusive(out, f"experiment {experiment}")
    with lock:
        _slot = job_slots.claim_from_env(cfg.train.devices)  # SVQ_JOBS: a share of the machine
        if distributed.maybe_relaunch(cfg.train.devices, script, argv):
            return None  # torchrun's processes did the work
        return _train(params, cfg, experiment, out)


def _train(params: dict[str, Any], cfg: RunConfig, experiment: str, out: Path) -> dict[str, Any] | None:
    main = distributed.is_main_process()  # under torchrun every rank trains, rank 0 alone writes
    work = outputs.scratch(out, tag="resume")
    if main:
        outputs.clean_stale(out, keep=work)
    store = store_path(params, cfg.dataset)
    summary = run_experiment(cfg, store, work / "artifacts")
    if main:
        try:  # a seed finished before a kill is not tested again: its metrics are checked here too
            record_files.require_finite(experiment, summary["metrics"])
        except DataError:
            outputs.remove(work)  # nothing in it to resume: run_experiment cleared its checkpoints
            raise
        summary["stage_metrics"] = record_files.stage_metrics(summary)
        record_files.write_json(work / "artifacts" / record_files.METRICS, summary["stage_metrics"])
        outputs.replace_run_outputs(work, out, record_files.RECORD_FILES)
    return summary if main else None
