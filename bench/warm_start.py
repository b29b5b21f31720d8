#!/usr/bin/env python
"""A train stage started cold against the same stage run by the warm stage server
(``pipeline/repro/stage_server.py``), side by side in one run, as DVC runs it under ``make repro``:

* cold: ``sh stages/python stages/train.py <exp>``: a fresh interpreter imports torch, MLflow, the
  pipeline, ``torch._dynamo`` (the optimiser's first step) and matplotlib, then trains;
* warm: the same command with ``SVQ_STAGE_SERVER`` set: ``stages/python`` hands it to a running
  server, which forks a child that already holds those imports.

Both train and log the same run (same seed) to a throw-away MLflow store; the bench checks that
their test metrics are identical. CPU seconds: the cold command's process tree; for the warm one
the server's reaped child (its stage) plus the client. Run it from a checkout whose stores exist
(after ``make repro``); it rewrites ``runs/<exp>`` there, so use a scratch clone:
``.venv/bin/python bench/warm_start.py --experiment t2m_svq_kaiming --repeats 3``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
TICK = os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """CPU seconds of the reaped children of ``pid`` (/proc: cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICK


def run_stage(experiment: str, env: dict[str, str], server: int | None) -> tuple[float, float, dict]:
    """(wall, CPU) seconds of the stage command and its test metrics."""
    t = time.perf_counter()
    before = os.times()
    served_before = children_cpu(server) if server else 0.0
    subprocess.run(["sh", "stages/python", "stages/train.py", experiment], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = os.times()
    cpu = after.children_user - before.children_user + after.children_system - before.children_system
    if server:
        cpu += children_cpu(server) - served_before
    metrics = json.loads((ROOT / "runs" / experiment / "result.json").read_text())["metrics"]
    return wall, cpu, {k: v for k, v in metrics.items() if k.startswith("test_")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="t2m_svq_kaiming")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.chdir(ROOT)
    import torch
    from machine import print_header

    work = Path(tempfile.mkdtemp(prefix="warm-start-"))
    env = dict(os.environ, SVQ_TRACKING_URI=f"sqlite:///{work}/mlflow.db")
    env.pop("SVQ_STAGE_SERVER", None)
    run_stage(args.experiment, env, None)  # creates the throw-away store (once per repro in a real run)
    sock = work / "socket"
    t = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "pipeline.repro.stage_server", "--socket", str(sock)], cwd=ROOT,
                              env=env, stderr=subprocess.DEVNULL)
    while not sock.exists():
        if server.poll() is not None:
            raise SystemExit("the stage server exited before it was ready")
        time.sleep(0.05)
    ready = time.perf_counter() - t
    try:
        print_header("A train stage started cold vs run by the warm stage server", torch.device("cpu"))
        print(f"\nexperiment {args.experiment}, {args.repeats} repeat(s), cold and warm interleaved; "
              f"the server was ready after {ready:.2f} s (its imports, once per make repro)")
        rows: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        metrics: dict[str, dict] = {}
        for _ in range(args.repeats):
            for kind, extra, pid in (("cold", {}, None), ("warm", {"SVQ_STAGE_SERVER": str(sock)}, server.pid)):
                wall, cpu, metrics[kind] = run_stage(args.experiment, dict(env, **extra), pid)
                rows[kind].append((wall, cpu))
    finally:
        server.terminate()
        server.wait(timeout=30)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    for k, (w, c) in med.items():
        runs = ", ".join(f"{x:.2f}" for x, _ in rows[k])
        print(f"  {k:5s} stage: median {w:6.2f} s wall, {c:6.2f} CPU-s   (wall runs: {runs})")
    print(f"  warm/cold: {med['warm'][0] / med['cold'][0]:.2f}x wall, {med['warm'][1] / med['cold'][1]:.2f}x CPU; "
          f"saved per stage: {med['cold'][0] - med['warm'][0]:.2f} s wall, {med['cold'][1] - med['warm'][1]:.2f} CPU-s")
    same = metrics["cold"] == metrics["warm"]
    print(f"  test metrics, last cold vs last warm run: {'identical' if same else 'DIFFER'}: "
          + ", ".join(f"{k} {v:.6g}" for k, v in sorted(metrics["warm"].items())))
    if not same:
        raise SystemExit(f"the served stage's metrics differ from the cold stage's: {metrics}")


if __name__ == "__main__":
    main()
