"""The VQ comparators of Table 4, from ``vector_quantize_pytorch`` (lucidrains).

Defaults are the public code's settings (its ``ablation_vq/*.py``), which ran vector-quantize-pytorch
1.12.5; that is the version installed (constraints.txt), and the only one these classes build with:
later releases changed what the same arguments compute (EMA code counts starting at ones since
1.15.3, the shared codebook of the residual variants updated once per step instead of after each
residual layer since 1.17.5, a different ResidualFSQ since 1.21.8/1.26.0), so the version is
checked when a comparator is built. tests/models/test_comparators_1125.py compares every output,
loss, index, buffer and input gradient with values recorded from 1.12.5 as the public wrapper
called it (bench/record_vq_1125.py). 1.12.5 has only the straight-through estimator (the one the
paper argues against): ``rotation_trick`` exists so the ledger can show it, and ``true`` is
refused. LFQ's ``commitment_loss_weight`` (1.12.5's default 0.25) is passed explicitly.

Each library module sees the tokens (B, H*W, C) and returns its own auxiliary loss (commitment for
the VQ family, entropy and commitment for LFQ, none for FSQ), which becomes ``aux_loss``. (The
public wrapper gave LFQ the (B, C, H, W) map, which 1.12.5 flattens to the same tokens.) Where the
library returns one loss per quantizer (residual and grouped variants) ``aux_reduction`` decides
how they become a scalar: ``sum`` (default) or ``mean`` (what the public SVQ code did,
``torch.mean(loss)``).

FSQ and LFQ quantize in a small space (len(levels) = 4 dims for FSQ [8, 5, 5, 3]; log2(codebook)
bits for LFQ). Their ``dim`` argument is set to the latent's C, so the library adds its own learned
linear projections C -> small -> C around the quantizer, as the public code did.

Diagnostics: ``perplexity`` = exp(entropy) of the code-usage distribution over the sample batch,
from the hard indices; for residual quantizers, heads and groups, each quantizer (head, group)
gets its own perplexity and the average is reported (the public code's commented-out
``evaluate_codebook_usage`` averaged the same way). The forward for diagnostics runs in the
module's current mode (so stochastic code sampling counts when training, as in Table 13), and the
codebook state (EMA statistics) is restored afterwards.
"""
from __future__ import annotations

import abc
import importlib
import importlib.metadata
import math
from typing import Annotated, Any, Literal

import torch
from pydantic import AfterValidator, Field

from pipeline.core.errors import ConfigError, ProjectError
from pipeline.core.schema import NonNegativeFloat, PositiveInt
from pipeline.core.schema import Settings as SettingsBase
from pipeline.core.schema import expected
from pipeline.models.quantizers import QUANTIZERS
from pipeline.models.quantizers.base import Quantizer
from pipeline.models.quantizers.diagnostics import mean_column_perplexity


def _power_of_two(value: int) -> int:
    if value & (value - 1):
        raise expected(f"a power of two (e.g. {1 << (value - 1).bit_length()})")
    return value


def _straight_through(value: bool) -> bool:
    if value:
        raise expected("false (vector-quantize-pytorch 1.12.5, the version the public code ran, has only "
                       "the straight-through estimator)")
    return value


PowerOfTwo = Annotated[int, Field(gt=0), AfterValidator(_power_of_two)]  # LFQ codes are bit patterns
Decay = Annotated[float, Field(gt=0, le=1)]
AuxReduction = Literal["sum", "mean"]
LIBRARY = "vector-quantize-pytorch"
LIBRARY_VERSION = "1.12.5"   # the public code's pin; see the module docstring for what later ones change


def _lib():
    """The library, imported on first build: runs without a comparator skip its import time."""
    installed = importlib.metadata.version(LIBRARY)
    if installed != LIBRARY_VERSION:
        raise ProjectError(f"{LIBRARY} {installed} is installed; the Table 4 comparators need {LIBRARY_VERSION} "
                           f"(later versions compute differently): pip install -c constraints.txt "
                           f"{LIBRARY}=={LIBRARY_VERSION}")
    return importlib.import_module("vector_quantize_pytorch")


