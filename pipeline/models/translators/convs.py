"""Convolution / pooling token mixers: ConvMixer, ConvNeXt (timm's block) and PoolFormer."""
from __future__ import annotations

import torch
from torch import nn

from . import TRANSLATORS
from .base import ConvMlp, DropPath, init_openstl, metaformer



class ConvMixerBlock(nn.Module):
    """x = x + BN(GELU(dwconv_k(x)));  x = BN(GELU(conv1x1(x))).

    As in OpenSTL the channel-mixing half has no residual, and the block takes no drop path or
    dropout (OpenSTL passes neither).
    """

    def __init__(self, dim: int, kernel_size: int = 11):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same")
        self.norm_1 = nn.BatchNorm2d(dim)
        self.conv_pw = nn.Conv2d(dim, dim, 1)
        self.norm_2 = nn.BatchNorm2d(dim)
        self.act = nn.GELU()
        init_openstl(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.norm_1(self.act(self.conv_dw(x)))
        return self.norm_2(self.act(self.conv_pw(x)))


def convmixer_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    return ConvMixerBlock(dim, kernel_size=11)


def convnext_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    from timm.models.convnext import ConvNeXtBlock  # here: convmixer/poolformer runs skip timm's imports

    # 7x7 depthwise conv -> LayerNorm2d -> 1x1-conv MLP -> layer scale 1e-6 -> drop path + x;
    # OpenSTL passes no dropout to it.
    block = ConvNeXtBlock(dim, mlp_ratio=mlp_ratio, conv_mlp=True, ls_init_value=1e-6,
                          drop_path=drop_path)
    init_openstl(block)
    return block


class PoolFormerBlock(nn.Module):
    """x = x + ls1 * (AvgPool3(GN(x)) - GN(x));  x = x + ls2 * ConvMlp(GN(x)); GN has one group."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float, drop_path: float,
                 pool_size: int = 3, layer_scale: float = 1e-5):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), layer_scale))
        init_openstl(self, conv="trunc")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * (self.pool(y) - y))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def poolformer_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    return PoolFormerBlock(dim, mlp_ratio, drop, drop_path)


build_convmixer = TRANSLATORS.register("convmixer")(metaformer("convmixer", convmixer_block))
build_convnext = TRANSLATORS.register("convnext")(metaformer("convnext", convnext_block))
build_poolformer = TRANSLATORS.register("poolformer")(metaformer("poolformer", poolformer_block))
