"""Training and evaluation of one experiment: Adam, cosine/onecycle schedule, early stopping on
the validation split, best checkpoint restored before the test, everything logged to MLflow.
"""
from __future__ import annotations

import importlib.metadata
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from pipeline.config.run_config import RunConfig
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.noise import NoisyInputs
from pipeline.data.store import data_card, display_info, read_meta
from pipeline.data.windows import WindowDataset, loader_options
from pipeline.metrics.cost import (count_parameters, flops_per_sample, flops_per_sample_literal, inference_fps,
                                   openstl_fps_batch)
from pipeline.metrics.lead_scores import LeadEvaluation, mlflow_series
from pipeline.metrics.openstl import evaluation_accumulator
from pipeline.models.codebook import codebook_from_state_dict
from pipeline.models.simvp import SimVP
from pipeline.models.target import fit_linear
from pipeline.tracking import mlflow_runs
from pipeline.training import checkpoint, distributed, record_files, reference_comparison
from pipeline.training.distributed import pick_device  # noqa: F401  (the public name, here since the start)


@dataclass
class SeedResult:
    seed: int
    run_id: str
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    leads: dict[str, list[float]] = field(default_factory=dict)  # per-lead scores (weather), for the record
    # metric -> float32 (test windows, T_out): each window's and lead's test error, the record's windows.npz
    windows: dict[str, np.ndarray] = field(default_factory=dict)


def build_model(cfg: RunConfig, in_shape) -> SimVP:
    return SimVP(in_shape, cfg.model, cfg.quantizer)


# On CPU, oneDNN's convolutions run faster on channels-last (NHWC) weights than on NCHW ones (one
# thread, sample profile: 10-41% less training CPU a stage, bench/stage_overhead.py). Activations
# follow the weights' layout; only the summation order changes, so trained metrics move as a
# change of thread count moves them (KTH SimVP test MSE up to 8e-3 relative at batch 2, t2m
# SimVP 2e-7), far inside the seed spread. The bench switches it off for its "before" run.
CHANNELS_LAST_ON_CPU = True


def cpu_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with its 4-d weights in channels-last layout when it trains on the CPU."""
    if device.type == "cpu" and CHANNELS_LAST_ON_CPU:
        return model.to(memory_format=torch.channels_last)
    return model


def make_scheduler(opt, cfg: RunConfig, steps_per_epoch: int):
    """(scheduler, per_step): timm's per-epoch cosine with warmup (as OpenSTL; our copy of its
    rule), or torch's OneCycle."""
    t = cfg.train
    if t.sched == "cosine":
        from pipeline.training.schedule import CosineWarmup

        return CosineWarmup(opt, t.epochs, min_lr=t.min_lr, warmup_epochs=t.warmup_epochs,
                            warmup_lr=t.warmup_lr), False
    if t.sched == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=t.epochs * steps_per_epoch,
                                                    final_div_factor=t.final_div_factor)
        return sched, True
    return None, False


def run_experiment(cfg: RunConfig, store: Path, out_dir: Path) -> dict[str, Any]:
    """Train ``cfg`` once per seed; write the run record (``pipeline.training.record_files``) into ``out_dir``."""
    main = distributed.is_main_process()  # under torchrun, rank 0 alone writes
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    t0 = time.perf_counter()
    try:
        results = [_seed_result(cfg, store, seed, out_dir) for seed in cfg.seeds]
    finally:
        distributed.teardown()
    result = record_files.summary(
        experiment=cfg.name, dataset=cfg.dataset, profile=cfg.profile, tables=list(cfg.tables),
        params=cfg.flat_params(),
        seeds=[{"seed": r.seed, "run_id": r.run_id, "metrics": r.metrics, "leads": r.leads} for r in results],
        software=software_versions())
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)  # for progress estimates
    lead_mse = reference_comparison.seed_mean_lead_mse([r.windows for r in results]) if main else None
    if lead_mse is not None:  # the seed mean against each reference, whole split and per lead
        result["references"] = reference_comparison.compare(lead_mse, reference_comparison.reference_errors(store))
    if main:
        history = [{"seed": r.seed, **h} for r in results for h in r.history]
        record_files.write(out_dir, result, history, record_files.read_figure_data(out_dir, results[0].seed),
                           {r.seed: r.windows for r in results})
        checkpoint.clear(out_dir)  # complete: a rerun trains afresh, it never resumes this run
    return result