class LucidrainsQuantizer(Quantizer):
    """Common wrapper: tokens in, (z_q, scalar aux) out, perplexity from the code indices."""

    def __init__(self, dim: int, settings=None):
        super().__init__(dim, settings)
        self.vq = self._build()

    @abc.abstractmethod
    def _build(self) -> torch.nn.Module:
        """The library module with this quantizer's settings."""

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Library call on tokens: (quantized tokens, indices, loss or None)."""
        q, indices, loss = self.vq(x)
        return q, indices, loss

    def _index_columns(self, indices: torch.Tensor) -> torch.Tensor:
        """(tokens, quantizers) view of the indices; default layout (B, H*W[, Q])."""
        return indices.reshape(indices.shape[0] * indices.shape[1], -1)

    @property
    def _perplexity_codebook_size(self) -> int:
        return self.settings.codebook_size

    def _reduce(self, loss: torch.Tensor | None, ref: torch.Tensor) -> torch.Tensor:
        if loss is None:
            return ref.new_zeros(())
        if loss.grad_fn is None:
            # the library's constant zero losses are leaves flagged requires_grad: they carry no
            # gradient, and as graph-less outputs they break autograd hooks (torch's FLOP counter)
            loss = loss.detach()
        if loss.numel() == 1:
            return loss.reshape(())
        return loss.mean() if getattr(self.settings, "aux_reduction", "sum") == "mean" else loss.sum()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, _, loss = self._run(self.tokens(z))
        return self.untokens(q, z.shape), self._reduce(loss, z)

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        saved = {key: value.detach().clone() for key, value in self.state_dict().items()}
        try:
            _, indices, _ = self._run(self.tokens(z))
        finally:
            self.load_state_dict(saved)  # a training-mode forward moves EMA codebooks: undo it
        columns = self._index_columns(indices)
        return {"perplexity": mean_column_perplexity(columns, self._perplexity_codebook_size)}


class VQFamilySettings(SettingsBase):
    codebook_size: PositiveInt = 1024
    decay: Decay = 0.8
    commitment_weight: NonNegativeFloat = 1.0
    rotation_trick: Annotated[bool, AfterValidator(_straight_through)] = False  # the ledger shows it


class ResidualVQSettings(VQFamilySettings):
    num_quantizers: PositiveInt = 8
    shared_codebook: bool = True
    aux_reduction: AuxReduction = "sum"


class _VQFamily(LucidrainsQuantizer):
    def _vq_kwargs(self) -> dict[str, Any]:
        # rotation_trick is always false: 1.12.5 has no such argument
        return self.settings.model_dump(include=set(VQFamilySettings.model_fields) - {"rotation_trick"})


@QUANTIZERS.register("vq")
class VQQuantizer(_VQFamily):
    """``vq``: classic VQ (van den Oord et al. 2017), EMA codebook, commitment loss."""

    name = "vq"
    Settings = VQFamilySettings

    def _build(self):
        return _lib().VectorQuantize(dim=self.dim, **self._vq_kwargs())


@QUANTIZERS.register("multihead_vq")
class MultiHeadVQQuantizer(_VQFamily):
    """``multihead_vq``: VectorQuantize with 8 heads sharing one 1024-code codebook.

    ``codebook_dim: null`` means the latent's C per head (the public config set it to hid_S);
    the library projects C -> heads * codebook_dim and back."""

    name = "multihead_vq"

    class Settings(VQFamilySettings):
        heads: PositiveInt = 8
        separate_codebook_per_head: bool = False
        codebook_dim: PositiveInt | None = None

    def _build(self):
        s = self.settings
        return _lib().VectorQuantize(dim=self.dim, heads=s.heads, codebook_dim=s.codebook_dim,
                                     separate_codebook_per_head=s.separate_codebook_per_head,
                                     **self._vq_kwargs())


@QUANTIZERS.register("residual_vq")
class ResidualVQQuantizer(_VQFamily):
    """``residual_vq``: 8 residual quantizers sharing one 1024-code codebook."""

    name = "residual_vq"
    Settings = ResidualVQSettings

    def _extra_kwargs(self) -> dict[str, Any]:
        return {}

    def _build(self):
        return _lib().ResidualVQ(dim=self.dim, num_quantizers=self.settings.num_quantizers,
                                 shared_codebook=self.settings.shared_codebook, **self._vq_kwargs(),
                                 **self._extra_kwargs())


@QUANTIZERS.register("residual_vq_stochastic")
class StochasticResidualVQQuantizer(ResidualVQQuantizer):
    """``residual_vq_stochastic``: residual VQ sampling codes (Gumbel, temperature 0.1) in training."""

    name = "residual_vq_stochastic"

    class Settings(ResidualVQSettings):
        stochastic_sample_codes: bool = True
        sample_codebook_temp: NonNegativeFloat = 0.1

    def _extra_kwargs(self) -> dict[str, Any]:
        return self.settings.model_dump(include={"stochastic_sample_codes", "sample_codebook_temp"})


@QUANTIZERS.register("grouped_residual_vq")
class GroupedResidualVQQuantizer(_VQFamily):
    """``grouped_residual_vq``: channels split into 2 groups, each a residual VQ (8 x 1024, shared)."""

    name = "grouped_residual_vq"

    class Settings(ResidualVQSettings):
        groups: PositiveInt = 2

    def _build(self):
        s = self.settings
        if self.dim % s.groups:  # the one check that needs the latent's width
            raise ConfigError(f"quantizers.{self.name}.groups: expected a divisor of the latent channels "
                              f"({self.dim}), got {s.groups}")
        return _lib().GroupedResidualVQ(dim=self.dim, groups=s.groups, num_quantizers=s.num_quantizers,
                                        shared_codebook=s.shared_codebook, **self._vq_kwargs())

    def _index_columns(self, indices: torch.Tensor) -> torch.Tensor:
        # (G, B, H*W, Q) -> (B*H*W, G*Q)
        g, b, n, q = indices.shape
        return indices.permute(1, 2, 0, 3).reshape(b * n, g * q)


@QUANTIZERS.register("residual_fsq")
class ResidualFSQQuantizer(LucidrainsQuantizer):
    """``residual_fsq``: 8 residual finite scalar quantizers, levels [8, 5, 5, 3]; no aux loss."""

    name = "residual_fsq"

    class Settings(SettingsBase):
        levels: Annotated[list[Annotated[int, Field(ge=2)]], Field(min_length=1)] = [8, 5, 5, 3]
        num_quantizers: PositiveInt = 8

    def _build(self):
        return _lib().ResidualFSQ(dim=self.dim, levels=list(self.settings.levels),
                                  num_quantizers=self.settings.num_quantizers)

    def _run(self, x):
        q, indices = self.vq(x)
        return q, indices, None

    @property
    def _perplexity_codebook_size(self) -> int:
        return math.prod(self.settings.levels)


@QUANTIZERS.register("lfq")
class LFQQuantizer(LucidrainsQuantizer):
    """``lfq``: lookup-free quantization, 8192 codes (13 bits), entropy loss weight 0.1."""

    name = "lfq"

    class Settings(SettingsBase):
        codebook_size: PowerOfTwo = 8192
        entropy_loss_weight: NonNegativeFloat = 0.1
        diversity_gamma: NonNegativeFloat = 1.0
        commitment_loss_weight: NonNegativeFloat = 0.25

    def _build(self):
        return _lib().LFQ(dim=self.dim, **self.settings.model_dump())


@QUANTIZERS.register("residual_lfq")
class ResidualLFQQuantizer(LucidrainsQuantizer):
    """``residual_lfq``: 8 residual LFQs of 256 codes each."""

    name = "residual_lfq"

    class Settings(SettingsBase):
        codebook_size: PowerOfTwo = 256
        num_quantizers: PositiveInt = 8
        commitment_loss_weight: NonNegativeFloat = 0.25
        aux_reduction: AuxReduction = "sum"

    def _build(self):
        return _lib().ResidualLFQ(dim=self.dim, **self.settings.model_dump(exclude={"aux_reduction"}))
