"""Cost accounting for the paper's Tables 12 and 13: parameters, FLOPs, inference FPS, epoch time."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.core.errors import ConfigError


def _as_inputs(example_input: Any) -> tuple[torch.Tensor, ...]:
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] >= 1
                             for x in inputs):
        raise ConfigError(
            "example_input: expected a tensor (or a tuple of tensors) with a leading batch "
            f"dimension of at least 1, got {type(example_input).__name__}"
        )
    return inputs


def _sync(inputs: tuple[torch.Tensor, ...]) -> None:
    if any(x.is_cuda for x in inputs):
        torch.cuda.synchronize()


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: ``total`` (frozen ones included, e.g. a frozen codebook) and ``trainable``."""
    params = list(model.parameters())  # shared parameters appear once
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def flops_per_sample(model: torch.nn.Module, example_input: Any) -> int:
    """Forward FLOPs for ONE sample (the first of ``example_input``'s batch), in eval mode.

    Counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as
    2 FLOPs and counts matmul/conv/attention kernels only. The paper (through OpenSTL) uses
    fvcore, which counts a multiply-add as 1 and also adds small terms for norms and upsampling.
    Compare the paper's "FLOPS" column with :func:`macs_per_sample` (= this / 2), not with this.
    Every tensor in ``example_input`` is cut to its first row along dim 0.
    """
    inputs = tuple(x[:1] for x in _as_inputs(example_input))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@contextmanager
def literal_svq(model: torch.nn.Module) -> Iterator[int]:
    """Within the block every SVQ module of ``model`` computes ``W @ M`` literally (the public
    code's product) instead of the associated ``h @ (A2 M)``; yields how many it switched."""
    from pipeline.svq import SVQ

    mods = [m for m in model.modules() if isinstance(m, SVQ)]
    for m in mods:
        m.forward = m.literal_forward  # instance attribute: shadows the class's forward
    try:
        yield len(mods)
    finally:
        for m in mods:
            del m.forward


def flops_per_sample_literal(model: torch.nn.Module, example_input: Any) -> int:
    """:func:`flops_per_sample` with SVQ's product counted as the paper counts it (``W @ M``, the
    tokens x N matrix built): Tables 12/13's FLOPS. Equal to the executed count without SVQ."""
    with literal_svq(model):
        return flops_per_sample(model, example_input)


def openstl_fps_batch(frame_hw: tuple[int, int]) -> int:
    """OpenSTL times inference on batches of 100 samples, 10 for frames of 128 px and more."""
    return 10 if max(frame_hw) >= 128 else 100


def macs_per_sample(model: torch.nn.Module, example_input: Any) -> int:
    """Multiply-accumulates per sample: ``flops_per_sample // 2``, the unit of fvcore and the paper."""
    return flops_per_sample(model, example_input) // 2


def inference_fps(model: torch.nn.Module, example_input: Any, repeats: int = 10,
                  warmup: int = 2) -> float:
    """Samples per second of forward passes on ``example_input`` (its batch size counts).

    Eval mode and no_grad; ``warmup`` untimed passes first; CUDA is synchronised before the clock
    starts and stops when the input lives on a GPU, so queued kernels are timed too.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats: expected an integer >= 1, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup: expected an integer >= 0, got {warmup!r}")
    inputs = _as_inputs(example_input)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(*inputs)
            _sync(inputs)
            start = time.perf_counter()
            for _ in range(repeats):
                model(*inputs)
            _sync(inputs)
            elapsed = time.perf_counter() - start
    finally:
        model.train(was_training)
    return repeats * inputs[0].shape[0] / elapsed


class Timer:
    """Wall-clock timer for a block, e.g. one training epoch (Table 13 reports minutes).

    ``with Timer(cuda_sync=True) as t: ...`` then ``t.seconds`` / ``t.minutes``; read inside the
    block they give the time so far. ``cuda_sync`` waits for queued GPU work at both ends.
    """

    def __init__(self, cuda_sync: bool = False):
        self.cuda_sync = bool(cuda_sync) and torch.cuda.is_available()
        self._start: float | None = None
        self._stop: float | None = None

    def _now(self) -> float:
        if self.cuda_sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def __enter__(self) -> "Timer":
        self._start, self._stop = self._now(), None
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop = self._now()

    @property
    def seconds(self) -> float:
        if self._start is None:
            raise RuntimeError("Timer was never started; use it as `with Timer() as t:`")
        end = self._stop if self._stop is not None else time.perf_counter()
        return end - self._start

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0
