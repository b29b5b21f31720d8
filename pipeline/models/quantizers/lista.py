"""``svq_raw``: sparse coding by LISTA (Gregor & LeCun 2010), the paper's "SVQ-raw" (Table 4).

Each token x (C channels) is coded over a learned dictionary D (N x C, one atom per row) by K
unrolled shrinkage steps, starting from z = 0::

    b       = W_e x
    z_{k+1} = soft_threshold(b + S z_k, θ)          k = 0 .. K-1
    output  = z_K @ D

W_e (N x C), S (N x N) and the per-code thresholds θ are learned, untied from D as in Gregor &
LeCun. They start as ISTA on the objective ½‖x - zD‖² + λ‖z‖₁ with the initial D: W_e = D / L,
S = I - D Dᵀ / L, θ = λ / L, L the largest eigenvalue of D Dᵀ; so before training, more
iterations lower the reconstruction error. The atoms start as random unit vectors.

As in SC-VAE (Xiao et al. 2023, the paper's reference for SVQ-raw) the latent reconstruction error
‖x - zD‖² (mean over entries) is returned as the auxiliary loss, weighted by
``latent_loss_weight``; 0 turns it off.

Cost: S makes every iteration tokens x N² multiply-adds and the codes tokens x N memory per
iteration, so the default codebook is a modest 512 (3 iterations), unlike SVQ's 10,000.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.schema import NonNegativeFloat, PositiveInt
from pipeline.core.schema import Settings as SettingsBase
from pipeline.models.quantizers import QUANTIZERS
from pipeline.models.quantizers.base import Quantizer
from pipeline.models.quantizers.diagnostics import perplexity_from_counts


def soft_threshold(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return torch.sign(v) * F.relu(v.abs() - theta)


@QUANTIZERS.register("svq_raw")
class LISTAQuantizer(Quantizer):
    """``svq_raw``: LISTA sparse coding over a learned dictionary."""

    name = "svq_raw"

    class Settings(SettingsBase):
        codebook_size: PositiveInt = 512
        iterations: PositiveInt = 3
        threshold: NonNegativeFloat = 0.5          # λ of the sparse-coding objective; θ starts at λ / L
        latent_loss_weight: NonNegativeFloat = 1.0

    def __init__(self, dim: int, settings=None):
        super().__init__(dim, settings)
        n = self.codebook_size = self.settings.codebook_size
        self.iterations = self.settings.iterations
        lam = self.settings.threshold
        self.latent_loss_weight = self.settings.latent_loss_weight

        atoms = F.normalize(torch.randn(n, dim), dim=1)
        lipschitz = torch.linalg.matrix_norm(atoms, ord=2).pow(2)
        self.dictionary = nn.Parameter(atoms.clone())
        self.encoder = nn.Linear(dim, n, bias=False)
        self.lateral = nn.Linear(n, n, bias=False)
        self.theta = nn.Parameter(torch.full((n,), lam) / lipschitz)
        with torch.no_grad():
            self.encoder.weight.copy_(atoms / lipschitz)
            self.lateral.weight.copy_(torch.eye(n) - atoms @ atoms.t() / lipschitz)

    def codes(self, x: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        """Sparse codes (..., N) of tokens x (..., C) after ``iterations`` steps (default: K)."""
        steps = self.iterations if iterations is None else iterations
        if steps < 1:
            raise ValueError(f"iterations must be >= 1, got {steps}")
        b = self.encoder(x)
        z = soft_threshold(b, self.theta)
        for _ in range(steps - 1):
            z = soft_threshold(b + self.lateral(z), self.theta)
        return z

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tokens(z)
        q = self.codes(x) @ self.dictionary
        aux = self.latent_loss_weight * F.mse_loss(q, x) if self.latent_loss_weight > 0 else z.new_zeros(())
        return self.untokens(q, z.shape), aux

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        active = self.codes(self.tokens(z)).reshape(-1, self.codebook_size) != 0
        return {
            # Usage distribution: how often each code is non-zero, over all non-zeros.
            "perplexity": perplexity_from_counts(active.sum(dim=0)),
            "sparsity": float(1.0 - active.double().mean()),
            "active_codes_per_token": float(active.sum(dim=1).double().mean()),
        }
