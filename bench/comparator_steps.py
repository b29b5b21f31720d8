#!/usr/bin/env python
"""CPU seconds of one sample-profile training step of the comparator, SVQ-raw, post-VQ and post-ReLU
runs, before and with their sample settings (``profiles.sample.experiments``), side by side.

"before": the run as the sample profile resolves it without its per-experiment entry (N_S 2, the
paper's codebooks); "now": as configured. One step = forward, loss, backward, Adam update on a
batch of the run's shape (random values: the cost does not depend on them), one thread, huge pages
on (as every stage). A step that takes longer than ``--cap`` seconds is timed once, not repeated.

    .venv/bin/python bench/comparator_steps.py [--cap 30] [--experiments t2m_vq t2m_lfq ...]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from machine import print_header  # noqa: E402

import pipeline  # noqa: E402,F401  (huge pages, before torch allocates)
from pipeline.config.load import load_params  # noqa: E402
from pipeline.config.run_config import resolve_run
from pipeline.data.prepare import store_path  # noqa: E402
from pipeline.data.windows import WindowDataset  # noqa: E402
from pipeline.training.fit import build_model  # noqa: E402


def step_seconds(cfg, in_shape, t_out: int, cap: float) -> tuple[float, bool]:
    """CPU seconds of the step after a warm-up one (the warm-up's, capped, when it exceeds ``cap``)."""
    torch.manual_seed(0)
    model = build_model(cfg, in_shape)
    model.train()
    b = cfg.train.batch_size
    x, y = torch.randn(b, *in_shape), torch.randn(b, t_out, *in_shape[1:])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> float:
        c = time.process_time()
        pred, aux = model(x)
        loss = torch.nn.functional.mse_loss(pred[:, :t_out], y) + aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.process_time() - c

    first = step()
    if first > cap:
        return first, True
    return step(), False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--cap", type=float, default=30.0)
    ap.add_argument("--experiments", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(args.params)
    profile = params["profile"]
    entries = (params["profiles"][profile] or {}).get("experiments") or {}
    names = args.experiments or sorted(entries)
    bare = copy.deepcopy(params)
    bare["profiles"][profile].pop("experiments", None)
    print_header(f"Training step of the comparator runs ({profile} profile), CPU seconds", torch.device("cpu"))
    print("note: the development machine is shared (5 helpers); CPU seconds, not wall, are compared.\n")
    shapes = {}

    def shape_of(dataset: str):
        """(T_in, C, H, W) and T_out of the dataset's windows, from its store."""
        if dataset not in shapes:
            ds = WindowDataset(Path(store_path(params, dataset)), "train")
            shapes[dataset] = (ds.T_in, len(ds.channels), *ds.frame_shape[1:]), ds.T_out
        return shapes[dataset]

    baseline = resolve_run(params, "t2m_svq")
    ref, _ = step_seconds(baseline, *shape_of("t2m"), args.cap)
    print(f"{'run':24s} {'before':>22s} {'now':>22s} {'ratio':>8s}")
    print(f"{'t2m_svq (reference)':24s} {'':>22s} {f'{ref:6.2f} s':>22s}")
    for name in names:
        in_shape, t_out = shape_of(resolve_run(params, name).dataset)
        rows = []
        for p in (bare, params):
            cfg = resolve_run(p, name)
            t, capped = step_seconds(cfg, in_shape, t_out, args.cap)
            latent = build_model(cfg, in_shape).latent_shape
            tokens = cfg.train.batch_size * in_shape[0] * latent[1] * latent[2]
            codes = getattr(cfg.quantizer, "codebook_size", "-")
            rows.append((t, capped, f"{'>' if capped else ''}{t:6.2f} s ({tokens} x {codes})"))
        ratio = f"{rows[0][0] / rows[1][0]:7.1f}x" + ("+" if rows[0][1] else "")
        print(f"{name:24s} {rows[0][2]:>22s} {rows[1][2]:>22s} {ratio:>8s}", flush=True)
    print("\n(latent vectors per batch x codes per codebook; '>' a step over the cap, timed once)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
