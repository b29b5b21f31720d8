"""HorNet block: recursive gated convolution (g^n conv, order 4) plus a channel MLP."""
from __future__ import annotations

import torch
from torch import nn

from . import TRANSLATORS
from .base import DropPath, init_openstl, metaformer, require_multiple

from timm.layers import LayerNorm2d

ORDER = 4


class GnConv(nn.Module):
    """g^n conv: 1x1 to 2C, one 7x7 depthwise conv over the gates, then `order` gated products.

    Widths per order are C/2^(order-1), ..., C/2, C (so C must be a multiple of 2^(order-1)).
    """

    def __init__(self, dim: int, order: int = ORDER, kernel_size: int = 7, scale: float = 1.0):
        super().__init__()
        self.dims = [dim // 2 ** i for i in reversed(range(order))]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv = nn.Conv2d(sum(self.dims), sum(self.dims), kernel_size,
                                padding=(kernel_size - 1) // 2, groups=sum(self.dims))
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in zip(self.dims, self.dims[1:]))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pwa, abc = torch.split(self.proj_in(x), (self.dims[0], sum(self.dims)), dim=1)
        gates = torch.split(self.dwconv(abc) * self.scale, self.dims, dim=1)
        x = pwa * gates[0]
        for pw, gate in zip(self.pws, gates[1:]):
            x = pw(x) * gate
        return self.proj_out(x)


class HorBlock(nn.Module):
    """x = x + DropPath(g1 * gnconv(LN(x)));  x = x + DropPath(g2 * MLP(LN(x))); g init 1e-6.

    OpenSTL passes no dropout to it.
    """

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, layer_scale: float = 1e-6):
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = GnConv(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, int(mlp_ratio * dim))
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(int(mlp_ratio * dim), dim)
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        init_openstl(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1[:, None, None] * self.gnconv(self.norm1(x)))
        y = self.pwconv2(self.act(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        return x + self.drop_path((self.gamma2 * y).permute(0, 3, 1, 2))


def hornet_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    require_multiple(dim, 2 ** (ORDER - 1), "hornet", f"g^n conv of order {ORDER} halves it {ORDER - 1} times")
    return HorBlock(dim, mlp_ratio, drop_path)


build_hornet = TRANSLATORS.register("hornet")(metaformer("hornet", hornet_block))
