"""Paper-scale dry run (`make paper-check`): every catalogue run at the paper profile's real widths,
on twin data at the real resolution, one optimiser step and one evaluation batch, on CPU.

For each experiment it prints parameters, forward FLOPs per sample (executed; and, for SVQ, as the
paper counts them, with W @ M built), peak memory and time of one optimiser step, and the time of
one evaluation batch. Nothing trains to convergence: the point is that no run a GPU user launches
crashes or runs out of memory an hour in, and what each costs.

Batch: on a shared 2-core CPU one paper-width step of one sample takes tens of seconds, so by
default the step and the evaluation run on ONE sample and the row adds the estimate for the run's
real global batch: memory = weights + gradients + Adam state + batch x (activations of one sample),
time = batch x the one-sample step. ``--full-batch`` runs the real batch instead (a GPU or a big
machine). Peak memory = weights + gradients + Adam's two moments + the activations autograd saves
for backward (counted per storage with saved-tensor hooks; an allocator-independent lower bound:
transient buffers inside an op come on top). Runs whose model, batch and quantizer
settings equal an earlier row's (same cost: e.g. another noise level, loss or codebook init)
reuse its measurement and say so.

    python bench/paper_check.py                      # every experiment
    python bench/paper_check.py --runs t2m_svq,kth_svq --full-batch
"""
from __future__ import annotations

import argparse
import copy
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the repo root
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from machine import print_header  # noqa: E402
from torch import nn  # noqa: E402

import pipeline  # noqa: E402,F401  (installs the torchvision shim before anything imports timm)
from pipeline.config.load import load_params  # noqa: E402
from pipeline.config.run_config import resolve_run
from pipeline.data.prepare import download, preprocess  # noqa: E402
from pipeline.data.windows import WindowDataset  # noqa: E402
from pipeline.metrics.cost import count_parameters, flops_per_sample, flops_per_sample_literal  # noqa: E402
from pipeline.training.fit import build_model  # noqa: E402

GB = 2**30


def twin_stores(params: dict, datasets: list[str], root: Path) -> dict[str, Path]:
    """Sample twins (real frame sizes and channels, few windows) written as the pipeline does."""
    data_params = copy.deepcopy(params)
    data_params["profile"] = "sample"
    stores = {}
    for ds in datasets:
        t0 = time.perf_counter()
        download(data_params, ds, root)
        stores[ds] = preprocess(data_params, ds, root)
        print(f"twin {ds}: {time.perf_counter() - t0:.1f} s", flush=True)
    return stores


