"""SimVP translators, registered by name (OpenSTL's `model_type`).

A translator maps the encoder latent of all input frames, stacked along channels,
(B, T*hid_S, H, W), to a tensor of the same shape:

    t = build_translator("gsta", in_channels=T * hid_S, hidden=hid_T, depth=N_T,
                         input_resolution=(H, W), drop_path=0.1)

"incepu" is SimVP v1's MidIncepNet; every other name is a MidMetaNet of that block type (see
base.py). To add a translator: write one file with a block maker and
``TRANSLATORS.register(name)(metaformer(name, block))`` (or any builder taking
:class:`TranslatorArgs`' keywords), then add its ``register_lazy`` line below.
"""
from __future__ import annotations

from typing import Annotated, Sequence

from pydantic import Field
from torch import nn

from pipeline.core.plugins import Registry
from pipeline.core.schema import PositiveInt, Rate, Settings, parse

__all__ = ["TRANSLATORS", "TranslatorArgs", "build_translator"]

TRANSLATORS: Registry = Registry("translator", key="model.translator")
# Modules are imported only when one of their translators is built: the timm-based ones pull in
# timm and torchvision, seconds of start-up a gSTA run never needs. Aliases: other spellings
# OpenSTL's SimVP accepts for the same blocks.
TRANSLATORS.register_lazy("incepu", "pipeline.models.translators.incepu")
TRANSLATORS.register_lazy("gsta", "pipeline.models.translators.lka")
TRANSLATORS.register_lazy("tau", "pipeline.models.translators.lka")
TRANSLATORS.register_lazy("van", "pipeline.models.translators.lka")
TRANSLATORS.register_lazy("convmixer", "pipeline.models.translators.convs")
TRANSLATORS.register_lazy("convnext", "pipeline.models.translators.convs")
TRANSLATORS.register_lazy("poolformer", "pipeline.models.translators.convs")
TRANSLATORS.register_lazy("hornet", "pipeline.models.translators.hornet")
TRANSLATORS.register_lazy("moganet", "pipeline.models.translators.moganet", aliases=("moga",))
TRANSLATORS.register_lazy("vit", "pipeline.models.translators.transformers")
TRANSLATORS.register_lazy("swin", "pipeline.models.translators.transformers")
TRANSLATORS.register_lazy("uniformer", "pipeline.models.translators.transformers")
TRANSLATORS.register_lazy("mlpmixer", "pipeline.models.translators.transformers", aliases=("mlp",))


class TranslatorArgs(Settings):
    """What every builder is called with. depth >= 2 as OpenSTL asserts (the first block reduces,
    the last expands); drop_path is the last block's stochastic depth (the blocks get
    linspace(1e-2, drop_path, N_T)); mlp_ratio is the MLP expansion."""

    in_channels: PositiveInt                          # T * hid_S
    hidden: PositiveInt                               # hid_T
    depth: Annotated[int, Field(ge=2)]                # N_T
    input_resolution: tuple[PositiveInt, PositiveInt]  # the latent (H, W)
    drop_path: Rate = 0.0
    mlp_ratio: Annotated[float, Field(gt=1)] = 8.0
    drop: Rate = 0.0


def build_translator(name: str, *, input_resolution: Sequence[int], **kwargs) -> nn.Module:
    """Build the translator `name` (case-insensitive, aliases accepted) from TranslatorArgs'
    keywords. Raises ConfigError for an unknown name or a setting the blocks cannot take."""
    build = TRANSLATORS.get(name)
    if isinstance(input_resolution, list):
        input_resolution = tuple(input_resolution)
    args = parse(TranslatorArgs, dict(kwargs, input_resolution=input_resolution), "translator")
    return build(**args.model_dump())
