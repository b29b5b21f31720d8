"""IncepU: SimVP v1's translator (OpenSTL's MidIncepNet of gInception_ST blocks).

A U-Net over depth: N_T encoder blocks, N_T decoder blocks, each decoder block after the first
also takes the matching encoder output (concatenated). Every block is a 1x1 conv to hid_T/2
followed by the sum of four grouped convs (kernels 3/5/7/11, 8 groups), each with GroupNorm and
LeakyReLU(0.2). OpenSTL gives IncepU no drop path, dropout or MLP ratio; those settings are
accepted and ignored. Weights keep PyTorch's default init, as in OpenSTL.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.core.errors import ConfigError

from . import TRANSLATORS
from .base import check_input

KERNELS = (3, 5, 7, 11)
GROUPS = 8


def _group_conv(c_in: int, c_out: int, kernel: int, groups: int) -> nn.Sequential:
    # OpenSTL drops to a plain conv when the input width does not split into the groups.
    g = groups if c_in % groups == 0 else 1
    if c_out % g:
        raise ConfigError(
            f"translator 'incepu': a grouped conv ({g} groups) must output a multiple of {g} "
            f"channels, got {c_out}; make in_channels (T*hid_S) and hidden (hid_T) multiples of {g}")
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=g),
                         nn.GroupNorm(g, c_out), nn.LeakyReLU(0.2))


class GInceptionST(nn.Module):
    def __init__(self, c_in: int, c_hid: int, c_out: int,
                 kernels: tuple[int, ...] = KERNELS, groups: int = GROUPS):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_hid, 1)
        self.branches = nn.ModuleList(_group_conv(c_hid, c_out, k, groups) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return sum(branch(x) for branch in self.branches)


class MidIncepNet(nn.Module):
    def __init__(self, in_channels: int, hidden: int, depth: int):
        super().__init__()
        if hidden < 2:
            raise ConfigError(f"translator 'incepu': hidden must be >= 2 (blocks use hidden//2), got {hidden}")
        self.in_channels = in_channels
        half = hidden // 2
        self.enc = nn.ModuleList(
            [GInceptionST(in_channels, half, hidden)]
            + [GInceptionST(hidden, half, hidden) for _ in range(depth - 1)])
        self.dec = nn.ModuleList(
            [GInceptionST(hidden, half, hidden)]
            + [GInceptionST(2 * hidden, half, hidden) for _ in range(depth - 2)]
            + [GInceptionST(2 * hidden, half, in_channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "incepu", self.in_channels, None)
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < len(self.enc) - 1:
                skips.append(x)
        x = self.dec[0](x)
        for block, skip in zip(self.dec[1:], reversed(skips)):
            x = block(torch.cat([x, skip], dim=1))
        return x


@TRANSLATORS.register("incepu")
def build_incepu(*, in_channels: int, hidden: int, depth: int, input_resolution: tuple[int, int],
                 drop_path: float = 0.0, mlp_ratio: float = 8.0, drop: float = 0.0) -> MidIncepNet:
    """IncepU translator; input_resolution, drop_path, mlp_ratio and drop do not apply."""
    return MidIncepNet(in_channels, hidden, depth)
