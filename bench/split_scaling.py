#!/usr/bin/env python
"""What ``train.split_scaling`` does to test scores: ours (validation and test scaled with the
training statistics) against the public weather loader's (each split scaled with its own mean and
std; ``own`` converts back with the training statistics, as its single-variable branch, ``own_both``
with the split's own, as its WB-M branch).

For each twin store of ``data/processed`` (``make repro`` leaves them; ``--data-root`` points at
another checkout's), SimVP and SimVP+SVQ are trained in-process with params.yaml's active profile,
one seed, once per scaling. The training split and the seed are the same for all three, so the
models differ only through early stopping on the (differently scaled) validation split (not at all
where the profile validates once, as the sample profile does; the validation loss is in model
space); the test scores differ through the test inputs and, for ``own``, through the space the
public code scores in: targets scaled with the test split's statistics and converted back with training's
(an affine image of the physical units, not the units themselves). Printed first: each split's
per-channel mean and std.

    .venv/bin/python bench/split_scaling.py [--datasets t2m,tcc] [--data-root /path/to/checkout]
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
MODES = ("train", "own", "own_both")


def run(params: dict, name: str, store: Path, mode: str, seed: int, work: Path) -> dict:
    from pipeline.config.run_config import resolve_run
    from pipeline.training.fit import run_experiment

    p = copy.deepcopy(params)
    p["experiments"] = {name: {**p["experiments"][name], "seeds": [seed]}}
    prof = p["profiles"][p["profile"]]
    sets = ((prof.get("experiments") or {}).get(name) or {}).get("set") or {}
    prof["experiments"] = {name: {"set": {**sets, "train.split_scaling": mode}}}  # the profile has the last word
    t0 = time.process_time()
    result = run_experiment(resolve_run(p, name), store, work / f"{name}-{mode}")
    return {**result["metrics"], "cpu": time.process_time() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="t2m,tcc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", type=Path, default=ROOT, help="checkout whose data/processed holds the stores")
    args = ap.parse_args()
    os.environ.setdefault("SVQ_TRACKING_URI", "sqlite:///" + str(Path(tempfile.mkdtemp()) / "mlflow.db"))
    import torch

    from machine import print_header
    from pipeline.core.paths import store_path
    from pipeline.data.windows import WindowDataset

    print_header("split_scaling: validation/test scaled with training's or their own statistics",
                 torch.device("cpu"))
    torch.set_num_threads(1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    print(f"profile {params['profile']}, seed {args.seed}, stores under {args.data_root}\n")
    datasets = [d for d in args.datasets.split(",") if d]
    for ds in datasets:
        store = store_path(params, ds, args.data_root)
        train = WindowDataset(store, "train")
        print(f"{ds}: training mean {train.offset.ravel().round(3).tolist()} std {train.scale.ravel().round(3).tolist()}")
        for split in ("val", "test"):
            own = WindowDataset(store, split, split_scaling="own")
            print(f"{ds}: {split:5} own mean {own.in_offset.ravel().round(3).tolist()} "
                  f"std {own.in_scale.ravel().round(3).tolist()}")
    print(f"\n{'dataset':8} {'run':6} {'scaling':9} {'test MSE':>10} {'test MAE':>10} {'test RMSE':>10} "
          f"{'val loss':>10} {'CPU s':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for ds in datasets:
            store = store_path(params, ds, args.data_root)
            for name in (f"{ds}_simvp", f"{ds}_svq"):
                for mode in MODES:
                    m = run(params, name, store, mode, args.seed, Path(tmp))
                    print(f"{ds:8} {name.split('_', 1)[1]:6} {mode:9} {m['test_mse']:10.5g} {m['test_mae']:10.5g} "
                          f"{m['test_rmse']:10.5g} {m['best_val_loss']:10.4g} {m['cpu']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