def _seed_result(cfg: RunConfig, store: Path, seed: int, out_dir: Path) -> SeedResult:
    """A seed finished before a kill is not trained again."""
    done = checkpoint.finished_seed(out_dir, cfg, seed, store)
    return SeedResult(**done) if done else fit_one(cfg, store, seed, out_dir)


@dataclass
class _Setup:
    """One seed's data, model, optimiser and resume state: what :func:`_set_up` builds for the phases after it."""

    ranks: distributed.Ranks
    device: torch.device
    train_ds: WindowDataset
    val_ds: WindowDataset
    test_ds: WindowDataset
    fit_ds: Dataset  # train_ds, or it with input noise (train.noise)
    gen: torch.Generator
    sampler: DistributedSampler
    train_dl: DataLoader
    val_dl: DataLoader
    test_dl: DataLoader
    in_shape: tuple[int, ...]
    model: SimVP
    forward: Callable
    scaler: torch.amp.GradScaler
    steps: int
    opt: torch.optim.Optimizer
    sched: Any
    per_step: bool
    criterion: nn.Module
    resume: checkpoint.Checkpoint
    progress: checkpoint.Progress

    @property
    def T_out(self) -> int:
        return self.train_ds.T_out


def fit_one(cfg: RunConfig, store: Path, seed: int, out_dir: Path) -> SeedResult:
    """One seed in its MLflow run; under torchrun every rank trains and tests its shard, rank 0 alone records."""
    s = _set_up(cfg, store, seed, out_dir)
    tags, params = _run_tags_and_params(cfg, store, seed, s)
    with mlflow_runs.start_run(mlflow_runs.run_name(cfg.name, seed), profile=cfg.profile, tags=tags, params=params,
                               run_id=s.progress.run_id, offline_dir=cfg.train.offline_store()) as run:
        s.progress.run_id = run.info.run_id
        _train_with_early_stopping(cfg, seed, s)
        if s.progress.best_state is None or not math.isfinite(s.progress.best):
            # every validation NaN (``val_loss < best`` never held): there is no best state to test
            if s.ranks.is_main:
                s.resume.path.unlink(missing_ok=True)
            last = s.progress.history[-1]["val_loss"] if s.progress.history else s.progress.best
            raise DataError(f"{cfg.name} seed {seed}: no finite val_loss in {len(s.progress.history)} epochs "
                            f"(last: {last}), expected a finite number: the model diverged or the val split of "
                            f"{store} is not finite")
        metrics, windows, sample, lead = _test_best_model(cfg, store, s)
        if not s.ranks.is_main:
            return SeedResult(seed, "", metrics, s.progress.history)
        try:
            record_files.require_finite(f"{cfg.name} seed {seed}", {f"test_{k}": metrics.get(k) for k in cfg.metrics})
        except DataError:
            s.resume.path.unlink(missing_ok=True)  # a rerun trains afresh rather than re-testing the same state
            raise
        metrics, leads = _record_seed(cfg, store, seed, out_dir, s, metrics, sample, lead)
        _log_reference_comparison(store, windows)
    result = SeedResult(seed, run.info.run_id, metrics, s.progress.history, leads, windows)
    done = asdict(result)
    s.resume.finish(done, done.pop("windows"))
    return result


