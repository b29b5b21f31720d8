"""Code-usage statistics: perplexity (Table 13, Appendix A.4) and kurtosis (Table 8, Figure 5).

Conventions:
* Perplexity of a usage distribution p over codes is ``exp(-sum p log(p + 1e-10))`` (the public
  code's formula). It is 0.0 when nothing was used at all (the formula would give NaN).
* Kurtosis is Fisher's (excess) kurtosis of the values normalised over the whole batch, the
  default of ``scipy.stats.kurtosis``: 0 for a normal distribution, -1.2 for a uniform one, large
  for a spiky, sparse one. Table 8 gives about 1.6 for every frozen codebook (kaiming, trunc
  normal, orthogonal) and 4 to 42 for learnable ones. Measured here on an untrained SVQ (C=32,
  N=10,000, random latents) W has Fisher kurtosis about 0.2 (Pearson 3.2), and a frozen codebook's
  own kurtosis depends strongly on its init (kaiming -1.2, trunc normal -0.6, orthogonal 0, sparse
  28). So Table 8 measures W, and its 1.6 reads as Fisher's (mildly heavier tails than at init
  after training): a Pearson 1.6 would mean W flatter than a uniform distribution.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

EPS = 1e-10


def perplexity_from_counts(counts: torch.Tensor) -> float:
    """exp(entropy) of the distribution ``counts / counts.sum()`` (counts per code)."""
    counts = counts.detach().double().reshape(-1)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts / total
    return float(torch.exp(-(p * torch.log(p + EPS)).sum()))


def perplexity_from_indices(indices: torch.Tensor, codebook_size: int) -> float:
    """Perplexity of code usage from hard code indices (any shape). Negative indices (the
    library's marker for dropped-out quantizers) are ignored."""
    idx = indices.detach().reshape(-1).long()
    idx = idx[idx >= 0]
    return perplexity_from_counts(torch.bincount(idx, minlength=codebook_size))


def mean_column_perplexity(columns: torch.Tensor, codebook_size: int) -> float:
    """Average over columns of (tokens, Q) indices of each column's perplexity: one column per
    residual quantizer, head or group, each a separate choice among the same codes."""
    if columns.dim() != 2:
        raise ValueError(f"expected (tokens, quantizers) indices, got shape {tuple(columns.shape)}")
    values = [perplexity_from_indices(columns[:, q], codebook_size) for q in range(columns.shape[1])]
    return sum(values) / len(values)


def kurtosis(values: torch.Tensor, fisher: bool = True) -> float:
    """Kurtosis of all entries of ``values`` (population moments; Fisher's excess by default)."""
    x = values.detach().double().reshape(-1)
    centred = x - x.mean()
    m2 = centred.pow(2).mean()
    if m2 <= 0:
        return 0.0
    k = float(centred.pow(4).mean() / m2.pow(2))
    return k - 3.0 if fisher else k


def regression_weight_stats(chunks: Callable[[], Iterable[torch.Tensor]],
                            thetas: tuple[float, ...] = (2.0, 3.0)) -> dict[str, float]:
    """SVQ's usage statistics of the regression weights W, streamed in chunks.

    ``chunks`` returns a fresh iterable of 2-D tensors (tokens_i, N), together all of W; it is
    called twice (moments first, then thresholds), so W never has to exist whole. Returns
    ``perplexity_theta{θ}`` for each θ: W normalised over the batch, ``|.| > θ`` marks a used code,
    p = uses per code / all uses; and ``kurtosis_weights`` (Fisher) of the normalised W.
    """
    n, total, total_sq = 0, 0.0, 0.0
    for w in chunks():
        w = w.detach().double()
        n += w.numel()
        total += float(w.sum())
        total_sq += float(w.pow(2).sum())
    if n < 2:
        raise ValueError("regression_weight_stats needs at least two weights")
    mean = total / n
    # The public code normalises with torch.std (unbiased).
    std = max((total_sq - n * mean * mean) / (n - 1), 0.0) ** 0.5

    counts: dict[float, torch.Tensor] = {}
    m2, m4 = 0.0, 0.0
    for w in chunks():
        centred = w.detach().double() - mean
        m2 += float(centred.pow(2).sum())
        m4 += float(centred.pow(4).sum())
        if std > 0:
            scaled = centred.abs() / std
            for theta in thetas:
                used = (scaled > theta).sum(dim=0)
                counts[theta] = used if theta not in counts else counts[theta] + used
    stats = {f"perplexity_theta{theta:g}": perplexity_from_counts(counts[theta]) if theta in counts else 0.0
             for theta in thetas}
    stats["kurtosis_weights"] = (m4 / n) / (m2 / n) ** 2 - 3.0 if m2 > 0 else 0.0
    return stats


__all__ = ["EPS", "perplexity_from_counts", "perplexity_from_indices", "mean_column_perplexity",
           "kurtosis", "regression_weight_stats"]
