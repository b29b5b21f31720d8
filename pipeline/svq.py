"""Sparse regression-based vector quantization (SVQ), usable as a plug-in on its own.

Every spatial position of a feature map ``z`` of shape (B, C, H, W) is one token ``x`` of C
channels. A small MLP maps it to regression weights over a codebook of N codes and the token is
replaced by their weighted sum::

    W = Linear2(ReLU(Linear1(x)))        Linear1: C -> hidden, Linear2: hidden -> N (both with bias)
    Q = W @ M                            M = codebook, N x C

There is no normalisation, softmax, top-k or auxiliary loss: sparsity of W comes from training
the surrounding model with an L1 (MAE) loss.

Because nothing but a matrix product follows W, ``Q = h @ (A2 @ M) + b2 @ M`` with
``h = ReLU(Linear1(x))`` and ``A2``/``b2`` the second layer's weight (transposed) and bias. The
forward uses that association, so the tokens x N tensor W is never built: the output and every
gradient are the same up to float rounding, at a fraction of the time and memory. The post-ReLU
variant (``out_relu=True``) cannot be associated; it walks the codebook in blocks of
``block_size`` codes and recomputes each block in backward (activation checkpointing), so at most
one tokens x block_size slice of W exists at a time. W itself is available from
:meth:`SVQ.regression_weights` for diagnostics.

Usage in your own model::

    import torch
    from pipeline.svq import SVQ

    class MyForecaster(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Conv2d(1, 32, 3, padding=1)
            self.svq = SVQ(dim=32, codebook_size=10000)          # dim = encoder channels
            self.decoder = torch.nn.Conv2d(32, 1, 3, padding=1)

        def forward(self, x):                                    # x: (B, 1, H, W)
            return self.decoder(self.svq(self.encoder(x)))        # SVQ keeps the shape

    # frozen random codebook (the paper's "Frozen" rows): SVQ(32, 10000, freeze_codebook=True)
    # train the whole model with an L1 loss (torch.nn.functional.l1_loss): it is what makes W sparse.
"""
from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.checkpoint import checkpoint

from pipeline.core.errors import ConfigError
from pipeline.core.schema import PositiveInt, Settings, parse

# The public code's options: name -> in-place initialiser of the (N x C) codebook.
_INITIALISERS = {
    "kaiming": nn.init.kaiming_uniform_,
    "xavier": lambda t: nn.init.xavier_uniform_(t, gain=nn.init.calculate_gain("relu")),
    "sparse": lambda t: nn.init.sparse_(t, sparsity=0.9),
    "trunc_normal": nn.init.trunc_normal_,
    "orthogonal": nn.init.orthogonal_,
    "normal": nn.init.normal_,
}
INITS = tuple(_INITIALISERS)


class SVQSettings(Settings):
    """SVQ's settings (params.yaml ``svq:``) and their defaults, the public code's
    (``openstl/modules/quantization_modules.py``): 10,000 codes, hidden 128, ``normal`` init."""

    # bounded far above the paper's largest (10,000 codes): the codebook and the (hidden, codes)
    # projection are allocated whole, so a typo of a few more digits is refused by name instead
    codebook_size: Annotated[int, Field(gt=0, le=2**20)] = 10000
    hidden: Annotated[int, Field(gt=0, le=2**16)] = 128
    init: Literal[INITS] = "normal"  # type: ignore[valid-type]
    freeze_codebook: bool = False
    freeze_projection: bool = False
    out_relu: bool = False
    nonlinear: bool = True


class _Arguments(SVQSettings):
    """The constructor's arguments: the settings plus what the model around SVQ decides."""

    dim: PositiveInt
    block_size: PositiveInt = 1024


_DEFAULT = {name: field.default for name, field in _Arguments.model_fields.items()}


def init_codebook(codebook: torch.Tensor, method: str) -> torch.Tensor:
    """Fill ``codebook`` (N x C) in place with one of :data:`INITS` (the public code's options)."""
    if method not in _INITIALISERS:
        raise ConfigError(f"init: unknown codebook initialisation {method!r}; expected one of {INITS}")
    _INITIALISERS[method](codebook)
    return codebook


def _relu_block(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                codebook: torch.Tensor) -> torch.Tensor:
    return F.relu(F.linear(features, weight, bias)) @ codebook


