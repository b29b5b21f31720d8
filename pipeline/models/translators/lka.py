"""Large-kernel-attention blocks: gSTA (SimVP v2), TAU and VAN.

All three share OpenSTL's block layout
    x = x + DropPath(ls1 * Attn(BN(x)));  x = x + DropPath(ls2 * MixMlp(BN(x)))     (ls init 1e-2)
where Attn = 1x1 conv -> GELU -> gating unit -> 1x1 conv, plus a shortcut. The gating unit
starts with a 21x21 receptive field decomposed as a 5x5 depthwise conv and a 7x7 depthwise conv
with dilation 3, then a 1x1 conv; the three differ only in how that result gates:
    gSTA: 1x1 conv to 2C, split into (f, g), out = sigmoid(g) * f
    TAU : 1x1 conv to C (f), out = SE(x) * f * x, SE = avgpool -> Linear -> ReLU -> Linear -> sigmoid
    VAN : 1x1 conv to C (a), out = a * x
"""
from __future__ import annotations

import torch
from torch import nn

from . import TRANSLATORS
from .base import ConvMlp, DropPath, init_openstl, metaformer

KERNEL = 21
DILATION = 3
LAYER_SCALE = 1e-2


def _decomposed_large_kernel(dim: int, kernel_size: int = KERNEL, dilation: int = DILATION) -> nn.Sequential:
    """OpenSTL's kernel decomposition: for 21 / dilation 3 -> 5x5 dw, then 7x7 dw dilated by 3."""
    d_k = 2 * dilation - 1
    dd_k = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
    return nn.Sequential(
        nn.Conv2d(dim, dim, d_k, padding=(d_k - 1) // 2, groups=dim),
        nn.Conv2d(dim, dim, dd_k, padding=dilation * (dd_k - 1) // 2, groups=dim, dilation=dilation))


class GatedLKA(nn.Module):
    """gSTA's gating unit."""

    def __init__(self, dim: int, kernel_size: int = KERNEL):
        super().__init__()
        self.spatial = _decomposed_large_kernel(dim, kernel_size)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv1(self.spatial(x)).chunk(2, dim=1)
        return torch.sigmoid(g) * f


class TemporalLKA(nn.Module):
    """TAU's gating unit: large-kernel (intra-frame) attention times SE-style channel attention.

    The channels are T*hid_S stacked frames, so the SE branch weighs frames and features
    together ("temporal attention" in TAU).
    """

    def __init__(self, dim: int, kernel_size: int = KERNEL, reduction: int = 16):
        super().__init__()
        self.spatial = _decomposed_large_kernel(dim, kernel_size)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        squeezed = dim // max(dim // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(dim, squeezed, bias=False), nn.ReLU(),
                                nn.Linear(squeezed, dim, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        se = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]
        return se * self.conv1(self.spatial(x)) * x


class LKA(nn.Module):
    """VAN's gating unit."""

    def __init__(self, dim: int):
        super().__init__()
        self.spatial = _decomposed_large_kernel(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.spatial(x))


class GatingAttention(nn.Module):
    """1x1 conv -> GELU -> gating unit -> 1x1 conv, plus the input (OpenSTL's SpatialAttention)."""

    def __init__(self, dim: int, gate: nn.Module):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.gate = gate
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_2(self.gate(self.act(self.proj_1(x)))) + x


class LKABlock(nn.Module):
    def __init__(self, dim: int, attn: GatingAttention, mlp_ratio: float, drop: float,
                 drop_path: float, init_attention: bool = True):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop, dwconv=True)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), LAYER_SCALE))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), LAYER_SCALE))
        init_openstl(self)
        self.attn = attn
        if init_attention:
            init_openstl(self.attn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def gsta_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    return LKABlock(dim, GatingAttention(dim, GatedLKA(dim)), mlp_ratio, drop, drop_path)


def tau_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    # OpenSTL's TAU block swaps in its attention after the block's init ran, so the attention
    # keeps PyTorch's default init; reproduced here.
    return LKABlock(dim, GatingAttention(dim, TemporalLKA(dim)), mlp_ratio, drop, drop_path,
                    init_attention=False)


def van_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    return LKABlock(dim, GatingAttention(dim, LKA(dim)), mlp_ratio, drop, drop_path)


build_gsta = TRANSLATORS.register("gsta")(metaformer("gsta", gsta_block))
build_tau = TRANSLATORS.register("tau")(metaformer("tau", tau_block))
build_van = TRANSLATORS.register("van")(metaformer("van", van_block))