def _set_up(cfg: RunConfig, store: Path, seed: int, out_dir: Path) -> _Setup:
    """Everything a seed trains with, built in one fixed order from its seed (the global generators, the loader's,
    then the model's initial weights) and restored from its resume checkpoint where a killed run left one: a
    resumed run draws what an uninterrupted one would have."""
    _seed_everything(seed)
    t = cfg.train
    ranks, device = distributed.setup(t.device)
    train_ds = WindowDataset(store, "train")
    if t.split_scaling != "train" and train_ds.scaling != "zscore":
        raise ConfigError(f"{cfg.key_of('train.split_scaling')}: {t.split_scaling!r} needs z-scored data; "
                          f"{store} has {train_ds.scaling!r} scaling (expected 'train' here)")
    val_ds, test_ds = (WindowDataset(store, split, split_scaling=t.split_scaling) for split in ("val", "test"))
    if t.batch_size > len(train_ds):
        raise ConfigError(f"{cfg.key_of('train.batch_size')}: {t.batch_size} is larger than the "
                          f"{len(train_ds)} training windows of {store}")
    fit_ds = NoisyInputs(train_ds, t.noise, seed) if t.noise > 0 else train_ds
    gen = torch.Generator().manual_seed(seed)  # the loader's base seed for worker RNGs (checkpointed)
    # one sampler for 1..N ranks: the k-th global batch holds the same windows whatever N is
    sampler = distributed.train_sampler(fit_ds, ranks, seed)
    batch = distributed.per_rank_batch(t.batch_size, ranks)
    load = loader_options(t.num_workers, device)
    train_dl = DataLoader(fit_ds, batch_size=batch, sampler=sampler, drop_last=len(sampler) > batch,
                          generator=gen, **load)
    # evaluation: unpadded contiguous shards, capped at max_eval_batches global batches
    limit = None if t.max_eval_batches is None else t.max_eval_batches * t.val_batch_size
    val_dl, test_dl = (DataLoader(Subset(ds, distributed.eval_indices(len(ds), ranks, limit)),
                                  batch_size=t.val_batch_size, **load) for ds in (val_ds, test_ds))

    in_shape = (train_ds.T_in, len(train_ds.channels), *train_ds.frame_shape[1:])
    model = cpu_layout(build_model(cfg, in_shape).to(device), device)
    if model.linear is not None:  # before resume: a resumed run then loads its trained weights over the fit
        _fit_linear_forecast(model, train_ds)
    forward = distributed.wrap(model, ranks, device, train_ds.T_out, t.sync_batchnorm)
    scaler = distributed.grad_scaler(t.precision, device)
    steps = len(train_dl) if t.max_steps_per_epoch is None else min(len(train_dl), t.max_steps_per_epoch)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=t.lr,
                           weight_decay=t.weight_decay)
    sched, per_step = make_scheduler(opt, cfg, steps)
    criterion = nn.L1Loss() if cfg.loss == "mae" else nn.MSELoss()

    resume = checkpoint.Checkpoint.for_seed(out_dir, cfg, seed, store)
    progress = resume.load(model, opt, sched, gen, fit_ds) or checkpoint.Progress()
    return _Setup(ranks, device, train_ds, val_ds, test_ds, fit_ds, gen, sampler, train_dl, val_dl, test_dl,
                  in_shape, model, forward, scaler, steps, opt, sched, per_step, criterion, resume, progress)


LINEAR_FIT_WINDOWS = 4096  # evenly spaced training windows the linear forecast is fitted on (deterministic)


def _fit_linear_forecast(model: SimVP, train_ds: WindowDataset) -> None:
    """``model.target: linear``: the least-squares weights of the inputs' linear forecast, from the
    (noise-free) training windows; draws no random numbers, so seeds and resumes are unaffected."""
    idx = np.unique(np.linspace(0, len(train_ds) - 1, min(len(train_ds), LINEAR_FIT_WINDOWS)).round().astype(int))

    def batches():
        for lo in range(0, len(idx), 64):
            xs, ys = zip(*(train_ds[int(i)] for i in idx[lo:lo + 64]))
            yield torch.stack(xs), torch.stack(ys)
    fit_linear(model.linear, batches())


