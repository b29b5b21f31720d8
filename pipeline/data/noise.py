"""Training-input noise injection for the robustness experiment (paper Table 5).

A proportion eta of all input elements, chosen at random without replacement, is multiplied by a
factor drawn from U[-2, 2). Only training inputs are perturbed: wrap the training split in
:class:`NoisyInputs`; targets, validation and test data stay clean.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info

from pipeline.core.errors import ConfigError, DataError


def _check_proportion(proportion: Any) -> float:
    if (isinstance(proportion, bool) or not isinstance(proportion, (int, float))
            or not 0.0 <= proportion < 1.0):
        raise ConfigError(f"noise proportion (eta): expected a number in [0, 1), got {proportion!r}")
    return float(proportion)


def inject_noise(x: torch.Tensor, proportion: float, generator: torch.Generator | None = None,
                 return_mask: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``x`` with exactly ``round(proportion * x.numel())`` elements scaled by U[-2, 2).

    ``return_mask=True`` also returns the boolean mask of the chosen elements. Random draws use
    ``generator`` (on its device) or the global RNG; ``x`` itself is never modified.
    """
    eta = _check_proportion(proportion)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise DataError(f"inject_noise: expected a floating-point tensor, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    out = x.clone(memory_format=torch.contiguous_format)
    flat = out.view(-1)
    k = round(eta * flat.numel())
    device = generator.device if generator is not None else x.device
    idx = torch.randperm(flat.numel(), generator=generator, device=device)[:k]
    factors = torch.rand(k, generator=generator, device=device) * 4.0 - 2.0
    idx = idx.to(x.device)
    flat[idx] = flat[idx] * factors.to(device=x.device, dtype=x.dtype)
    if not return_mask:
        return out
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=x.device)
    mask[idx] = True
    return out, mask.view(x.shape)


class NoisyInputs(Dataset):
    """Wraps a dataset of ``(input, target)``: returns ``(noisy input, clean target)``.

    Noise is fresh on every access. In the main process the draws follow ``seed``; each DataLoader
    worker reseeds from ``seed`` and its worker seed (which torch derives from the main RNG for
    every epoch), so workers never repeat each other's noise.
    """

    def __init__(self, dataset: Dataset, proportion: float, seed: int):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"noise seed: expected an integer, got {seed!r}")
        self.dataset = dataset
        self.proportion = _check_proportion(proportion)
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None] | None = None  # (pid, worker id) the generator is for

    def _rng(self) -> torch.Generator:
        info = get_worker_info()
        owner = (os.getpid(), None if info is None else info.id)
        if self._generator is None or self._owner != owner:
            # a forked worker inherits the parent's generator state: reseed so streams differ
            seed = self.seed if info is None else hash((self.seed, info.seed)) & (2**63 - 1)
            self._generator = torch.Generator().manual_seed(seed)
            self._owner = owner
        return self._generator

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x, y = self.dataset[index]
        return inject_noise(torch.as_tensor(x), self.proportion, generator=self._rng()), y
