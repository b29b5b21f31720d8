#!/usr/bin/env python
"""What a train stage would save if it started from an already-warm interpreter.

After issue 8's cuts a sample-profile train stage spends ~4-5 CPU-s per process before and around
its training that no setting removes: the interpreter, ``import torch`` / MLflow / the pipeline,
``torch._dynamo`` (imported by the optimiser's first step), MLflow's store modules and matplotlib.
A long-lived parent that holds those imports and forks one child per stage would skip them. This
bench measures that saving before anyone builds it, side by side in one run:

* cold: ``python stages/train.py <exp>`` in a fresh interpreter, as DVC runs it;
* warm: the same script run by ``runpy`` in a child forked from a parent that imported those
  modules once (the parent does no computation, so the child's thread pools start fresh).

Both train and log the same run (same seed, same metrics) to a throw-away MLflow store. Run it from
a checkout whose stores exist (after ``make repro``); it rewrites ``runs/<exp>`` there, so use a
scratch clone: ``.venv/bin/python bench/warm_start.py --experiment t2m_svq_kaiming --repeats 3``.
"""
from __future__ import annotations

import argparse
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
WARM_IMPORTS = ("torch", "torch._dynamo", "mlflow", "mlflow.store.tracking.sqlalchemy_store",
                "matplotlib.pyplot", "pipeline.config", "pipeline.overrides", "pipeline.train",
                "pipeline.tracking", "pipeline.plots", "pipeline.mlflow_model", "pipeline.references")


def cold(experiment: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the stage script in a fresh interpreter."""
    t = time.perf_counter()
    before = os.times()
    subprocess.run([sys.executable, "stages/train.py", experiment], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = os.times()
    return time.perf_counter() - t, (after.children_user - before.children_user
                                     + after.children_system - before.children_system)


def warm(experiment: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the same script in a child forked from this warm process."""
    t = time.perf_counter()
    before = os.times()
    pid = os.fork()
    if pid == 0:  # the child: what a stage would run
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.argv = ["stages/train.py", experiment]
            runpy.run_path(str(ROOT / "stages" / "train.py"), run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    after = os.times()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"warm run of {experiment} failed: exit {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - t, (after.children_user - before.children_user
                                     + after.children_system - before.children_system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="t2m_svq_kaiming")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.chdir(ROOT)
    store = tempfile.mkdtemp(prefix="warm-start-mlflow-")
    os.environ["SVQ_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    cold(args.experiment)  # creates the throw-away store (once per repro in a real run)

    import importlib

    import torch

    from machine import print_header

    t = time.perf_counter()
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    warm_up = time.perf_counter() - t
    print_header("A train stage started cold vs forked from a warm interpreter", torch.device("cpu"))
    print(f"\nexperiment {args.experiment}, {args.repeats} repeat(s), cold and warm interleaved; "
          f"the warm parent's imports took {warm_up:.2f} s once")
    rows = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        rows["cold"].append(cold(args.experiment))
        rows["warm"].append(warm(args.experiment))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    for k, (w, c) in med.items():
        runs = ", ".join(f"{x:.2f}" for x, _ in rows[k])
        print(f"  {k:5s} stage: median {w:6.2f} s wall, {c:6.2f} CPU-s   (wall runs: {runs})")
    print(f"  warm/cold: {med['warm'][0] / med['cold'][0]:.2f}x wall, {med['warm'][1] / med['cold'][1]:.2f}x CPU; "
          f"saved per stage: {med['cold'][0] - med['warm'][0]:.2f} s wall, {med['cold'][1] - med['warm'][1]:.2f} CPU-s")


if __name__ == "__main__":
    main()