def _run_tags_and_params(cfg: RunConfig, store: Path, seed: int, s: _Setup) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MLflow run's tags (what runs are found by) and params (what it trained with and on)."""
    tags = {"experiment": cfg.name, "dataset": cfg.dataset, "profile": cfg.profile, "seed": seed,
            "tables": ",".join(str(x) for x in cfg.tables), "quantizer": cfg.model.quantizer,
            "translator": cfg.model.translator, "device": device_name(s.device)}
    params = cfg.flat_params() | {"seed": seed, "data.store": str(store),
                                   "data.windows_train": len(s.train_ds), "data.windows_val": len(s.val_ds),
                                   "data.windows_test": len(s.test_ds),
                                   # grids the encoder's stride does not divide: padded in, cropped out
                                   "model.grid_padding": s.model.grid_pad.describe() or "none"}
    return tags, params


def _train_with_early_stopping(cfg: RunConfig, seed: int, s: _Setup) -> None:
    """The epochs left in ``s.progress``: validated every train.val_every epochs and after the last, stopped once
    train.patience epochs pass without a better validation loss. ``s.progress`` keeps the best state, and a resume
    checkpoint is written after each epoch, so a killed run goes on from its last finished epoch."""
    t, progress = cfg.train, s.progress
    if cfg.model.target != "frames" and progress.epochs_done == 0 and not progress.stopped:
        # the untrained model is already a forecast (the last input, the fitted linear one): it is the
        # state to beat, so training that only makes validation worse keeps it
        val = _validate(s.model, s.val_dl, s.criterion, s.device, s.T_out, t.precision, s.ranks)
        mlflow_runs.log_metrics(val, step=0)
        progress.best = val["val_loss"] if math.isfinite(val["val_loss"]) else math.inf  # NaN < x never holds
        progress.best_state = {k: v.detach().cpu().clone() for k, v in s.model.state_dict().items()}
    for epoch in range(progress.epochs_done, 0 if progress.stopped else t.epochs):
        t0 = time.perf_counter()
        s.sampler.set_epoch(epoch)
        train_loss = _train_epoch(s.model, s.forward, s.train_dl, s.opt, s.scaler, s.sched if s.per_step else None,
                                  s.criterion, s.device, s.steps, t.precision, s.ranks,
                                  desc=f"{cfg.name} s{seed} ep{epoch + 1}/{t.epochs}")
        progress.epoch_times.append(time.perf_counter() - t0)
        lr = s.opt.param_groups[0]["lr"]
        if s.sched is not None and not s.per_step:
            s.sched.step(epoch + 1)
        validate = (epoch + 1) % t.val_every == 0 or epoch + 1 == t.epochs
        val = _validate(s.model, s.val_dl, s.criterion, s.device, s.T_out, t.precision, s.ranks) if validate else {}
        val_loss = val.get("val_loss", math.nan)
        since = epoch + 1 - max((r["epoch"] for r in progress.history if not math.isnan(r["val_loss"])), default=0)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
               "epoch_time_s": progress.epoch_times[-1]}
        progress.history.append(row)
        # val_mse and val_mae beside the objective (MSE for SimVP, MAE for SVQ): compare charts line up
        mlflow_runs.log_metrics({k: v for k, v in (row | val).items() if k != "epoch" and not math.isnan(v)},
                                step=epoch + 1)
        if s.ranks.is_main and not _on_terminal():  # a log file gets a line per epoch, not redrawn bars
            shown = "".join(f", {k} {v:.4g}" for k, v in val.items())
            print(f"{cfg.name} seed {seed} epoch {epoch + 1}/{t.epochs}: train_loss {train_loss:.4g}{shown}, "
                  f"{progress.epoch_times[-1]:.1f}s", flush=True)
        if validate and val_loss < progress.best:
            progress.best, progress.bad_epochs = val_loss, 0
            progress.best_state = {k: v.detach().cpu().clone() for k, v in s.model.state_dict().items()}
        elif validate:
            progress.bad_epochs += since  # patience counts epochs, validated or not
        progress.stopped = progress.bad_epochs >= t.patience
        if s.ranks.is_main:
            s.resume.save(progress, s.model, s.opt, s.sched, s.gen, s.fit_ds)
        if progress.stopped:
            break