class SVQ(nn.Module):
    """Sparse regression-based vector quantization: (B, C, H, W) -> (B, C, H, W).

    Args:
        dim: channels C of the feature map (one token = one position's C values).
        codebook_size: number of codes N.
        hidden: width of the MLP's hidden layer; becomes N when N < hidden (as the public code).
        freeze_codebook: keep the codebook at its random initialisation (``requires_grad=False``).
        init: codebook initialisation, one of :data:`INITS` (default ``normal``, the public
            code's). The MLP keeps PyTorch's default
            ``nn.Linear`` initialisation, as in the public code.
        freeze_projection: freeze the MLP (Table 15's "two-layer MLP projection" row).
        out_relu: ReLU after Linear2 (the paper's "post-ReLU" variant).
        nonlinear: False gives the paper's "one-layer" variant, a single Linear C -> N.
        block_size: codes per block in the ``out_relu`` forward; bounds the W slice held at once.
    """

    def __init__(self, dim: int, codebook_size: int, hidden: int = _DEFAULT["hidden"],
                 freeze_codebook: bool = _DEFAULT["freeze_codebook"], init: str = _DEFAULT["init"], *,
                 freeze_projection: bool = _DEFAULT["freeze_projection"], out_relu: bool = _DEFAULT["out_relu"],
                 nonlinear: bool = _DEFAULT["nonlinear"], block_size: int = _DEFAULT["block_size"]):
        super().__init__()
        parse(_Arguments, dict(dim=dim, codebook_size=codebook_size, hidden=hidden, freeze_codebook=freeze_codebook,
                               init=init, freeze_projection=freeze_projection, out_relu=out_relu,
                               nonlinear=nonlinear, block_size=block_size), "SVQ")
        self.dim, self.codebook_size, self.block_size, self.init = dim, codebook_size, block_size, init
        self.out_relu = out_relu
        self.nonlinear = nonlinear
        if self.nonlinear:
            self.hidden = min(hidden, codebook_size)
            self.linear1 = nn.Linear(dim, self.hidden)
            self.linear2 = nn.Linear(self.hidden, codebook_size)
        else:
            self.hidden = None
            self.linear1 = nn.Linear(dim, codebook_size)
            self.linear2 = None
        codebook = init_codebook(torch.empty(codebook_size, dim), init)
        self.codebook = nn.Parameter(codebook, requires_grad=not freeze_codebook)
        if freeze_projection:
            for p in self.projection_parameters():
                p.requires_grad_(False)

    def projection_parameters(self):
        """Parameters of the MLP that produces the regression weights."""
        return [p for layer in (self.linear1, self.linear2) if layer is not None for p in layer.parameters()]

    @property
    def _last(self) -> nn.Linear:
        return self.linear2 if self.nonlinear else self.linear1

    def _tokens(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.dim:
            raise ValueError(f"SVQ expects (B, {self.dim}, H, W), got shape {tuple(z.shape)}")
        b, c, h, w = z.shape
        return z.permute(0, 2, 3, 1).reshape(b, h * w, c)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the last linear layer: ReLU(Linear1(x)), or x itself for the one-layer variant."""
        return F.relu(self.linear1(x)) if self.nonlinear else x

    def _weights_from_tokens(self, x: torch.Tensor) -> torch.Tensor:
        w = self._last(self._features(x))
        return F.relu(w) if self.out_relu else w

    def regression_weights(self, z: torch.Tensor) -> torch.Tensor:
        """W of shape (B, H*W, N), built in full: for diagnostics on a sample batch, not training."""
        return self._weights_from_tokens(self._tokens(z))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        feats = self._features(self._tokens(z))
        b, c, h, w = z.shape
        last, codebook = self._last, self.codebook
        if not self.out_relu:
            # (feats @ A^T + b) @ M == feats @ (M^T A)^T + M^T b; M^T A is only C x hidden.
            q = F.linear(feats, codebook.t() @ last.weight, last.bias @ codebook)
        else:
            q = self._blocked_relu_product(feats)
        return q.reshape(b, h, w, c).permute(0, 3, 1, 2)

    def literal_forward(self, z: torch.Tensor) -> torch.Tensor:
        """``W @ M`` with W (tokens x N) built in full, as the public code computes it: same output
        as ``forward`` up to float rounding; used to count the paper's FLOPs and in bench/."""
        b, c, h, w = z.shape
        q = self.regression_weights(z) @ self.codebook
        return q.reshape(b, h, w, c).permute(0, 3, 1, 2)

    def _blocked_relu_product(self, feats: torch.Tensor) -> torch.Tensor:
        last, codebook = self._last, self.codebook
        out = None
        for start in range(0, self.codebook_size, self.block_size):
            block = slice(start, start + self.block_size)
            args = (feats, last.weight[block], last.bias[block], codebook[block])
            if torch.is_grad_enabled() and any(a.requires_grad for a in args):
                # Recompute the block in backward instead of keeping every block's W alive.
                part = checkpoint(_relu_block, *args, use_reentrant=False)
            else:
                part = _relu_block(*args)
            out = part if out is None else out + part
        return out

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, codebook_size={self.codebook_size}, hidden={self.hidden}, init={self.init!r}, "
                f"codebook_frozen={not self.codebook.requires_grad}, out_relu={self.out_relu}, "
                f"nonlinear={self.nonlinear}")


__all__ = ["SVQ", "SVQSettings", "INITS", "init_codebook"]
