"""MetaFormer scaffolding shared by every SimVP translator except IncepU (OpenSTL's MidMetaNet).

A translator maps the stacked latent (B, T*hid_S, H, W) to the same shape. MidMetaNet stacks N_T
MetaBlocks: block 0 works on T*hid_S channels and ends in a 1x1 conv down to hid_T, the middle
blocks work on hid_T, and the last block works on hid_T and ends in a 1x1 conv back up to T*hid_S.
Block i gets stochastic depth linspace(1e-2, drop_path, N_T)[i], as in OpenSTL (so block 0 has
drop path 0.01 even when drop_path is 0).
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import torch
from torch import nn
from torch.nn.init import trunc_normal_  # timm's is the same (absolute bounds -2, 2)

from pipeline.core.errors import ConfigError

__all__ = [
    "BlockMaker", "ConvMlp", "DropPath", "MetaBlock", "MidMetaNet", "check_input",
    "drop_path_rates", "init_openstl", "metaformer", "require_multiple",
]


class BlockMaker(Protocol):
    """Builds one MetaFormer block working on `dim` channels (shape-preserving)."""

    def __call__(self, dim: int, *, out_dim: int, layer_i: int,
                 input_resolution: tuple[int, int], mlp_ratio: float, drop: float,
                 drop_path: float) -> nn.Module: ...


class DropPath(nn.Module):
    """Stochastic depth per sample, scaled by the keep rate (timm's DropPath, defined here so the
    common translators load without timm's import chain)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep) if keep > 0 else x * mask

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


def drop_path_rates(depth: int, drop_path: float) -> list[float]:
    """OpenSTL's stochastic-depth rule for MidMetaNet: linspace(1e-2, drop_path, depth)."""
    return torch.linspace(1e-2, drop_path, depth).tolist()


def require_multiple(dim: int, multiple: int, family: str, why: str) -> None:
    if dim % multiple:
        raise ConfigError(
            f"translator '{family}': a block works on {dim} channels, which must be a multiple "
            f"of {multiple} ({why}); the block widths are in_channels (T*hid_S) and hidden (hid_T)")


def init_openstl(module: nn.Module, *, conv: str | None = "fanout", linear: bool = True) -> None:
    """The weight init OpenSTL's blocks apply to themselves (norms keep PyTorch's 1/0 init).

    conv="fanout": N(0, sqrt(2 / fan_out)) with fan_out = k*k*out/groups; conv="trunc": trunc
    normal std 0.02; None leaves convs at PyTorch's default. linear: trunc normal std 0.02.
    Biases of re-initialised layers are zeroed.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear) and linear:
            trunc_normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Conv2d) and conv == "fanout":
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.Conv2d) and conv == "trunc":
            trunc_normal_(m.weight, std=0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class ConvMlp(nn.Module):
    """1x1 conv -> [3x3 depthwise conv] -> GELU -> dropout -> 1x1 conv -> dropout.

    With `dwconv` it is the MixMlp of gSTA/TAU/VAN; without, PoolFormer's Mlp and Uniformer's
    CMlp. (timm's ConvMlp has no dropout after the second conv, so it is not used here.)
    """

    def __init__(self, dim: int, hidden: int, drop: float = 0.0, dwconv: bool = False):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden) if dwconv else nn.Identity()
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class MetaBlock(nn.Module):
    """One translator block followed, where the width changes, by a 1x1 conv (OpenSTL's MetaBlock)."""

    def __init__(self, block: nn.Module, in_channels: int, out_channels: int, drop_path: float):
        super().__init__()
        self.block = block
        self.drop_path_rate = drop_path
        self.reduction = (nn.Conv2d(in_channels, out_channels, 1)
                          if in_channels != out_channels else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction(self.block(x))


def check_input(x: torch.Tensor, name: str, in_channels: int,
                resolution: tuple[int, int] | None) -> None:
    """Fail with the settings named, rather than deep inside a block."""
    ok = x.ndim == 4 and x.shape[1] == in_channels
    if ok and resolution is not None:
        ok = tuple(x.shape[-2:]) == tuple(resolution)
    if not ok:
        want = f"(B, {in_channels}, H, W)" if resolution is None else \
            f"(B, {in_channels}, {resolution[0]}, {resolution[1]})"
        raise ConfigError(
            f"translator '{name}' built for in_channels={in_channels}"
            + ("" if resolution is None else f", input_resolution={tuple(resolution)}")
            + f" expects input {want}, got {tuple(x.shape)}")


class MidMetaNet(nn.Module):
    """N_T MetaBlocks: reduce T*hid_S -> hid_T in the first, expand back in the last."""

    def __init__(self, name: str, make_block: BlockMaker, *, in_channels: int, hidden: int,
                 depth: int, input_resolution: tuple[int, int], mlp_ratio: float, drop: float,
                 drop_path: float, fixed_resolution: bool):
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.input_resolution = tuple(input_resolution)
        self.fixed_resolution = fixed_resolution
        self.drop_path_rates = drop_path_rates(depth, drop_path)
        dims = [in_channels] + [hidden] * (depth - 1)
        outs = [hidden] * (depth - 1) + [in_channels]
        self.blocks = nn.ModuleList(
            MetaBlock(make_block(d, out_dim=o, layer_i=i, input_resolution=self.input_resolution,
                                 mlp_ratio=mlp_ratio, drop=drop, drop_path=r), d, o, r)
            for i, (d, o, r) in enumerate(zip(dims, outs, self.drop_path_rates)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.name, self.in_channels,
                    self.input_resolution if self.fixed_resolution else None)
        for block in self.blocks:
            x = block(x)
        return x


def metaformer(name: str, make_block: BlockMaker, *, fixed_resolution: bool = False
               ) -> Callable[..., MidMetaNet]:
    """A registry builder: MidMetaNet made of `make_block` blocks.

    fixed_resolution: the blocks hold weights sized by the latent (MLP-Mixer's token MLP, Swin's
    windows), so the forward pass checks that the input has exactly input_resolution.
    """
    def build(*, in_channels: int, hidden: int, depth: int, input_resolution: tuple[int, int],
              drop_path: float = 0.0, mlp_ratio: float = 8.0, drop: float = 0.0) -> MidMetaNet:
        return MidMetaNet(name, make_block, in_channels=in_channels, hidden=hidden, depth=depth,
                          input_resolution=input_resolution, mlp_ratio=mlp_ratio, drop=drop,
                          drop_path=drop_path, fixed_resolution=fixed_resolution)

    build.__name__ = f"build_{name}"
    build.__doc__ = f"MidMetaNet of '{name}' blocks (see pipeline.models.translators)."
    return build
