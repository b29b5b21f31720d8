"""Quantizer registry: name -> class. Adding a method is one file (a :class:`Quantizer` subclass
with its ``Settings``, decorated ``@QUANTIZERS.register(name)``) and its ``register_lazy`` line below.

Every quantizer maps a latent (B, C, H, W) to ``(z_q, aux_loss)`` (same shape, scalar tensor) and
offers ``diagnostics(z) -> dict[str, float]``. Its settings are typed: the run configuration holds
the ``Settings`` instance of the class its name picks (:func:`parse_settings`). Where it sits in the
model (before or after the translator) is the model's business.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.core.plugins import Registry
from pipeline.core.schema import Settings, parse
from pipeline.models.quantizers.base import Quantizer, settings_key

QUANTIZERS: Registry[type[Quantizer]] = Registry("quantizer", key="model.quantizer")
QUANTIZERS.register_lazy("none", "pipeline.models.quantizers.identity")
QUANTIZERS.register_lazy("svq", "pipeline.models.quantizers.svq_variants")
QUANTIZERS.register_lazy("svq_raw", "pipeline.models.quantizers.lista")
QUANTIZERS.register_lazy("vq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("residual_vq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("grouped_residual_vq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("multihead_vq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("residual_vq_stochastic", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("residual_fsq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("lfq", "pipeline.models.quantizers.lucidrains")
QUANTIZERS.register_lazy("residual_lfq", "pipeline.models.quantizers.lucidrains")


def parse_settings(name: str, values: Mapping[str, Any], origin: Callable[[str], str] | None = None
                   ) -> Settings:
    """The settings of quantizer ``name`` (a union keyed by the name): ``values`` validated
    against its class's schema, defaults filled in."""
    return parse(QUANTIZERS.get(name).Settings, values, settings_key(QUANTIZERS.canonical(name)), origin)


def build_quantizer(name: str, dim: int, settings: Settings | Mapping[str, Any] | None = None
                    ) -> Quantizer:
    """The quantizer ``name`` for latents of ``dim`` channels; ``settings`` override its defaults."""
    return QUANTIZERS.get(name)(dim, settings)


__all__ = ["QUANTIZERS", "Quantizer", "build_quantizer", "parse_settings", "settings_key"]
