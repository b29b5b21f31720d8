"""The model's own training throughput at the paper's size: the project's training step
(``pipeline.training.fit._train_epoch``: autocast, gradient scaler, Adam) on one batch of random windows
repeated, so that no data loading is in the measurement. Used by data_loading.py and gpu_check.py."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from pipeline.config.load import load_params
from pipeline.config.run_config import resolve_run
from pipeline.training import distributed
from pipeline.training.fit import _train_epoch, build_model

ROOT_PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


def paper_config(experiment: str, params_path: str = ROOT_PARAMS, **train_overrides):
    params = load_params(params_path)
    params["profile"] = "paper"
    if train_overrides:
        params["train"] = dict(params["train"], **train_overrides)
    return resolve_run(params, experiment)


def measure(cfg, in_shape, t_out: int, batch: int, device: torch.device, precision: str = "fp32",
            steps: int = 5, warmup: int = 1) -> dict:
    """Windows/s and ms/step of ``steps`` training steps after ``warmup``; peak GPU memory on CUDA."""
    torch.manual_seed(0)
    model = build_model(cfg, in_shape).to(device)
    forward = distributed.wrap(model, distributed.Ranks(), device, t_out, sync_batchnorm=False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    scaler = distributed.grad_scaler(precision, device)
    criterion = nn.L1Loss() if cfg.loss == "mae" else nn.MSELoss()
    T_in, C, H, W = in_shape
    x = torch.randn(batch, T_in, C, H, W, device=device)
    y = torch.randn(batch, t_out, C, H, W, device=device)
    ranks = distributed.Ranks()

    def run(n):
        _train_epoch(model, forward, [(x, y)] * n, opt, scaler, None, criterion, device, n, precision,
                     ranks, desc="bench")
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run(warmup)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    run(steps)
    dt = time.perf_counter() - t0
    out = {"ms_per_step": 1000 * dt / steps, "windows_per_s": steps * batch / dt}
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out
