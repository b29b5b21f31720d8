"""SimVP translators, registered by name (OpenSTL's `model_type`).

A translator maps the encoder latent of all input frames, stacked along channels,
(B, T*hid_S, H, W), to a tensor of the same shape:

    t = build_translator("gsta", in_channels=T * hid_S, hidden=hid_T, depth=N_T,
                         input_resolution=(H, W), drop_path=0.1)

"incepu" is SimVP v1's MidIncepNet; every other name is a MidMetaNet of that block type (see
base.py). To add a translator: write one file with a block maker and `metaformer(...)` (or any
builder taking build_translator's keyword arguments), then add one line to TRANSLATORS.
Builders are called with arguments already checked by build_translator.
"""
from __future__ import annotations

import importlib
import numbers
from typing import Sequence

from torch import nn

from pipeline.errors import ConfigError

__all__ = ["ALIASES", "TRANSLATORS", "build_translator"]

# name -> (module in this package, builder). Modules are imported only when their translator is
# built: the timm-based ones pull in timm and torchvision, seconds of start-up a gSTA run never needs.
TRANSLATORS: dict[str, tuple[str, str]] = {
    "incepu": ("incepu", "build_incepu"),
    "gsta": ("lka", "build_gsta"),
    "tau": ("lka", "build_tau"),
    "convmixer": ("convs", "build_convmixer"),
    "convnext": ("convs", "build_convnext"),
    "hornet": ("hornet", "build_hornet"),
    "moganet": ("moganet", "build_moganet"),
    "vit": ("transformers", "build_vit"),
    "swin": ("transformers", "build_swin"),
    "uniformer": ("transformers", "build_uniformer"),
    "poolformer": ("convs", "build_poolformer"),
    "van": ("lka", "build_van"),
    "mlpmixer": ("transformers", "build_mlpmixer"),
}

# Other spellings OpenSTL's SimVP accepts for the same blocks.
ALIASES = {"mlp": "mlpmixer", "moga": "moganet"}


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"translator: {key} must be a positive integer, got {value!r}")
    return int(value)


def _rate(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"translator: {key} must be a number in [0, 1), got {value!r}")
    return float(value)


def build_translator(name: str, *, in_channels: int, hidden: int, depth: int,
                     input_resolution: Sequence[int], drop_path: float = 0.0,
                     mlp_ratio: float = 8.0, drop: float = 0.0) -> nn.Module:
    """Build the translator `name` (case-insensitive).

    in_channels: T * hid_S; hidden: hid_T; depth: N_T (>= 2, as OpenSTL asserts);
    input_resolution: latent (H, W); drop_path: the last block's stochastic depth (the blocks get
    linspace(1e-2, drop_path, N_T)); mlp_ratio: MLP expansion (> 1); drop: dropout rate.
    Raises ConfigError for an unknown name or a setting the blocks cannot take.
    """
    key = name.lower() if isinstance(name, str) else name
    key = ALIASES.get(key, key)
    if key not in TRANSLATORS:
        raise ConfigError(f"unknown translator {name!r}; known: {', '.join(sorted(TRANSLATORS))}"
                          f" (aliases: {', '.join(f'{a}={c}' for a, c in ALIASES.items())})")
    in_channels = _positive_int("in_channels", in_channels)
    hidden = _positive_int("hidden", hidden)
    depth = _positive_int("depth", depth)
    if depth < 2:
        raise ConfigError(f"translator: depth (N_T) must be >= 2 (the first block reduces, the "
                          f"last expands), got {depth}")
    if isinstance(input_resolution, (str, bytes)) or not isinstance(input_resolution, Sequence) \
            or len(input_resolution) != 2:
        raise ConfigError(f"translator: input_resolution must be the latent (H, W), got {input_resolution!r}")
    resolution = (_positive_int("input_resolution[0]", input_resolution[0]),
                  _positive_int("input_resolution[1]", input_resolution[1]))
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, numbers.Real) or not mlp_ratio > 1:
        raise ConfigError(f"translator: mlp_ratio must be a number > 1, got {mlp_ratio!r}")
    module, builder = TRANSLATORS[key]
    build = getattr(importlib.import_module(f"{__name__}.{module}"), builder)
    return build(in_channels=in_channels, hidden=hidden, depth=depth,
                            input_resolution=resolution, drop_path=_rate("drop_path", drop_path),
                            mlp_ratio=float(mlp_ratio), drop=_rate("drop", drop))
