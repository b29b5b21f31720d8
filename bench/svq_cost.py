#!/usr/bin/env python
"""What the associated SVQ product saves, measured side by side in one run.

Part 1: SVQ forward+backward alone, naive (build W = MLP(x), tokens x N, then W @ codebook) vs
associated (``pipeline.svq.SVQ``), plus the post-ReLU variant (naive vs blocked), at the paper's
WeatherBench-S latent size. Each variant runs in a fresh spawned process so its peak memory
(RSS increase on CPU, ``max_memory_allocated`` on CUDA) is its own.

Part 2: training-step time (forward + backward + Adam step) of SimVP, SimVP+SVQ and SimVP+SVQ
with the naive product plugged in, WeatherBench-S t2m paper widths, steps interleaved.

Run from the repository root: ``.venv/bin/python bench/svq_cost.py [--quick] [--device cuda]``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import gc
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the repo root
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from machine import mem_available, peak_rss, pick_device, print_header, reset_peak_rss  # noqa: E402

import pipeline  # noqa: E402,F401  (installs the torchvision shim before anything imports timm)
from pipeline.svq import SVQ  # noqa: E402

STEP_RATIO_LIMIT = 1.10  # the bound on SimVP+SVQ / SimVP training-step time on CPU


# ------------------------------------------------------------------------------------ header


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


# ------------------------------------------------------------------ the reference formula
def naive_svq(svq: SVQ, z: torch.Tensor) -> torch.Tensor:
    """Q = W @ M with W = Linear2(ReLU(Linear1(x))) built in full (tokens x N), as the paper's code."""
    return svq.literal_forward(z)


class NaiveSVQ(SVQ):
    """SVQ whose forward is the naive product, to plug into SimVP for the step-time comparison."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return naive_svq(self, z)


# (name, out_relu, naive)
VARIANTS = {
    "naive": (False, True),
    "associated": (False, False),
    "naive_relu": (True, True),
    "blocked_relu": (True, False),
}


def naive_bytes(tokens: int, codes: int, out_relu: bool) -> int:
    """Rough peak of the naive product: W and its gradient (one more tokens x N with the ReLU)."""
    return (3 if out_relu else 2) * tokens * codes * 4


# ---------------------------------------------------------------------------- part 1: child
def svq_child(variant: str, shape: tuple[int, int, int, int], codes: int, hidden: int,
              device_name: str, threads: int, warmup: int, repeats: int) -> dict:
    """Time and peak memory of one SVQ variant's forward+backward, in this (fresh) process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    out_relu, naive = VARIANTS[variant]
    svq = SVQ(shape[1], codes, hidden=hidden, init="normal", out_relu=out_relu).to(device)
    z = torch.randn(*shape, device=device, requires_grad=True)
    grad_out = torch.randn(*shape, device=device)

    def step(z, grad_out):
        svq.zero_grad(set_to_none=True)
        z.grad = None
        out = naive_svq(svq, z) if naive else svq(z)
        out.backward(grad_out)

    # One call on a single latent map first: one-time library set-up (autograd engine, BLAS
    # buffers) is then not counted as this variant's memory.
    step(z[:1].detach().requires_grad_(), grad_out[:1])
    sync(device)
    gc.collect()
    rss0, how = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    times = []
    for i in range(warmup + repeats):
        sync(device)
        t0 = time.perf_counter()
        step(z, grad_out)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = peak_rss(how) - rss0
    return {"times": times, "peak": peak, "how": how}


