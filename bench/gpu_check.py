#!/usr/bin/env python
"""Issue 14 item 6: t2m SimVP and SimVP+SVQ at the paper's size on a GPU, fp32 and bf16.

Per model and precision: ms per training step (the project's step, batch 16, random windows, so
no data loading), the time per epoch extrapolated to the paper's 52,561 t2m training windows
(3,285 steps; the paper reports about 7.3 min per epoch with SVQ on a V100), peak GPU memory, and
the SVQ/SimVP step-time ratio. Run on a GPU machine: ``bash bench/gpu_check.sh`` (this, then the
loader benchmark on CUDA); ``--device cpu --steps 2`` only checks that it runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pipeline  # noqa: E402,F401  (installs the torchvision shim first)
import torch  # noqa: E402
from machine import pick_device, print_header  # noqa: E402
from trainer_speed import measure, paper_config  # noqa: E402

T2M_TRAIN_WINDOWS = 52_561  # 2010-2015 hourly = 52,584 frames, 24-frame windows
MODELS = ("t2m_simvp", "t2m_svq")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    ap.add_argument("--steps", type=int, default=100, help="timed steps per configuration (default 100)")
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print_header("GPU check: t2m SimVP vs SimVP+SVQ at the paper's size", device)
    precisions = ["fp32", "bf16"]
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        precisions.append("fp16")  # pre-Ampere GPUs: bf16 is emulated, fp16 is their fast path
    rows = {}
    for name in MODELS:
        cfg = paper_config(name)
        steps_per_epoch = T2M_TRAIN_WINDOWS // cfg.train.batch_size
        for precision in precisions:
            r = measure(cfg, (12, 1, 32, 64), 12, cfg.train.batch_size, device, precision,
                        steps=args.steps, warmup=args.warmup)
            r["epoch_min"] = r["ms_per_step"] * steps_per_epoch / 60_000
            rows[(name, precision)] = r
            print(f"{name:<10} {precision:<5} batch {cfg.train.batch_size}: {r['ms_per_step']:8.1f} ms/step, "
                  f"{r['windows_per_s']:8.1f} windows/s, epoch ({steps_per_epoch} steps) {r['epoch_min']:6.2f} min"
                  + (f", peak {r['peak_gib']:.2f} GiB" if "peak_gib" in r else ""), flush=True)
    print()
    for precision in precisions:
        ratio = rows[("t2m_svq", precision)]["ms_per_step"] / rows[("t2m_simvp", precision)]["ms_per_step"]
        print(f"SVQ / SimVP step time, {precision}: {ratio:.2f}x")
    for name in MODELS:
        for precision in precisions[1:]:
            speed = rows[(name, "fp32")]["ms_per_step"] / rows[(name, precision)]["ms_per_step"]
            print(f"{name}: {precision} is {speed:.2f}x the speed of fp32")
    print("paper (Table 13): about 7.3 min per epoch with SVQ on a V100 (fp32)")


if __name__ == "__main__":
    main()
