#!/usr/bin/env python
"""Where the seconds of one sample-profile train stage go, and what importing it costs.

Part 1: ``import torch`` and ``import pipeline.training.fit`` (the training entry point) timed in fresh
interpreters, interleaved and repeated; their median ratio is the number the pipeline keeps
at or below 2.

Part 2: one experiment (default ``t2m_simvp_mae``: SimVP, one seed) trained as its DVC stage does, in a fresh
interpreter, logging to a throw-away MLflow store that already exists (as in a repro, where only
the first stage creates it; that creation is timed separately). Seconds are split into start-up
(interpreter + imports), data (opening the store, reading splits), training (optimiser steps),
evaluation (validation, test metrics, per-lead scores, cost, quantizer diagnostics) and logging
(MLflow calls, per-epoch and best checkpoints, forecast figure and arrays).

Every phase is given in wall seconds and in CPU seconds of the stage's process: on a shared
machine the CPU seconds are the steadier measure. The stage runs twice, side by side: as configured
("now") and as before the speed-ups of issue 8 ("before": ``THP_MEM_ALLOC_ENABLE=0``, so no huge
pages for large tensors, ``train.fps_batch`` null, so FPS timed on OpenSTL's batch of 100, and
the model's weights left in NCHW layout, ``pipeline.training.fit.CHANNELS_LAST_ON_CPU`` off).

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
def child(experiment: str, params: str, fps_batch_null: bool = False, nchw: bool = False) -> None:
    t_start = time.perf_counter()
    import pipeline.training.fit as train
    from pipeline.config.load import load_params
    from pipeline.config.run_config import resolve_run
    from pipeline.data import windows
    from pipeline.data.prepare import store_path
    from pipeline.tracking import mlflow_runs

    t_imported = time.perf_counter()
    if nchw:
        train.CHANNELS_LAST_ON_CPU = False
    phases = {"data": 0.0, "training": 0.0, "evaluation": 0.0, "logging": 0.0}
    cpu = dict.fromkeys(phases, 0.0)
    depth = [0]  # nested timed calls count once, in the outermost phase

    @contextlib.contextmanager
    def clock(phase):
        depth[0] += 1
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                phases[phase] += time.perf_counter() - t
                cpu[phase] += time.process_time() - c

    def timed(phase, fn):
        def wrapper(*a, **k):
            with clock(phase):
                return fn(*a, **k)
        return wrapper

    @contextlib.contextmanager
    def timed_run(*a, **k):
        cm = real_start_run(*a, **k)
        with clock("logging"):
            run = cm.__enter__()
        try:
            yield run
        finally:
            with clock("logging"):
                cm.__exit__(*sys.exc_info())

    real_start_run = mlflow_runs.start_run
    mlflow_runs.start_run = timed_run
    for name in ("log_metrics", "log_artifact"):
        setattr(mlflow_runs, name, timed("logging", getattr(mlflow_runs, name)))
    ds = windows.WindowDataset
    ds.__init__ = timed("data", ds.__init__)
    real_array, timed_array = ds._array, timed("data", ds._array)
    # only the first call of a split reads it (into memory); later ones belong to their phase
    ds._array = lambda self: timed_array(self) if self._frames is None else real_array(self)
    train._train_epoch = timed("training", train._train_epoch)
    for name in ("_validate", "_evaluate", "_cost", "_diagnostics"):
        setattr(train, name, timed("evaluation", getattr(train, name)))
    for name in ("_save_svq_sample", "_log_mlflow_model_and_inputs"):
        setattr(train, name, timed("logging", getattr(train, name)))
    for name in ("write", "write_figure_data"):  # the run record under runs/<exp>/
        setattr(train.record_files, name, timed("logging", getattr(train.record_files, name)))
    train.torch.save = timed("logging", train.torch.save)
    for name in ("_lead_evaluation",):
        setattr(train, name, timed("evaluation", getattr(train, name)))
    train._log_lead_scores = timed("logging", train._log_lead_scores)
    train.checkpoint.Checkpoint.save = timed("logging", train.checkpoint.Checkpoint.save)  # per epoch
    import pipeline.training.forecast_plots as plots  # train imports it when drawing (its import time counts there)

    plots.forecast_figure = timed("logging", plots.forecast_figure)
    detail = detail_timers(train, mlflow_runs, plots)
    p = load_params(params)
    if fps_batch_null:
        p["profiles"][p["profile"]].setdefault("train", {})["fps_batch"] = None
    cfg = resolve_run(p, experiment)
    t_run, c_run = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out:
        result = train.run_experiment(cfg, store_path(p, cfg.dataset), Path(out))
    total_run, cpu_run = time.perf_counter() - t_run, time.process_time() - c_run
    print(json.dumps({"imports": t_imported - t_start, "setup": t_run - t_imported,
                      "run": total_run, "cpu_run": cpu_run, "cpu_total": time.process_time(),
                      "seeds": len(cfg.seeds), **phases, "cpu": cpu, "detail": detail,
                      "metrics": {k: v for k, v in result["metrics"].items() if k.startswith("test_")}}))


DETAIL = [  # (label, the names its callers look up): fixed costs inside the phases, timed on their own
    ("optimiser constructor (imports torch._dynamo)", ("torch.optim.Adam",)),
    ("validation passes (every epoch)", ("train._validate",)),
    ("reference forecasts (per-lead skill)", ("reference_forecasts.ReferenceForecasts",)),
    ("FLOP counts (executed + W@M)", ("train.flops_per_sample", "train.flops_per_sample_literal")),
    ("FPS timing", ("train.inference_fps",)),
    ("quantizer diagnostics", ("train._diagnostics",)),
    ("MLflow store set-up (per process)", ("mlflow_runs.ensure_experiment",)),
    ("MLflow pyfunc model + dataset inputs", ("train._log_mlflow_model_and_inputs",)),
    ("forecast figure (drawing)", ("plots.forecast_figure",)),
    ("per-epoch checkpoints", ("checkpoint.Checkpoint.save",)),
]


def detail_timers(train, tracking, plots) -> dict:
    """Wrap the :data:`DETAIL` functions and return their running ``{label: [wall, cpu, calls]}``;
    their callers look them up when calling, so the wrappers are what runs."""
    import torch

    from pipeline.training import reference_forecasts  # (not mlflow_model: its import of mlflow belongs to the run)

    owners = {"torch.optim": torch.optim, "train": train, "references": reference_forecasts, "tracking": tracking,
              "plots": plots, "checkpoint.Checkpoint": train.checkpoint.Checkpoint}
    sums = {}
    for label, names in DETAIL:
        sums[label], active = [0.0, 0.0, 0], [0]  # active: calls in progress (a nested one counts once)
        for dotted in names:
            owner, attr = dotted.rsplit(".", 1)
            setattr(owners[owner], attr, _summed(getattr(owners[owner], attr), sums[label], active))
    return sums


def _summed(fn, total: list, active: list):
    def wrapper(*a, **k):
        active[0] += 1
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            active[0] -= 1
            if not active[0]:
                total[0] += time.perf_counter() - t
                total[1] += time.process_time() - c
                total[2] += 1
    return wrapper


# ------------------------------------------------------------------------------ parent
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="t2m_simvp_mae")  # gSTA, one seed
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fps-batch-null", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nchw", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.child:
        child(args.experiment, args.params, args.fps_batch_null, args.nchw)
        return 0

    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from machine import print_header

    from pipeline.config.load import load_params
    from pipeline.config.run_config import resolve_run
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
        train_s.append(import_seconds("pipeline.training.fit"))
    mt, mp = statistics.median(torch_s), statistics.median(train_s)
    print(f"import torch           : median {mt:.2f} s  (runs: {', '.join(f'{v:.2f}' for v in torch_s)})")
    print(f"import pipeline.training.fit  : median {mp:.2f} s  (runs: {', '.join(f'{v:.2f}' for v in train_s)})")
    print(f"import ratio           : {mp / mt:.2f} x import torch (target <= 2)\n")

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SVQ_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
                   SVQ_ARTIFACT_ROOT=Path(tmp, "artifacts").as_uri())
        setup = [sys.executable, "-c", "import time; t = time.perf_counter(); from pipeline.tracking import mlflow_runs; "
                 f"mlflow_runs.ensure_experiment(mlflow_runs.experiment_name({cfg.profile!r})); "
                 "print(time.perf_counter() - t)"]
        out = subprocess.run(setup, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        created = float(out.stdout.strip().splitlines()[-1])
        runs = {}
        for label, extra, flags in (("before", {"THP_MEM_ALLOC_ENABLE": "0"}, ["--fps-batch-null", "--nchw"]),
                                    ("now", {}, [])):
            runs[label] = stage_run(args, env | extra, flags)
            if runs[label] is None:
                return 1
    rows = [("start-up (interpreter + imports)", "startup"), ("config + store path", "setup"), ("data", "data"),
            ("training", "training"), ("evaluation", "evaluation"), ("logging", "logging"),
            ("other (in run, untimed)", "other")]
    b, n = runs["before"], runs["now"]
    print(f"stage {args.experiment} ({n['seeds']} seed(s)), run twice side by side; seconds wall / CPU")
    print(f"  {'':34s} {'before':>15s} {'now':>15s}  {'CPU now/before':>14s}")
    for name, key in rows:
        wb, cb = b["wall"][key], b["cpu"].get(key)
        wn, cn = n["wall"][key], n["cpu"].get(key)
        ratio = f"{cn / cb:13.2f}x" if cb and cn is not None else ""
        fmt = lambda w, c: f"{w:6.2f} / {c:6.2f}" if c is not None else f"{w:6.2f} /      -"
        print(f"  {name:34s} {fmt(wb, cb):>15s} {fmt(wn, cn):>15s}  {ratio}")
    print(f"  {'whole stage':34s} {fmt(b['total'], b['cpu_total']):>15s} {fmt(n['total'], n['cpu_total']):>15s}"
          f"  {n['cpu_total'] / b['cpu_total']:13.2f}x")
    print("  (before: THP_MEM_ALLOC_ENABLE=0, train.fps_batch null, NCHW weights; 'other' and start-up CPU"
          " are not split)")
    print("  of which, timed on their own (wall / CPU, calls):")
    for label, _ in DETAIL:
        (wb, cb, nb), (wn, cn, nn) = b["detail"][label], n["detail"][label]
        print(f"    {label:46s} {wb:5.2f} / {cb:5.2f} ({nb:>2d}) {wn:5.2f} / {cn:5.2f} ({nn:>2d})")
    print("test metrics (mean over seeds), before -> now (relative change; NCHW vs channels-last weights"
          " changes the summation order only):")
    for key, vb in b["metrics"].items():
        vn = n["metrics"].get(key)
        if vb is not None and vn is not None:
            print(f"    {key:14s} {vb:.6g} -> {vn:.6g}  ({(vn - vb) / abs(vb) if vb else 0.0:+.1e})")
    print(f"MLflow store creation (first stage of a repro only): {created:.2f} s")
    return 0


def stage_run(args, env: dict, flags: list[str]) -> dict | None:
    """One stage in a fresh interpreter: wall and CPU seconds per phase."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--experiment",
                          args.experiment, "--params", args.params, *flags], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    r = json.loads(out.stdout.strip().splitlines()[-1])
    known = sum(r[k] for k in ("data", "training", "evaluation", "logging"))
    wall_parts = {"startup": wall - r["run"] - r["setup"], "setup": r["setup"], "other": r["run"] - known,
                  **{k: r[k] for k in ("data", "training", "evaluation", "logging")}}
    cpu = dict(r["cpu"], other=r["cpu_run"] - sum(r["cpu"].values()))
    return {"seeds": r["seeds"], "wall": wall_parts, "cpu": cpu, "total": wall, "detail": r["detail"],
            "metrics": r["metrics"],
            "cpu_total": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


if __name__ == "__main__":
    raise SystemExit(main())