def batch_of(ds: WindowDataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows (cycling when the twin holds fewer)."""
    items = [ds[i % len(ds)] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def one_step(model, opt, criterion, x, y, T_out) -> tuple[float, int]:
    """(seconds, bytes of the tensors autograd saved for backward) of one optimiser step.

    Saved tensors are counted once per storage: the activation memory a step holds at its peak,
    whatever the allocator keeps around (the process's RSS cannot tell after earlier runs freed
    memory, and the machine is shared)."""
    gc.collect()
    storages: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and not isinstance(t, nn.Parameter):
            st = t.untyped_storage()
            storages[st.data_ptr()] = st.nbytes()
        return t

    t0 = time.perf_counter()
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        pred, aux = model.forecast(x, T_out)
        loss = criterion(pred, y) + aux
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    seconds = time.perf_counter() - t0
    del pred, aux, loss
    opt.zero_grad(set_to_none=True)
    return seconds, sum(storages.values())


@torch.no_grad()
def one_eval(model, criterion, x, y, T_out) -> float:
    model.eval()
    t0 = time.perf_counter()
    pred, _ = model.forecast(x, T_out)
    criterion(pred, y).item()
    return time.perf_counter() - t0


def cost_key(cfg) -> str:
    """What decides a run's cost: the model, the quantizer's shape-relevant settings, the batch."""
    q = {k: v for k, v in cfg.quantizer.model_dump().items() if k not in ("init", "sample_codebook_temp", "decay",
                                                              "commitment_weight", "entropy_loss_weight")}
    m = {k: v for k, v in cfg.model.model_dump().items() if k != "drop_path"}
    return repr((cfg.dataset, sorted(m.items()), sorted(q.items()), cfg.train.batch_size, cfg.train.val_batch_size))


def check_run(params: dict, name: str, stores: dict[str, Path], full_batch: bool) -> dict:
    cfg = resolve_run(params, name, "paper")
    t = cfg.train
    train_ds, val_ds = WindowDataset(stores[cfg.dataset], "train"), WindowDataset(stores[cfg.dataset], "val")
    in_shape = (train_ds.T_in, len(train_ds.channels), *train_ds.frame_shape[1:])
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = build_model(cfg, in_shape)
    build_s = time.perf_counter() - t0
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
    criterion = nn.L1Loss() if cfg.loss == "mae" else nn.MSELoss()
    T_out = train_ds.T_out
    x1, _ = batch_of(val_ds, 1)
    flops = flops_per_sample(model, x1)
    flops_lit = flops_per_sample_literal(model, x1) if cfg.model.quantizer == "svq" else flops
    row = {"run": name, "dataset": cfg.dataset, "translator": cfg.model.translator,
           "quantizer": cfg.model.quantizer + ("/post" if cfg.model.quantizer_position == "post"
                                               and cfg.model.quantizer != "none" else ""),
           "shape": "x".join(map(str, in_shape)), "params_M": count_parameters(model)["total"] / 1e6,
           "gflops": flops / 1e9, "gflops_literal": flops_lit / 1e9, "batch": t.batch_size, "build_s": build_s}
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    b = t.batch_size if full_batch else 1
    s, act = one_step(model, opt, criterion, *batch_of(train_ds, b), T_out)
    state = 3 * trainable  # gradients + Adam's two moments
    row |= {"step_batch": b, "step_s": s, "peak_gb": (weights + state + act) / GB,
            "est_step_s": s / b * t.batch_size, "est_peak_gb": (weights + state + act / b * t.batch_size) / GB}
    vb = min(t.val_batch_size, t.batch_size) if full_batch else 1
    row |= {"eval_batch": vb, "eval_s": one_eval(model, criterion, *batch_of(val_ds, vb), T_out)}
    return row


def fmt(row: dict, same_as: str = "") -> str:
    lit = f"{row['gflops_literal']:8.2f}" if row["gflops_literal"] != row["gflops"] else f"{'':8}"
    return (f"{same_as or row['run']:28} {row['dataset']:6} {row['translator']:10} "
            f"{row['quantizer']:18} {row['shape']:13} {row['params_M']:8.2f} {row['gflops']:8.2f} {lit} "
            f"{row['step_batch']:3d} {row['peak_gb']:7.2f} {row['step_s']:7.1f} {row['eval_batch']:3d} "
            f"{row['eval_s']:6.1f} {row['batch']:5d} {row['est_peak_gb']:8.2f} {row['est_step_s']:8.1f}"
            + (f"   (= {row['run']})" if same_as else ""))


HEADER = (f"{'run':28} {'data':6} {'translator':10} {'quantizer':18} {'T x C x H x W':13} {'params M':>8} "
          f"{'GFLOPs':>8} {'GFL lit':>8} {'b':>3} {'peak GB':>7} {'step s':>7} {'evb':>3} {'eval s':>6} "
          f"{'batch':>5} {'est. GB':>8} {'est. s':>8}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--runs", default="", help="comma-separated experiments (default: the whole catalogue)")
    ap.add_argument("--full-batch", action="store_true", help="step and evaluate at the run's real batch")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    video = ("human", "kth", "kitti")  # the heaviest steps last, so a cut-short run still covers the rest
    names = [n for n in args.runs.split(",") if n] or sorted(
        params["experiments"], key=lambda n: params["experiments"][n]["dataset"] in video)
    unknown = [n for n in names if n not in params["experiments"]]
    if unknown:
        print(f"--runs: unknown experiment(s) {unknown}", file=sys.stderr)
        return 2
    print_header("Paper-scale dry run: paper-profile widths, twin data at real resolution, CPU",
                 torch.device("cpu"))
    print("Machine shared with other work while this ran: times are indicative, compare within a run.")
    print("GFLOPs: forward per sample, torch counter (2 per multiply-add), as executed (SVQ associated);")
    print("GFL lit: the same with SVQ's W @ M built as the paper's code (the paper's fvcore MACs = this / 2).")
    print("b / peak GB / step s: one optimiser step at batch b (weights included); evb / eval s: one")
    print("evaluation batch; batch / est. GB / est. s: the run's global batch and the step's estimated")
    print("peak memory and CPU time there. Memory = weights + gradients + Adam state + activations saved for")
    print("backward (batch x one sample's), a lower bound on a GPU's need: op workspaces come on top.\n")
    started = time.perf_counter()
    failures = []
    with tempfile.TemporaryDirectory(prefix="paper-check-") as tmp:
        stores = twin_stores(params, sorted({params["experiments"][n]["dataset"] for n in names}), Path(tmp))
        print(f"\n{HEADER}", flush=True)
        seen: dict[str, dict] = {}
        for name in names:
            try:
                key = cost_key(resolve_run(params, name, "paper"))
                if key in seen:
                    print(fmt(seen[key], same_as=name), flush=True)
                    continue
                seen[key] = check_run(params, name, stores, args.full_batch)
                print(fmt(seen[key]), flush=True)
            except Exception as exc:  # report every failing run, then fail
                failures.append(name)
                print(f"{name:28} FAILED: {type(exc).__name__}: {exc}", flush=True)
            gc.collect()
    print(f"\n{len(names) - len(failures)}/{len(names)} runs passed in {(time.perf_counter() - started) / 60:.1f} min"
          + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
