"""Token-mixing blocks on the flattened latent: ViT, Swin, MLP-Mixer (timm's blocks) and Uniformer.

Every latent position is one token of `dim` channels. ViT and Uniformer's MHSA attend globally
(no position embedding for ViT, as in OpenSTL); Swin attends inside windows; MLP-Mixer's token
MLP is sized by H*W, so it and Swin are tied to the latent resolution given at build time.

Swin window size: OpenSTL's rule is w = 7 if H % 7 == 0 else max(4, H // 16), capped at 8 (4 for
every latent in the paper: 8x8, 16x32, 32x32, 32x40, 64x64). OpenSTL never checks that w tiles
the latent; here, when it does not tile both H and W, the largest smaller w >= 2 that tiles both
is used (e.g. 12x18 -> 3), and when none exists (coprime sides such as 5x7) w is kept and timm's
block zero-pads the latent to whole windows. timm also shrinks the window (and drops the shift)
along an axis no longer than the window. Odd blocks shift by w // 2. As in OpenSTL, the shifted
windows attend WITHOUT the usual Swin mask, i.e. tokens wrapped round by the cyclic shift see
each other (the relative position bias is kept).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import TRANSLATORS
from .base import ConvMlp, DropPath, init_openstl, metaformer, require_multiple

from timm.layers import Attention, Mlp
from timm.models.mlp_mixer import MixerBlock
from timm.models.swin_transformer import SwinTransformerBlock
from timm.models.vision_transformer import Block as ViTBlock

NUM_HEADS = 8


class Tokens(nn.Module):
    """Runs a channels-last timm block on a (B, C, H, W) map.

    layout "BNC": tokens flattened row-major to (B, H*W, C); "BHWC": kept as a grid (Swin).
    """

    def __init__(self, block: nn.Module, layout: str):
        super().__init__()
        if layout not in ("BNC", "BHWC"):
            raise ValueError(f"layout must be 'BNC' or 'BHWC', got {layout!r}")
        self.block = block
        self.layout = layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = x.permute(0, 2, 3, 1)
        if self.layout == "BNC":
            y = y.reshape(b, h * w, c)
        return self.block(y).reshape(b, h, w, c).permute(0, 3, 1, 2)


def vit_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    require_multiple(dim, NUM_HEADS, "vit", f"{NUM_HEADS} attention heads")
    block = ViTBlock(dim, num_heads=NUM_HEADS, mlp_ratio=mlp_ratio, qkv_bias=True, proj_drop=drop,
                     drop_path=drop_path, act_layer=nn.GELU, norm_layer=nn.LayerNorm)
    init_openstl(block)
    return Tokens(block, "BNC")


def swin_window_size(resolution: tuple[int, int]) -> int:
    """OpenSTL's window for latent (H, W), made to tile both axes when possible (module doc)."""
    h, w = resolution
    base = min(8, 7 if h % 7 == 0 else max(4, h // 16))
    if h % base == 0 and w % base == 0:
        return base
    common = math.gcd(h, w)
    return next((size for size in range(base - 1, 1, -1) if common % size == 0), base)


class MaskFreeSwinBlock(SwinTransformerBlock):
    """timm's Swin block with OpenSTL's shifted-window attention, which passes no mask."""

    def get_attn_mask(self, x=None, device=None, dtype=None):
        return None


def swin_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    require_multiple(dim, NUM_HEADS, "swin", f"{NUM_HEADS} attention heads")
    window = swin_window_size(input_resolution)
    block = MaskFreeSwinBlock(dim, tuple(input_resolution), num_heads=NUM_HEADS, window_size=window,
                              shift_size=0 if layer_i % 2 == 0 else window // 2,
                              mlp_ratio=mlp_ratio, qkv_bias=True, proj_drop=drop, drop_path=drop_path)
    init_openstl(block)
    return Tokens(block, "BHWC")


def mlpmixer_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    # Token MLP: H*W -> dim/2 -> H*W; channel MLP: dim -> mlp_ratio*dim -> dim.
    h, w = input_resolution
    block = MixerBlock(dim, seq_len=h * w, mlp_ratio=(0.5, mlp_ratio), drop=drop, drop_path=drop_path)
    init_openstl(block)
    return Tokens(block, "BNC")


class UniformerConvBlock(nn.Module):
    """Uniformer's local block: x += dwconv3(x); x += 1x1(dwconv5(1x1(BN(x)))); x += MLP(BN(x))."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float, drop_path: float):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        init_openstl(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class UniformerAttentionBlock(nn.Module):
    """Uniformer's global block: x += dwconv3(x); then pre-LN MHSA and MLP with layer scale 1e-6."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float, drop_path: float,
                 layer_scale: float = 1e-6):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=NUM_HEADS, qkv_bias=True, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.gamma_1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma_2 = nn.Parameter(torch.full((dim,), layer_scale))
        init_openstl(self, conv=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.drop_path(self.gamma_1 * self.attn(self.norm1(t)))
        t = t + self.drop_path(self.gamma_2 * self.mlp(self.norm2(t)))
        return t.transpose(1, 2).reshape(b, c, h, w)


def uniformer_block(dim, *, out_dim, layer_i, input_resolution, mlp_ratio, drop, drop_path):
    # OpenSTL: global attention only where the width is unchanged and not in the first block.
    if dim == out_dim and layer_i > 0:
        require_multiple(dim, NUM_HEADS, "uniformer", f"{NUM_HEADS} attention heads")
        return UniformerAttentionBlock(dim, mlp_ratio, drop, drop_path)
    return UniformerConvBlock(dim, mlp_ratio, drop, drop_path)


build_vit = TRANSLATORS.register("vit")(metaformer("vit", vit_block))
build_swin = TRANSLATORS.register("swin")(metaformer("swin", swin_block, fixed_resolution=True))
build_mlpmixer = TRANSLATORS.register("mlpmixer")(metaformer("mlpmixer", mlpmixer_block, fixed_resolution=True))
build_uniformer = TRANSLATORS.register("uniformer")(metaformer("uniformer", uniformer_block))
