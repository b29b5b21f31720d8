"""``none``: the latent passes unchanged (the SimVP baseline)."""
from __future__ import annotations

import torch

from pipeline.models.quantizers import QUANTIZERS
from pipeline.models.quantizers.base import Quantizer


@QUANTIZERS.register("none")
class IdentityQuantizer(Quantizer):
    name = "none"

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.tokens(z)  # shape check only
        return z, z.new_zeros(())

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        return {}