def _test_best_model(cfg: RunConfig, store: Path,
                     s: _Setup) -> tuple[dict[str, float], dict[str, np.ndarray], tuple, LeadEvaluation | None]:
    """The best validated state's test metrics and per-window errors (``{}`` on ranks other than 0), the sample batch
    that the record's figures and diagnostics use, and the per-lead scores (weather data) to record."""
    s.model.load_state_dict(s.progress.best_state)
    lead = _lead_evaluation(store, s.test_ds)
    metrics, windows, sample = _evaluate(s.model, s.test_ds, s.test_dl, cfg, s.device, s.T_out, cfg.train.precision,
                                         s.ranks, lead)
    return metrics, windows, sample, lead


def _record_seed(cfg: RunConfig, store: Path, seed: int, out_dir: Path, s: _Setup, metrics: dict[str, float],
                 sample: tuple, lead: LeadEvaluation | None) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Rank 0, in the seed's MLflow run: the best model, the metrics, figures and their data into ``out_dir`` and
    MLflow. Returns the seed's metrics and per-lead scores for the run record."""
    ckpt = out_dir / f"best-seed{seed}.pt"
    torch.save({"state_dict": s.progress.best_state, "config": cfg.to_dict(), "in_shape": s.in_shape, "T_out": s.T_out,
                "best_val_loss": s.progress.best, "epoch": len(s.progress.history),
                "data": data_card(store, cfg.dataset)}, ckpt)  # what pipeline.forecast needs
    metrics = _log_seed_metrics(cfg, s, metrics, sample)

    config_path = out_dir / f"config-seed{seed}.yaml"
    config_path.write_text(yaml.safe_dump(cfg.to_dict() | {"seed": seed}, sort_keys=False))
    forecast = out_dir / f"forecast-seed{seed}"
    figure_data = _forecast_figure(cfg, store, s.test_ds, sample, forecast)
    for path in (config_path, ckpt, forecast.with_suffix(".png"), forecast.with_suffix(".npz")):
        mlflow_runs.log_artifact(path)
    leads = {}
    if lead is not None:
        leads = _log_lead_scores(lead.result(), out_dir / f"lead_scores-seed{seed}.json")
    figure_data |= _quantizer_figure_data(cfg, s, sample, out_dir / f"svq-weights-seed{seed}.npz")
    _log_mlflow_model_and_inputs(ckpt, sample, store, cfg.dataset,
                                 {"train": len(s.train_ds), "val": len(s.val_ds), "test": len(s.test_ds)},
                                 f"{cfg.name}-seed{seed}")
    record_files.write_figure_data(out_dir, seed, figure_data)  # per seed: survives a resumed run
    return metrics, leads


def _log_seed_metrics(cfg: RunConfig, s: _Setup, metrics: dict[str, float], sample: tuple) -> dict[str, float]:
    """The test metrics with the training's summary, the cost and the quantizer's diagnostics, logged; the metrics
    of ``cfg.metrics`` are named ``test_<name>``, as the tables read them."""
    metrics["best_val_loss"] = s.progress.best
    metrics["epochs_run"] = len(s.progress.history)
    metrics["epoch_time_mean_s"] = float(np.mean(s.progress.epoch_times))  # not epoch_time_s: that is per epoch
    metrics |= _cost(s.model, sample[0][:1].to(s.device), cfg.train.fps_batch)
    metrics |= {f"q_{k}": v for k, v in _diagnostics(s.model, sample[0].to(s.device)).items()}
    mlflow_runs.log_metrics({f"test_{k}" if k in cfg.metrics else k: v for k, v in metrics.items()
                             if v is not None and not (isinstance(v, float) and math.isnan(v))})
    return {f"test_{k}" if k in cfg.metrics else k: v for k, v in metrics.items()}


