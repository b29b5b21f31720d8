"""Frames of any size for a model whose encoder halves the grid ``k`` times.

SimVP's encoder needs H and W divisible by ``2^(N_S/2)``; climate grids (37 x 49...) rarely are.
The frames are padded (``reflect``: mirrored without repeating the edge, or ``edge``: the edge
value repeated) to the next multiple, split as evenly as possible between the two sides, and the
model's output is cropped back, so losses, metrics and written forecasts see only real cells.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = {"reflect": "reflect", "edge": "replicate"}


class GridPad:
    def __init__(self, height: int, width: int, multiple: int, mode: str = "reflect"):
        if mode not in MODES:
            raise ValueError(f"model.pad: expected one of {sorted(MODES)}, got {mode!r}")
        self.mode = mode
        ph, pw = -height % multiple, -width % multiple
        # F.pad order: (left, right, top, bottom)
        self.pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        self.shape = (height, width)
        self.padded = (height + ph, width + pw)
        if mode == "reflect" and (ph >= height or pw >= width):
            raise ValueError(f"model.pad: a {height} x {width} grid is too small to reflect into "
                             f"{self.padded[0]} x {self.padded[1]}; use pad: edge")

    @property
    def active(self) -> bool:
        return any(self.pads)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H', W')."""
        return F.pad(x, self.pads, mode=MODES[self.mode]) if self.active else x

    def crop(self, y: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return y
        left, _, top, _ = self.pads
        return y[..., top:top + self.shape[0], left:left + self.shape[1]]

    def describe(self) -> str:
        """``37x49 -> 40x56 (reflect)``, or empty when no padding is needed."""
        if not self.active:
            return ""
        return f"{self.shape[0]}x{self.shape[1]} -> {self.padded[0]}x{self.padded[1]} ({self.mode})"
