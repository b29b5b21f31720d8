"""MogaNet block: multi-order gated aggregation plus a channel-aggregation FFN."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from . import TRANSLATORS
from .base import DropPath, init_openstl, metaformer, require_multiple

DILATIONS = (1, 2, 3)
CHANNEL_SPLIT = (1, 3, 4)


class MultiOrderDWConv(nn.Module):
    """5x5 dw conv on all channels; then, on the 3/8 and 4/8 channel slices, a 5x5 dw conv with
    dilation 2 and a 7x7 dw conv with dilation 3; concatenate with the first 1/8; 1x1 conv."""

    def __init__(self, dim: int):
        super().__init__()
        total = sum(CHANNEL_SPLIT)
        self.d1 = dim * CHANNEL_SPLIT[1] // total
        self.d2 = dim * CHANNEL_SPLIT[2] // total
        self.d0 = dim - self.d1 - self.d2
        d = DILATIONS
        self.dw0 = nn.Conv2d(dim, dim, 5, padding=(1 + 4 * d[0]) // 2, dilation=d[0], groups=dim)
        self.dw1 = nn.Conv2d(self.d1, self.d1, 5, padding=(1 + 4 * d[1]) // 2, dilation=d[1], groups=self.d1)
        self.dw2 = nn.Conv2d(self.d2, self.d2, 7, padding=(1 + 6 * d[2]) // 2, dilation=d[2], groups=self.d2)
        self.pw = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw0(x)
        x0, x1, x2 = torch.split(x, (self.d0, self.d1, self.d2), dim=1)
        return self.pw(torch.cat([x0, self.dw1(x1), self.dw2(x2)], dim=1))


class MultiOrderGatedAggregation(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.sigma = nn.Parameter(torch.full((1, dim, 1, 1), 1e-5))
        self.gate = nn.Conv2d(dim, dim, 1)
        self.value = MultiOrderDWConv(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.proj_1(x)
        # feature decomposition: push each map away from its spatial mean by a learned amount
        x = self.act(x + self.sigma * (x - F.adaptive_avg_pool2d(x, 1)))
        return self.proj_2(self.act(self.gate(x)) * self.act(self.value(x))) + shortcut


class ChannelAggregationFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float, kernel_size: int = 3):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.act = nn.GELU()
        self.decompose = nn.Conv2d(hidden, 1, 1)
        self.sigma = nn.Parameter(torch.full((1, hidden, 1, 1), 1e-5))
        self.decompose_act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        # channel aggregation: reweigh channels against a learned one-channel summary
        x = x + self.sigma * (x - self.decompose_act(self.decompose(x)))
        return self.drop(self.fc2(x))


class MogaBlock(nn.Module):
    """x = x + DropPath(ls1 * MOGA(BN(x)));  x = x + DropPath(ls2 * CA-FFN(BN(x))); ls init 1e-5."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float, drop_path: float,
                 layer_scale: float = 1e-5):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = MultiOrderGatedAggregation(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ChannelAggregationFFN(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((1, dim, 1, 1), layer_scale))
        self.layer_scale_2 = nn.Parameter(torch.full((1, dim, 1, 1), layer_scale))
        init_openstl(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2 * self.mlp(self.norm2(x)))


def moganet_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    require_multiple(dim, sum(CHANNEL_SPLIT), "moganet", "channels split 1:3:4 across dilations")
    return MogaBlock(dim, mlp_ratio, drop, drop_path)


build_moganet = TRANSLATORS.register("moganet")(metaformer("moganet", moganet_block))
