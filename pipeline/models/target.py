"""What SimVP's decoder predicts (``model.target``): the frames themselves, or a correction to a
simple forecast built from the input frames.

* ``frames``: the decoder's output is the forecast (the paper, OpenSTL).
* ``residual``: the forecast is the last input frame plus the decoder's output, the change.
* ``linear``: the forecast is a linear combination of the input frames, per predicted frame and
  channel, plus the decoder's output. The weights sum to one (a field shifted by a constant gets a
  forecast shifted by it, as persistence and the input mean do), are fitted by least squares on
  the training windows before training (:func:`fit_linear`) and then trained with the network.
  Persistence and the input mean are two members of this family, so the model starts from the
  best of them and more, on the training split.

With ``residual`` and ``linear`` the decoder's read-out starts at zero: before any training the
model is exactly that simple forecast, and training can only move it where the data say.
``auto`` (params.yaml) is resolved per dataset by :func:`resolve`.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

TARGETS = ("frames", "residual", "linear")
RIDGE = 1e-6  # relative to the normal matrix's trace: keeps collinear inputs (a constant field) solvable


def resolve(target: str, source: str) -> str:
    """``auto`` -> ``linear`` for a user's own data (source ``custom``: real fields, where a large fixed
    spatial pattern carries small changes), ``frames`` (the paper's choice) for the paper's datasets."""
    if target != "auto":
        return target
    return "linear" if source == "custom" else "frames"


class LinearSkip(nn.Module):
    """``T`` forecast frames, each a weighted sum of the ``T`` input frames (per channel) whose
    weights sum to one: the last input frame plus weighted differences of the others from it."""

    def __init__(self, T: int, C: int):
        super().__init__()
        # (predicted frame, earlier input frame, channel); zeros: persistence until fitted
        self.weight = nn.Parameter(torch.zeros(T, max(T - 1, 0), C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, -1:]                                   # (B, 1, C, H, W)
        if self.weight.shape[1] == 0:
            return last.expand(-1, self.weight.shape[0], -1, -1, -1)
        diffs = x[:, :-1] - last                           # (B, T-1, C, H, W)
        return last + torch.einsum("lsc,bschw->blchw", self.weight, diffs)


def fit_linear(skip: LinearSkip, windows: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
    """Least-squares weights of ``skip`` from training windows ``(x, y)`` (batches of inputs and
    targets in the model's space; targets past the skip's frames are ignored, missing ones keep
    persistence), set in place; returns the weights as fitted."""
    T, S, C = skip.weight.shape
    if S == 0:
        return skip.weight.detach().cpu().numpy()
    normal = np.zeros((T, C, S, S))
    rhs = np.zeros((T, C, S))
    seen = np.zeros(T, dtype=bool)
    for x, y in windows:
        x = x.detach().double().cpu().numpy()
        y = y.detach().double().cpu().numpy()
        d = x[:, :-1] - x[:, -1:]                           # (B, S, C, H, W)
        dd = np.einsum("bschw,btchw->cst", d, d)
        for lead in range(min(T, y.shape[1])):
            r = y[:, lead] - x[:, -1]                       # (B, C, H, W)
            normal[lead] += dd
            rhs[lead] += np.einsum("bschw,bchw->cs", d, r)
            seen[lead] = True
    weight = np.zeros((T, S, C))
    for lead in np.flatnonzero(seen):
        for c in range(C):
            a = normal[lead, c]
            a = a + RIDGE * max(np.trace(a), 1e-12) / S * np.eye(S)
            weight[lead, :, c] = np.linalg.solve(a, rhs[lead, c])
    with torch.no_grad():
        skip.weight.copy_(torch.from_numpy(weight).to(skip.weight))
    return weight


__all__ = ["TARGETS", "LinearSkip", "fit_linear", "resolve"]
