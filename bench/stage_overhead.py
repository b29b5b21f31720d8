#!/usr/bin/env python
"""Where the seconds of one sample-profile train stage go, and what importing it costs.

Part 1: ``import torch`` and ``import pipeline.train`` (the training entry point) timed in fresh
interpreters, interleaved and repeated; their median ratio is the number the pipeline keeps
at or below 2.

Part 2: one experiment (default ``t2m_simvp_mae``: SimVP, one seed) trained as its DVC stage does, in a fresh
interpreter, logging to a throw-away MLflow store that already exists (as in a repro, where only
the first stage creates it; that creation is timed separately). Seconds are split into start-up
(interpreter + imports), data (opening the store, reading splits), training (optimiser steps),
evaluation (validation, test metrics, per-lead scores, cost, quantizer diagnostics) and logging
(MLflow calls, per-epoch and best checkpoints, forecast figure and arrays).

Needs the experiment's Zarr store (``dvc repro preprocess_t2m`` first). From the repository root:
``.venv/bin/python bench/stage_overhead.py [--experiment t2m_simvp_mae] [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT_SNIPPET.format(mod=module)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ child process
def child(experiment: str, params: str) -> None:
    t_start = time.perf_counter()
    from pipeline.config import load_params, resolve_run
    from pipeline.data.prepare import store_path
    import pipeline.train as train
    from pipeline import tracking
    from pipeline.data import windows

    t_imported = time.perf_counter()
    phases = {"data": 0.0, "training": 0.0, "evaluation": 0.0, "logging": 0.0}

    def timed(phase, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[phase] += time.perf_counter() - t
        return wrapper

    @contextlib.contextmanager
    def timed_run(*a, **k):
        t = time.perf_counter()
        cm = real_start_run(*a, **k)
        run = cm.__enter__()
        phases["logging"] += time.perf_counter() - t
        try:
            yield run
        finally:
            t = time.perf_counter()
            cm.__exit__(*sys.exc_info())
            phases["logging"] += time.perf_counter() - t

    real_start_run = tracking.start_run
    tracking.start_run = timed_run
    for name in ("log_metrics", "log_artifact"):
        setattr(tracking, name, timed("logging", getattr(tracking, name)))
    ds = windows.WindowDataset
    ds.__init__ = timed("data", ds.__init__)
    real_array, timed_array = ds._array, timed("data", ds._array)
    # only the first call of a split reads it (into memory); later ones belong to their phase
    ds._array = lambda self: timed_array(self) if self._frames is None else real_array(self)
    train._train_epoch = timed("training", train._train_epoch)
    for name in ("_eval_loss", "_evaluate", "_cost", "_diagnostics"):
        setattr(train, name, timed("evaluation", getattr(train, name)))
    for name in ("_save_svq_sample", "_log_mlflow_model_and_inputs"):
        setattr(train, name, timed("logging", getattr(train, name)))
    for name in ("write", "write_figure_data"):  # the run record under runs/<exp>/
        setattr(train.run_record, name, timed("logging", getattr(train.run_record, name)))
    train.torch.save = timed("logging", train.torch.save)
    for name in ("_lead_evaluation",):
        setattr(train, name, timed("evaluation", getattr(train, name)))
    train._log_lead_scores = timed("logging", train._log_lead_scores)
    train.checkpoint.Checkpoint.save = timed("logging", train.checkpoint.Checkpoint.save)  # per epoch
    import pipeline.plots as plots  # train imports it when drawing (its import time counts there)

    plots.forecast_figure = timed("logging", plots.forecast_figure)
    p = load_params(params)
    cfg = resolve_run(p, experiment)
    t_run = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        train.run_experiment(cfg, store_path(p, cfg.dataset), Path(out))
    total_run = time.perf_counter() - t_run
    print(json.dumps({"imports": t_imported - t_start, "setup": t_run - t_imported,
                      "run": total_run, "seeds": len(cfg.seeds), **phases}))


# ------------------------------------------------------------------------------ parent
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="t2m_simvp_mae")  # gSTA, one seed
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.child:
        child(args.experiment, args.params)
        return 0

    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from machine import print_header

    from pipeline.config import load_params, resolve_run
    from pipeline.data.prepare import store_path

    p = load_params(args.params)
    cfg = resolve_run(p, args.experiment)
    store = store_path(p, cfg.dataset)
    if not Path(store).exists():
        print(f"{store}: store missing; run `.venv/bin/dvc repro preprocess_{cfg.dataset}` first", file=sys.stderr)
        return 1
    print_header("Train stage overhead (sample profile)", torch.device("cpu"))
    print("note: the development machine is shared; other people's jobs run beside these timings.\n")

    torch_s, train_s = [], []
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        torch_s.append(import_seconds("torch"))
        train_s.append(import_seconds("pipeline.train"))
    mt, mp = statistics.median(torch_s), statistics.median(train_s)
    print(f"import torch           : median {mt:.2f} s  (runs: {', '.join(f'{v:.2f}' for v in torch_s)})")
    print(f"import pipeline.train  : median {mp:.2f} s  (runs: {', '.join(f'{v:.2f}' for v in train_s)})")
    print(f"import ratio           : {mp / mt:.2f} x import torch (target <= 2)\n")

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SVQ_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
                   SVQ_ARTIFACT_ROOT=Path(tmp, "artifacts").as_uri())
        setup = [sys.executable, "-c", "import time; t = time.perf_counter(); from pipeline import tracking; "
                 f"tracking.ensure_experiment(tracking.experiment_name({cfg.profile!r})); "
                 "print(time.perf_counter() - t)"]
        out = subprocess.run(setup, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        created = float(out.stdout.strip().splitlines()[-1])
        t = time.perf_counter()
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--experiment",
                              args.experiment, "--params", args.params], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        r = json.loads(out.stdout.strip().splitlines()[-1])
    startup = wall - r["run"] - r["setup"]
    known = r["data"] + r["training"] + r["evaluation"] + r["logging"]
    rows = [("start-up (interpreter + imports)", startup), ("config + store path", r["setup"]),
            ("data", r["data"]), ("training", r["training"]), ("evaluation", r["evaluation"]),
            ("logging", r["logging"]), ("other (in run, untimed)", r["run"] - known)]
    print(f"stage {args.experiment} ({r['seeds']} seed(s)), wall {wall:.2f} s, of which imports {r['imports']:.2f} s:")
    for name, v in rows:
        print(f"  {name:34s} {v:6.2f} s  {100 * v / wall:5.1f} %")
    print(f"MLflow store creation (first stage of a repro only): {created:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
