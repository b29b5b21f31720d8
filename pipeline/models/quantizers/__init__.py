"""Quantizer registry: name -> class. Adding a method is one file and one line in ``QUANTIZERS``.

Every quantizer maps a latent (B, C, H, W) to ``(z_q, aux_loss)`` (same shape, scalar tensor),
offers ``diagnostics(z) -> dict[str, float]`` and lists its settings with defaults in ``defaults``.
Where it sits in the model (before or after the translator) is the model's business.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import ConfigError
from pipeline.models.quantizers.base import IdentityQuantizer, Quantizer
from pipeline.models.quantizers.lista import LISTAQuantizer
from pipeline.models.quantizers.lucidrains import COMPARATORS
from pipeline.models.quantizers.svq import SVQQuantizer

QUANTIZERS: dict[str, type[Quantizer]] = {
    cls.name: cls for cls in (IdentityQuantizer, SVQQuantizer, LISTAQuantizer, *COMPARATORS)
}


def build_quantizer(name: str, dim: int, settings: Mapping[str, Any] | None = None) -> Quantizer:
    """The quantizer ``name`` for latents of ``dim`` channels; ``settings`` override its defaults."""
    if name not in QUANTIZERS:
        raise ConfigError(f"quantizer: unknown name {name!r}; expected one of {sorted(QUANTIZERS)}")
    return QUANTIZERS[name](dim, settings)


__all__ = ["QUANTIZERS", "Quantizer", "build_quantizer"]