def _log_reference_comparison(store: Path, windows: dict[str, np.ndarray]) -> None:
    """The seed's MLflow run says where it stands: metrics ``skill_mse_<reference>``, tags
    ``beats_<reference>`` (yes/no) and ``leads_lost_<reference>`` (the leads where it does not beat it)."""
    lead_mse = reference_comparison.seed_mean_lead_mse([windows])
    if lead_mse is None:
        return
    comparison = reference_comparison.compare(lead_mse, reference_comparison.reference_errors(store))
    mlflow_runs.log_metrics({f"skill_mse_{r}": c["skill_mse"] for r, c in comparison.items()
                             if c["skill_mse"] is not None})
    mlflow_runs.set_tags({f"beats_{r}": "yes" if (c["skill_mse"] or 0) > 0 else "no" for r, c in comparison.items()}
                         | {f"leads_lost_{r}": ",".join(map(str, c["leads_lost"])) or "none"
                            for r, c in comparison.items()})


def _forecast_figure(cfg: RunConfig, store: Path, test_ds: WindowDataset, sample: tuple,
                     stem: Path) -> dict[str, np.ndarray]:
    """The first test window's forecast drawn (``<stem>.png``) and saved (``<stem>.npz``) in metric space; returns
    its arrays for the run record's figures."""
    x, y, pred = (test_ds.to_metric_space(a) for a in (sample[0][0].numpy(), sample[1][0].numpy(), sample[2][0]))
    from pipeline.training.forecast_plots import forecast_figure  # matplotlib only once a run has finished

    shown = display_info(read_meta(store))  # units for the colour bar, latitudes for north up
    forecast_figure(x, y, pred, stem.with_suffix(".png"), title=f"{cfg.name} ({cfg.dataset_title})",
                    channels=test_ds.channels, units=shown["units"], lat=shown["lat"])
    extra = {"lat": np.asarray(shown["lat"])} if shown["lat"] else {}
    np.savez_compressed(stem.with_suffix(".npz"), inputs=x, truth=y, prediction=pred,
                        channels=np.asarray(test_ds.channels), units=np.asarray(shown["units"]), **extra)
    return {"forecast_inputs": x, "forecast_truth": y, "forecast_prediction": pred,
            "forecast_channels": np.asarray(test_ds.channels), "forecast_units": np.asarray(shown["units"]),
            **{f"forecast_{k}": v for k, v in extra.items()}}


def _quantizer_figure_data(cfg: RunConfig, s: _Setup, sample: tuple, weights_path: Path) -> dict[str, np.ndarray]:
    """SVQ's regression weights of a latent sample (saved to ``weights_path`` and logged) and the learned codebook,
    row-sampled to the run record's size; empty for a model with neither."""
    data = {}
    if cfg.model.quantizer == "svq":
        _save_svq_sample(s.model, sample[0].to(s.device), weights_path)
        mlflow_runs.log_artifact(weights_path)
        with np.load(weights_path) as w:
            data["svq_weights"] = record_files.sample_rows(w["weights"], record_files.MAX_WEIGHTS)
    codebook = codebook_from_state_dict(s.progress.best_state)
    if codebook is not None:
        data["codebook"] = record_files.sample_rows(codebook, record_files.MAX_CODES)
    return data


def _log_mlflow_model_and_inputs(ckpt: Path, sample, store: Path, dataset: str, windows: dict[str, int],
                                 name: str) -> None:
    """The forecaster as an MLflow model (pyfunc) named ``name`` and the store as the run's dataset inputs."""
    from pipeline.tracking.dataset_inputs import log_store_inputs
    from pipeline.tracking.logged_model import log_forecaster

    log_store_inputs(store, dataset, windows)
    log_forecaster(ckpt, sample[0].numpy(), sample[2], name)


