"""Registry adapter for :class:`pipeline.svq.SVQ` and its variants (Tables 6, 8, 13, 15).

Every variant is a setting of the one ``svq`` entry:
* learnable / frozen codebook: ``freeze_codebook``; frozen MLP: ``freeze_projection`` (Table 15);
* one-layer: ``nonlinear: false``; post-ReLU: ``out_relu: true``;
* bucket-shape (no code in the public repository): ``hidden: 1280, codebook_size: 1280``;
* initialisations of Table 8: ``init`` = kaiming / sparse / trunc_normal / orthogonal.
Settings and defaults: :class:`pipeline.svq.SVQSettings` (the public code's: 10,000 codes, hidden
128, ``normal`` initialisation).
"""
from __future__ import annotations

import torch

from pipeline.models.quantizers import QUANTIZERS
from pipeline.models.quantizers.base import Quantizer
from pipeline.models.quantizers.diagnostics import kurtosis, regression_weight_stats
from pipeline.svq import SVQ, SVQSettings

# Elements of W computed at once by the diagnostics (doubled to float64 while reduced).
_DIAGNOSTIC_CHUNK = 1 << 22


@QUANTIZERS.register("svq")
class SVQQuantizer(Quantizer):
    """``svq``: sparse regression-based VQ. No auxiliary loss (aux is a zero tensor)."""

    name = "svq"

    Settings = SVQSettings

    def __init__(self, dim: int, settings=None):
        super().__init__(dim, settings)
        self.svq = SVQ(dim, **self.settings.model_dump())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.svq(z), z.new_zeros(())

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        self.tokens(z)  # shape check
        per_sample = z.shape[2] * z.shape[3] * self.svq.codebook_size
        samples = max(1, _DIAGNOSTIC_CHUNK // per_sample)

        def chunks():
            for part in z.split(samples):
                yield self.svq.regression_weights(part).reshape(-1, self.svq.codebook_size)

        stats = regression_weight_stats(chunks, thetas=(2.0, 3.0))
        stats["kurtosis_codebook"] = kurtosis(self.svq.codebook)
        return stats
