"""Several processes, one training: torchrun + DistributedDataParallel, and mixed precision.

``torchrun --nproc_per_node N stages/train.py <experiment>`` (or ``train.devices: N``, which makes
the stage relaunch itself under torchrun) starts N ranks. Every rank trains on its share of each
global batch (``train.batch_size`` is the global batch, split evenly), gradients are averaged by
DDP, and rank 0 alone logs to MLflow and writes files. Evaluation splits the windows into
contiguous, unpadded shards (``DistributedSampler`` would pad with repeats) and sums the metric
accumulators, so every window counts exactly once.

With one process (no torchrun) everything here reduces to the plain single-device path; the
training sampler is the same ``DistributedSampler`` with one replica, so the k-th global batch
holds the same windows whatever the number of ranks.
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from pipeline.core.errors import ConfigError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def under_launcher() -> bool:
    """True inside a process started by torchrun (it exports these variables)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_process() -> bool:
    """Rank 0, or a plain process: the one allowed to log and write."""
    return int(os.environ.get("RANK", "0")) == 0


def check_device(name: str, key: str = "train.device") -> None:
    """ConfigError naming ``key`` where ``name`` asks for a GPU this machine does not have: said
    before the data load, not as torch's traceback at the first ``.to(device)``."""
    if not name.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"{key}: {name!r} needs a GPU, and torch sees none on this machine; "
                          f"expected auto or cpu")
    index = name.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"{key}: {name!r}, but torch sees {torch.cuda.device_count()} GPU(s); "
                          f"expected cuda:0 to cuda:{torch.cuda.device_count() - 1}, auto or cpu")


def pick_device(name: str) -> torch.device:
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup(device_name: str) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun prepared (NCCL on CUDA, gloo on CPU); pick this rank's device."""
    if not under_launcher() or int(os.environ["WORLD_SIZE"]) == 1:
        return Ranks(), pick_device(device_name)
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        device = torch.device("cuda", ranks.local_rank)  # one GPU per rank, whatever train.device names
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return ranks, device


def teardown() -> None:
    if under_launcher() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def per_rank_batch(global_batch: int, ranks: Ranks) -> int:
    if global_batch % ranks.world:
        raise ConfigError(f"train.batch_size: the global batch {global_batch} must split evenly "
                          f"across {ranks.world} ranks")
    return global_batch // ranks.world


def train_sampler(dataset, ranks: Ranks, seed: int) -> DistributedSampler:
    """Shuffled per epoch (call ``set_epoch``); the tail that does not split evenly is dropped."""
    return DistributedSampler(dataset, num_replicas=ranks.world, rank=ranks.rank, shuffle=True,
                              seed=seed, drop_last=True)


def eval_indices(n: int, ranks: Ranks, limit: int | None = None) -> range:
    """This rank's contiguous share of the first ``limit`` (default all) of ``n`` windows; shards
    are disjoint and cover them exactly once, with no padding."""
    n = n if limit is None else min(n, limit)
    return range(ranks.rank * n // ranks.world, (ranks.rank + 1) * n // ranks.world)


def wrap(model: nn.Module, ranks: Ranks, device: torch.device, t_out: int, sync_batchnorm: bool):
    """A callable ``x -> (prediction, aux)`` for training. Under DDP the whole roll-out is one DDP
    forward, so the autoregressive ``forecast`` (several model calls) still syncs once per step."""
    if not ranks.active:
        return lambda x: model.forecast(x, t_out)
    if sync_batchnorm:
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place: the converted layers stay in model
    ddp = nn.parallel.DistributedDataParallel(_Rollout(model, t_out),
                                              device_ids=[device.index] if device.type == "cuda" else None)
    return ddp


class _Rollout(nn.Module):
    def __init__(self, model: nn.Module, t_out: int):
        super().__init__()
        self.model = model
        self.t_out = t_out

    def forward(self, x):
        return self.model.forecast(x, self.t_out)


def sum_across(values: list[float], ranks: Ranks) -> list[float]:
    """Element-wise sum over ranks (float64 on CPU: fine for a handful of scalars, any backend)."""
    if not ranks.active:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def gather_objects(obj, ranks: Ranks) -> list:
    if not ranks.active:
        return [obj]
    out = [None] * ranks.world
    torch.distributed.all_gather_object(out, obj)
    return out


def barrier(ranks: Ranks) -> None:
    if ranks.active:
        torch.distributed.barrier()


# ------------------------------------------------------------------------------ precision
def autocast(precision: str, device: torch.device):
    """bf16/fp16 autocast on the device (matmuls and convolutions in half precision, reductions
    and the loss in fp32); fp32 runs untouched."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device):
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


# ------------------------------------------------------------------------------ launching
def relaunch_argv(devices: int, script: str, args: list[str]) -> list[str]:
    """The torchrun command that runs ``script args`` on ``devices`` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
            script, *args]


def maybe_relaunch(devices: int, script: str, args: list[str]) -> bool:
    """With ``train.devices > 1`` and not yet under torchrun, run this stage again under torchrun
    and return True (the caller then stops); otherwise return False and train here."""
    if devices <= 1 or under_launcher():
        return False
    subprocess.run(relaunch_argv(devices, script, args), check=True)
    return True