# --------------------------------------------------------------------------------------------
def _train_epoch(model, forward, loader, opt, scaler, step_sched, criterion, device, steps, precision,
                 ranks, desc) -> float:
    """One epoch; ``forward`` is the model's roll-out (DDP-wrapped under torchrun). Returns the
    mean training loss over all ranks' windows."""
    model.train()
    total, n = 0.0, 0
    bar = tqdm(loader, total=steps, desc=desc, leave=False, mininterval=2.0,
               disable=not ranks.is_main or not _on_terminal())
    for i, (x, y) in enumerate(bar):
        if i >= steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with distributed.autocast(precision, device):
            pred, aux = forward(x)
            loss = criterion(pred.float(), y)
        total_loss = loss + aux
        opt.zero_grad(set_to_none=True)
        scaler.scale(total_loss).backward()
        scaler.step(opt)
        scaler.update()
        if step_sched is not None:
            step_sched.step()
        checkpoint.training_step_hook()
        total += loss.item() * len(x)
        n += len(x)
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    bar.close()
    total, n = distributed.sum_across([total, n], ranks)
    return total / max(n, 1)


@torch.no_grad()
def _validate(model, loader, criterion, device, T_out, precision, ranks) -> dict[str, float]:
    """The validation split's loss (the training objective) and its MSE and MAE in the model's
    scaled space, the same names for every run."""
    model.eval()
    total, mse, mae, n = 0.0, 0.0, 0.0, 0
    for x, y in loader:
        with distributed.autocast(precision, device):
            pred, _ = model.forecast(x.to(device, non_blocking=True), T_out)
        pred, y = pred.float(), y.to(device)
        total += criterion(pred, y).item() * len(x)
        mse += nn.functional.mse_loss(pred, y).item() * len(x)
        mae += nn.functional.l1_loss(pred, y).item() * len(x)
        n += len(x)
    total, mse, mae, n = distributed.sum_across([total, mse, mae, n], ranks)
    n = max(n, 1)
    return {"val_loss": total / n, "val_mse": mse / n, "val_mae": mae / n}


def _on_terminal() -> bool:
    """Progress bars only where a person watches: redrawn into a log file they are noise."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@torch.no_grad()
def _evaluate(model, ds, loader, cfg, device, T_out, precision, ranks, lead=None):
    """Test metrics and per-window, per-lead values (``MetricAccumulator.frame_values``) over every rank's
    shard (``loader`` reads a contiguous Subset), gathered on rank 0; the sample batch (figures, diagnostics)
    is rank 0's first."""
    model.eval()
    acc = evaluation_accumulator(cfg.metrics, ds.metric_space, keep_frames=True, channels=ds.channels)
    sample = None
    first = loader.dataset.indices.start
    for x, y in loader:
        with distributed.autocast(precision, device):
            pred, _ = model.forecast(x.to(device, non_blocking=True), T_out)
        pred = pred.float().cpu().numpy()
        acc.update(ds.to_metric_space(pred), ds.to_metric_space(y.numpy()))
        if lead is not None:
            lead.update(x.numpy(), y.numpy(), pred, first)
        first += len(x)
        if sample is None:
            sample = (x, y, pred)
    parts = distributed.gather_objects((acc.partial_sums(), lead and lead.partial_sums()), ranks)
    if not ranks.is_main:
        return {}, {}, sample
    for metric_sums, lead_sums in parts[1:]:  # rank order: the windows stay in the split's order
        acc.add_partial_sums(metric_sums)
        if lead is not None:
            lead.add_partial_sums(lead_sums)
    return acc.compute(), acc.frame_values(), sample


def _lead_evaluation(store: Path, test_ds: WindowDataset) -> LeadEvaluation | None:
    """Per-lead, latitude-weighted scores with reference skill, for physical-unit (weather) data."""
    if test_ds.metric_space != "physical":
        return None
    from pipeline.data.store import read_meta
    from pipeline.training.reference_forecasts import ReferenceForecasts

    lat = (read_meta(store).get("provenance", {}).get("grid") or {}).get("lat")
    key = str(Path(store).resolve())
    if key not in _REFERENCES:  # one per store and process: later seeds score the same test windows
        _REFERENCES[key] = ReferenceForecasts(store, test_ds)
    return LeadEvaluation(test_ds, _REFERENCES[key], lat, lead_hours=test_ds.lead_hours())


