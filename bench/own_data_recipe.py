#!/usr/bin/env python
"""What ``model.target`` does to test MSE, on generated real-looking fields and on the twins.

For each dataset, SimVP and SimVP+SVQ are trained with params.yaml's sample profile exactly as a
user gets it, once per target (``frames``: the paper; ``residual``: change from the last input;
``linear``: correction to a least-squares linear forecast of the inputs; see
``pipeline/models/target.py``) and seed. Printed per run: test MSE (mean over seeds), the skill
against persistence and the input mean (1 - MSE / MSE_reference, %) with a 95 % interval from a
paired circular block bootstrap over test windows (the seeds' mean error per window; seed variance
not included), and training CPU seconds.

Datasets: ``annual``, ``monthly``, ``sixhourly`` (``pipeline.data.climate_fields``, through the
own-data path: netCDF -> custom source -> Zarr store) and, with ``--twins``, stores of the
embedded reproduction that ``make repro`` left in ``data/processed`` (e.g. t2m, taxibj, kth).

    .venv/bin/python bench/own_data_recipe.py [--seeds 2] [--twins t2m,taxibj,kth] [--kinds annual,...]
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
TARGETS = ("frames", "residual", "linear")
WINDOWS = {"annual": (4, 4), "monthly": (6, 6), "sixhourly": (4, 4)}  # as tests/test_own_data_learns.py


def skill_interval(model_w: np.ndarray, ref_w: np.ndarray, n_boot: int = 2000) -> tuple[float, float, float]:
    """Skill (%) of the per-window errors ``model_w`` over ``ref_w`` (windows,), with a 95 % paired
    circular block bootstrap interval over windows."""
    from pipeline.report.significance import block_means, optimal_block_length

    series = np.stack([model_w, ref_w])
    block = optimal_block_length(model_w - ref_w)
    reps = block_means(series, block, n_boot, np.random.default_rng(0))
    skills = 100 * (1 - reps[:, 0] / reps[:, 1])
    return 100 * (1 - model_w.mean() / ref_w.mean()), *np.percentile(skills, [2.5, 97.5])


def own_store(kind: str, params: dict, work: Path) -> tuple[dict, Path]:
    """params with dataset ``mine`` on the generated field of ``kind``, and its preprocessed store."""
    from pipeline.config.load import validate_params
    from pipeline.data import climate_fields, prepare

    path = climate_fields.write(kind, work / f"tas_{kind}.nc")
    p = copy.deepcopy(params)
    p["data"]["root"] = str(work / "data")
    T_in, T_out = WINDOWS[kind]
    p["datasets"]["mine"] = {"source": "custom", "raw": "remote", "title": kind, "metrics": ["mse", "mae"],
                             "data": {"path": str(path), "variables": ["tas"], "T_in": T_in, "T_out": T_out,
                                      "splits": climate_fields.SPLITS[kind]}}
    p["experiments"] = {"mine_simvp": {"dataset": "mine", "tables": [], "set": {}},
                        "mine_svq": {"dataset": "mine", "tables": [], "set": {"model.quantizer": "svq"}}}
    validate_params(p)
    prepare.download(p, "mine")
    return p, prepare.preprocess(p, "mine")


def run(p: dict, name: str, store: Path, target: str, seeds: list[int], work: Path) -> dict:
    from pipeline.config.run_config import resolve_run
    from pipeline.training import record_files
    from pipeline.training.fit import run_experiment

    p = copy.deepcopy(p)
    exp = p["experiments"][name]
    p["experiments"] = {name: {**exp, "seeds": seeds}}
    prof = p["profiles"][p["profile"]]
    sets = ((prof.get("experiments") or {}).get(name) or {}).get("set") or {}
    prof["experiments"] = {name: {"set": {**sets, "model.target": target}}}  # the last word on the target
    out = work / f"{name}-{target}"
    t0 = time.process_time()
    result = run_experiment(resolve_run(p, name), store, out)
    cpu = time.process_time() - t0
    windows = record_files.read_windows(out)
    model_w = np.mean([w["mse"].astype(np.float64).mean(axis=1) for w in windows.values()], axis=0)
    return {"mse": result["metrics"]["test_mse"], "model_w": model_w, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--kinds", default="annual,monthly,sixhourly")
    ap.add_argument("--twins", default="", help="comma-separated datasets of data/processed (after make repro)")
    args = ap.parse_args()
    os.environ.setdefault("SVQ_TRACKING_URI", "sqlite:///" + str(Path(tempfile.mkdtemp()) / "mlflow.db"))
    import torch

    from machine import print_header
    from pipeline.core.paths import store_path
    from pipeline.training.reference_comparison import reference_errors

    print_header("own_data_recipe: model.target on generated fields and twins", torch.device("cpu"))
    torch.set_num_threads(1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    seeds = list(range(args.seeds))
    print(f"profile {params['profile']}, seeds {seeds}; skill vs persistence / input mean in %, "
          f"[95 % paired block-bootstrap interval over test windows]\n")
    print(f"{'dataset':10} {'run':12} {'target':9} {'test MSE':>10} {'vs persistence':>26} {'vs input mean':>26} {'CPU s':>6}")
    jobs = [("own", k) for k in args.kinds.split(",") if k] + [("twin", d) for d in args.twins.split(",") if d]
    with tempfile.TemporaryDirectory() as tmp:
        for what, ds in jobs:
            work = Path(tmp) / ds
            work.mkdir()
            if what == "own":
                p, store = own_store(ds, params, work)
                names = ["mine_simvp", "mine_svq"]
            else:
                p, store = params, store_path(params, ds, ROOT)
                names = [f"{ds}_simvp", f"{ds}_svq"]
            refs = reference_errors(store)
            for name in names:
                for target in TARGETS:
                    r = run(p, name, store, target, seeds, work)
                    cols = []
                    for ref in ("persistence", "input_mean"):
                        s, lo, hi = skill_interval(r["model_w"], refs[ref]["window_mse"].mean(axis=1))
                        cols.append(f"{s:+7.1f} [{lo:+6.1f}, {hi:+6.1f}]")
                    print(f"{ds:10} {name.split('_', 1)[1]:12} {target:9} {r['mse']:10.4g} {cols[0]:>26} "
                          f"{cols[1]:>26} {r['cpu']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
