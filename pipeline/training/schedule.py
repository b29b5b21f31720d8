"""Per-epoch cosine learning rate with linear warmup: the rule of timm's ``CosineLRScheduler``
as OpenSTL configures it (one cycle, no noise, warmup not prefixed), without importing timm,
whose import chain (torchvision, torch._dynamo) costs a training stage seconds of start-up.
"""
from __future__ import annotations

import math
from typing import Any

import torch


class CosineWarmup:
    """``step(epoch)`` sets the learning rate of epoch ``epoch`` (0-based, before it runs):
    ``warmup_lr + epoch * (lr - warmup_lr) / warmup_epochs`` while ``epoch < warmup_epochs``,
    then ``min_lr + (lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2``, ``min_lr`` after ``epochs``."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int, min_lr: float = 0.0,
                 warmup_epochs: int = 0, warmup_lr: float = 0.0):
        if epochs < 1 or min_lr < 0:
            raise ValueError(f"CosineWarmup: epochs must be >= 1 and min_lr >= 0, got {epochs}, {min_lr}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.epochs, self.min_lr = epochs, min_lr
        self.warmup_epochs, self.warmup_lr = warmup_epochs, warmup_lr
        if warmup_epochs:
            self._set([warmup_lr] * len(self.base_lrs))

    def lrs(self, epoch: int) -> list[float]:
        if epoch < self.warmup_epochs:
            return [self.warmup_lr + epoch * (lr - self.warmup_lr) / self.warmup_epochs for lr in self.base_lrs]
        if epoch >= self.epochs:
            return [self.min_lr for _ in self.base_lrs]
        cos = 1 + math.cos(math.pi * epoch / self.epochs)
        return [self.min_lr + 0.5 * (lr - self.min_lr) * cos for lr in self.base_lrs]

    def step(self, epoch: int) -> None:
        self._set(self.lrs(epoch))

    def _set(self, values: list[float]) -> None:
        for group, value in zip(self.optimizer.param_groups, values):
            group["lr"] = value

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