_REFERENCES: dict = {}  # store -> ReferenceForecasts (read-only once built: means and hours of the store)


def _log_lead_scores(result: dict, path: Path) -> dict[str, list[float]]:
    series = mlflow_series(result)
    mlflow_runs.log_series(series, first_step=1)  # the lead as the step
    record_files.write_json(path, result)
    mlflow_runs.log_artifact(path)
    out = {k: [float(v) for v in vals] for k, vals in series.items()}
    if result.get("lead_hours"):  # the x axis of the report's per-lead figure
        out["lead_hours"] = [float(h) for h in result["lead_hours"]]
    return out


def _cost(model, example, fps_batch: int | None = None) -> dict[str, float]:
    """Parameters; forward FLOPs per sample as executed and with SVQ's W @ M counted as the paper's
    code builds it (Tables 12/13 show both); FPS timed as OpenSTL does, on its batch size unless
    ``fps_batch`` (train.fps_batch) says otherwise: at OpenSTL's 100 the timing costs the sample
    profile as much as scoring the whole test split."""
    params = count_parameters(model)
    q_params = count_parameters(model.quantizer)["total"]
    fps_batch = fps_batch or openstl_fps_batch(tuple(example.shape[-2:]))
    batch = example[:1].expand(fps_batch, *example.shape[1:]).contiguous()
    return {"params_total": params["total"], "params_trainable": params["trainable"],
            "params_quantizer": q_params, "flops_per_sample": flops_per_sample(model, example),
            "flops_per_sample_literal": flops_per_sample_literal(model, example),
            "fps_inference": inference_fps(model, batch, repeats=3, warmup=1), "fps_batch": fps_batch}


def software_versions() -> dict[str, str | None]:
    """What trained the run, for its record: torch, the quantizer library (None where not installed), Python."""
    try:
        vq = importlib.metadata.version("vector-quantize-pytorch")
    except importlib.metadata.PackageNotFoundError:
        vq = None
    return {"torch": str(torch.__version__), "vector_quantize_pytorch": vq, "python": platform.python_version()}


def device_name(device: torch.device) -> str:
    """What FPS and epoch times were measured on (an MLflow tag of every run)."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


# Quantizer diagnostics need the tokens x N weights W: at the paper's size a whole test batch is
# ~10^8 entries and ~250 GFLOP to build, so they look at evenly spread latent maps up to this many tokens.
DIAGNOSTIC_TOKENS = 2048


@torch.no_grad()
def _latent_sample(model, x, max_tokens: int = DIAGNOSTIC_TOKENS) -> torch.Tensor:
    model.eval()
    z = model.latent(x)
    per_map = z.shape[-2] * z.shape[-1]
    n = max(1, min(len(z), max_tokens // per_map))
    return z[torch.linspace(0, len(z) - 1, n).round().long()]


@torch.no_grad()
def _diagnostics(model, x) -> dict[str, float]:
    return model.quantizer.diagnostics(_latent_sample(model, x))


@torch.no_grad()
def _save_svq_sample(model, x, path: Path) -> None:
    """Regression weights of a latent sample and the codebook, for the paper's Figure 5."""
    svq = model.quantizer.svq if hasattr(model.quantizer, "svq") else model.quantizer
    w = svq.regression_weights(_latent_sample(model, x)).flatten()
    if w.numel() > 500_000:  # an evenly strided subsample keeps the histogram, not the file size
        w = w[:: w.numel() // 500_000]
    np.savez_compressed(path, weights=w.cpu().numpy(), codebook=svq.codebook.detach().cpu().numpy())


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