def run_in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def check_equal(shape, codes, hidden, device) -> list[str]:
    """Max differences naive vs associated/blocked (output and every gradient) on a small batch."""
    lines = []
    for naive_name, fast_name in (("naive", "associated"), ("naive_relu", "blocked_relu")):
        out_relu = VARIANTS[fast_name][0]
        torch.manual_seed(0)
        svq = SVQ(shape[1], codes, hidden=hidden, init="normal", out_relu=out_relu).to(device)
        z = torch.randn(*shape, device=device, requires_grad=True)
        grad_out = torch.randn(*shape, device=device)
        results = []
        for fn in (lambda: naive_svq(svq, z), lambda: svq(z)):
            svq.zero_grad(set_to_none=True)
            z.grad = None
            out = fn()
            out.backward(grad_out)
            results.append([out.detach()] + [t.grad.detach() for t in (z, *svq.parameters())])
        diffs = [((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
                 for a, b in zip(*results)]
        lines.append(f"{fast_name:>12} vs {naive_name:<10}: max |diff| / max |naive|: output "
                     f"{diffs[0]:.1e}, gradients (z, linear1, linear2, codebook) up to {max(diffs[1:]):.1e}")
    return lines


def part1(args, device: torch.device) -> None:
    samples = 2 if args.quick else 16
    frames, c, h, w = 12, 32, 16, 32
    shape = (samples * frames, c, h, w)
    tokens = shape[0] * h * w
    codes, hidden = 10000, 128
    print(f"## 1. SVQ forward+backward: {samples} samples x {frames} frames = {shape[0]} latent maps "
          f"of {h}x{w}, C={c}, N={codes:,}, hidden {hidden} ({tokens:,} tokens)")
    print("Each variant in a fresh spawned process; time = median of the repeats after warmup; "
          "peak = " + ("max_memory_allocated above the inputs" if device.type == "cuda"
                       else "peak RSS (VmHWM, high-water mark reset after a one-map priming call) "
                            "minus RSS before the warmup and timed calls") + ".")
    print("naive = W = Linear2(ReLU(Linear1(x))) built in full, then W @ codebook; "
          "associated = pipeline.svq.SVQ; *_relu = out_relu (post-ReLU) variant, SVQ walks the "
          "codebook in blocks of 1024 codes with recomputation in backward.")
    for line in check_equal((12, c, h, w), codes, hidden, device):
        print(line)
    print()
    expensive = (1, 2) if not args.quick else (1, 3)
    cheap = (2, 10)
    results = {}
    print(f"{'variant':<13} {'repeats':>8} {'median s':>10} {'min s':>9} {'max s':>9} {'peak memory':>13}")
    for name in ("naive", "associated", "naive_relu", "blocked_relu"):
        out_relu, naive = VARIANTS[name]
        warmup, repeats = expensive if (naive or out_relu) else cheap
        if naive and device.type == "cpu":
            need, avail = naive_bytes(tokens, codes, out_relu), mem_available()
            if avail is not None and avail < need * 1.1:
                print(f"{name:<13} SKIPPED: needs about {fmt_bytes(need)}, {fmt_bytes(avail)} available")
                continue
        r = run_in_fresh_process(svq_child, name, shape, codes, hidden, str(device), args.threads,
                                 warmup, repeats)
        results[name] = r
        t = r["times"]
        note = "" if r["how"] == "reset" else "  (lower bound: peak RSS could not be reset)"
        print(f"{name:<13} {f'{warmup}+{repeats}':>8} {statistics.median(t):>10.3f} {min(t):>9.3f} "
              f"{max(t):>9.3f} {fmt_bytes(r['peak']):>13}{note}", flush=True)
    print()
    for slow, fast in (("naive", "associated"), ("naive_relu", "blocked_relu")):
        if slow in results and fast in results:
            ts = statistics.median(results[slow]["times"]) / statistics.median(results[fast]["times"])
            ms = results[slow]["peak"] / max(results[fast]["peak"], 2**20)  # floor: 1 MiB
            print(f"ratio {slow}/{fast}: time {ts:.1f}x, peak memory {ms:.1f}x")
    print()


# --------------------------------------------------------------------------- part 2: steps
def build_models(device: torch.device):
    from pipeline.config.load import load_params
    from pipeline.config.run_config import resolve_run
    from pipeline.models.simvp import SimVP

    params = load_params(ROOT / "params.yaml")
    in_shape = (12, 1, 32, 64)
    models = {}
    for label, exp in (("SimVP", "t2m_simvp"), ("SimVP+SVQ", "t2m_svq"), ("SimVP+SVQ naive", "t2m_svq")):
        cfg = resolve_run(params, exp, profile="paper")
        torch.manual_seed(0)
        model = SimVP(in_shape, cfg.model, cfg.quantizer)
        if label.endswith("naive"):
            model.load_state_dict(models["SimVP+SVQ"][0].state_dict())  # same weights as SimVP+SVQ
            model.quantizer.svq.__class__ = NaiveSVQ
        model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        loss_fn = F.l1_loss if cfg.loss == "mae" else F.mse_loss
        models[label] = (model, opt, loss_fn, cfg)
    return in_shape, models


def part2(args, device: torch.device) -> None:
    batch = 1 if args.quick else 2
    warmup, rounds = (1, 3) if args.quick else (2, 20)
    in_shape, models = build_models(device)
    cfg = models["SimVP+SVQ"][3]
    m = cfg.model
    print(f"## 2. Training step (forward + backward + Adam step), batch {batch} x {in_shape[0]} frames "
          f"x {in_shape[1]}x{in_shape[2]}x{in_shape[3]}")
    print(f"Models from params.yaml, profile paper: t2m_simvp and t2m_svq ({m.translator}, hid_S {m.hid_S}, "
          f"hid_T {m.hid_T}, N_T {m.N_T}, N_S {m.N_S}; SVQ codebook {cfg.quantizer.codebook_size:,}, "
          f"hidden {cfg.quantizer.hidden}); 'naive' = the same SVQ weights with the naive product.")
    for label, (model, *_rest, c) in models.items():
        n = sum(p.numel() for p in model.parameters())
        print(f"  {label:<16} {n:>12,} parameters, loss {c.loss}")
    print(f"Steps interleaved A, B, C, A, B, C...; {warmup} warmup rounds, then {rounds} timed rounds.")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *in_shape, generator=g).to(device)
    y = torch.randn(batch, *in_shape, generator=g).to(device)

    def step(model, opt, loss_fn):
        opt.zero_grad(set_to_none=True)
        pred, aux = model(x)
        loss = loss_fn(pred, y) + aux
        loss.backward()
        opt.step()

    times = {label: [] for label in models}
    for r in range(warmup + rounds):
        for label, (model, opt, loss_fn, _) in models.items():
            sync(device)
            t0 = time.perf_counter()
            step(model, opt, loss_fn)
            sync(device)
            if r >= warmup:
                times[label].append(time.perf_counter() - t0)
    print()
    print(f"{'model':<16} {'median s':>10} {'min s':>9} {'max s':>9}")
    for label, t in times.items():
        print(f"{label:<16} {statistics.median(t):>10.3f} {min(t):>9.3f} {max(t):>9.3f}")
    base = statistics.median(times["SimVP"])
    ratio = statistics.median(times["SimVP+SVQ"]) / base
    naive = statistics.median(times["SimVP+SVQ naive"]) / base
    # ratios within a round share the machine's load at that moment: their spread shows the noise
    per_round = [b / a for a, b in zip(times["SimVP"], times["SimVP+SVQ"])]
    per_round_naive = [b / a for a, b in zip(times["SimVP"], times["SimVP+SVQ naive"])]
    print()
    print(f"ratio of medians SimVP+SVQ / SimVP       : {ratio:.3f}  "
          f"{'PASS' if ratio <= STEP_RATIO_LIMIT else 'FAIL'} (limit {STEP_RATIO_LIMIT:.2f})")
    print(f"  per-round ratios: median {statistics.median(per_round):.3f}, "
          f"range {min(per_round):.3f}..{max(per_round):.3f}")
    print(f"  ratio of minima (least disturbed steps): "
          f"{min(times['SimVP+SVQ']) / min(times['SimVP']):.3f}")
    print(f"ratio of medians SimVP+SVQ naive / SimVP : {naive:.3f}")
    print(f"  per-round ratios: median {statistics.median(per_round_naive):.3f}, "
          f"range {min(per_round_naive):.3f}..{max(per_round_naive):.3f}")
    print(f"  ratio of minima (least disturbed steps): "
          f"{min(times['SimVP+SVQ naive']) / min(times['SimVP']):.3f}")
    print("(post-ReLU SVQ cannot be associated; see part 1 for its blocked cost)")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="2 samples (12,288 tokens) in part 1, batch 1 and fewer rounds in part 2")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--part", choices=("1", "2", "all"), default="all")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads: expected a positive integer, got {args.threads}")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print_header("SVQ cost benchmark" + (" (--quick)" if args.quick else ""), device)
    if args.part in ("1", "all"):
        part1(args, device)
    if args.part in ("2", "all"):
        part2(args, device)


if __name__ == "__main__":
    main()
