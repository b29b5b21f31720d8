"""The report's figures (the forecast pictures it shares with training live in ``pipeline.training.forecast_plots``)."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on these machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.core.errors import DataError
from pipeline.training.forecast_plots import save as _save  # noqa: E402

# --------------------------------------------------------------------------------------------
# The report's figures. Each takes plain arrays or numbers (from the committed run records),
# writes one PNG and returns its path, or returns None (and logs why) when its inputs are missing.
log = logging.getLogger(__name__)


def learning_curves_figure(curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: Path,
                           *, metric: str = "val_loss", xlabel: str = "epoch",
                           dashed: Sequence[str] = (),
                           points: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]] | None = None,
                           points_label: str = "validation") -> Path | None:
    """A metric per step (training loss per epoch; scores per lead time): one panel per group,
    one line per run label; labels in ``dashed`` (reference forecasts) are drawn dashed; ``points``
    (same groups and labels: validation loss at the validated epochs) are marked on the line's
    colour. Runs trained with different losses (MSE, MAE) must be in different groups: their losses
    share no scale."""
    points = points or {}
    panels = {g: {k: v for k, v in lines.items() if v} for g, lines in curves.items()}
    panels = {g: lines for g, lines in panels.items() if lines}
    if not panels:
        log.info("learning curves skipped: no metric history of %s", metric)
        return None
    n = len(panels)
    cols = min(n, 3)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, (group, lines) in zip(axes.flat, panels.items()):
        marked = points.get(group, {})
        for label, line in lines.items():
            steps, vals = zip(*sorted(line))
            [drawn] = ax.plot(steps, vals, marker="" if marked else "o", markersize=3, label=label,
                              linestyle="--" if label in dashed else "-")
            if marked.get(label):
                steps, vals = zip(*sorted(marked[label]))
                ax.plot(steps, vals, linestyle="none", marker="o", markersize=4, color=drawn.get_color(),
                        markerfacecolor="white")
        if marked:  # one legend entry says what the open markers are
            ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", color="0.3", label=points_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)  # values as they are, not "1e-5+4.022e-1"
        ax.set_title(group, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def _reference_lines(ax, references: Mapping[str, float] | None) -> None:
    """Horizontal lines at the reference forecasts' test MSE (our data, so our panel only)."""
    styles = ((":", "0.2"), ("-.", "tab:green"), ("--", "tab:purple"))
    for (label, value), (style, color) in zip((references or {}).items(), styles):
        if value is not None and np.isfinite(value):
            ax.axhline(value, color=color, linestyle=style, linewidth=1.2, label=label)


def _ours_and_paper(title: str, xlabel: str, ylabel: str):
    """Two panels with their own y axes: ours (left) and the paper's (right); the scales differ
    by orders of magnitude on the sample profile, so one axis would flatten one of the curves."""
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for ax, who in ((ours, "ours"), (paper, "paper")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {who}", fontsize=9)
    return fig, ours, paper


def noise_figure(table5, path: Path, *, references: Mapping[str, float] | None = None) -> Path | None:
    """MSE vs injected-noise proportion without / with SVQ (Table 5): ours (left, with the
    reference forecasts' MSE as lines) and the paper's (right), each on its own axis.

    ``table5``: the tidy frame of :func:`pipeline.report.tables.build_table5`; ``references``:
    label -> test MSE of the t2m reference forecasts."""
    rows = table5[(table5["kind"] == "measured") & table5["column"].isin(["mse_wo", "mse_w"])]
    if rows["ours"].notna().sum() == 0:
        log.info("noise figure skipped: no Table 5 run")
        return None
    fig, ours_ax, paper_ax = _ours_and_paper("MSE vs injected noise (Table 5)", "noise proportion η (%)", "test MSE")
    for col, label, color in (("mse_wo", "w/o SVQ", "tab:red"), ("mse_w", "w SVQ", "tab:blue")):
        sub = rows[rows["column"] == col]
        eta = np.array([_eta(r) for r in sub["row"]])
        ours = sub["ours"].to_numpy(dtype=float)
        std = sub["ours_std"].to_numpy(dtype=float)
        ok = np.isfinite(ours)
        if ok.any():
            err = np.where(np.isfinite(std[ok]), std[ok], 0.0)
            ours_ax.errorbar(eta[ok], ours[ok], yerr=err, marker="o", color=color, capsize=3, label=label)
        paper_ax.plot(eta, sub["paper"].to_numpy(dtype=float), linestyle="--", marker="x", color=color, label=label)
    _reference_lines(ours_ax, references)
    ours_ax.legend(fontsize=7)
    paper_ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _eta(label: str) -> float:
    text = label.split("=", 1)[1].rstrip("%")
    return float(text)


def codebook_size_figure(series: Mapping[str, Sequence[tuple[float, float]]], path: Path, *,
                         reference: Mapping[str, Sequence[tuple[float, float]]] | None = None,
                         references: Mapping[str, float] | None = None) -> Path | None:
    """Test MSE vs codebook size per method (paper Figure 4): ours (left, with the reference
    forecasts' MSE as lines) and ``reference``, the paper's points (right), each on its own axis."""
    series = {k: sorted(v) for k, v in series.items() if v}
    if not series:
        log.info("codebook-size figure skipped: no SVQ / grouped residual VQ run with a codebook size")
        return None
    fig, ours_ax, paper_ax = _ours_and_paper("MSE vs codebook size (Figure 4)", "codebook size", "test MSE")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, points) in enumerate(series.items()):
        x, y = zip(*points)
        ours_ax.plot(x, y, marker="o", color=colors[i % len(colors)], label=label)
        ref = (reference or {}).get(label)
        if ref:
            rx, ry = zip(*sorted(ref))
            paper_ax.plot(rx, ry, linestyle="--", marker="x", color=colors[i % len(colors)], label=label)
    _reference_lines(ours_ax, references)
    for ax in (ours_ax, paper_ax):
        ax.set_xscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def weight_distribution_figure(samples: Mapping[str, Mapping[str, np.ndarray] | None], path: Path,
                               *, bins: int = 100) -> Path | None:
    """Distributions of SVQ's regression weights (top) and codebook (bottom), normalised, with their
    Fisher kurtosis (paper Figure 5). ``samples``: label -> the run's svq-weights npz contents."""
    from scipy.stats import kurtosis

    present = {k: v for k, v in samples.items() if v is not None}
    for k in samples.keys() - present.keys():
        log.info("weight-distribution figure: %s has no svq-weights artifact, left out", k)
    if not present:
        log.info("weight-distribution figure skipped: no svq-weights artifact")
        return None
    fig, axes = plt.subplots(2, len(present), figsize=(3.6 * len(present), 5.2), squeeze=False)
    for c, (label, arrays) in enumerate(present.items()):
        for r, key in enumerate(("weights", "codebook")):
            if key not in arrays:
                raise DataError(f"svq-weights arrays of {label!r}: missing {key!r}; expected weights and codebook")
            x = np.asarray(arrays[key], dtype=np.float64).ravel()
            x = x[np.isfinite(x)]
            ax = axes[r][c]
            if x.size < 2 or x.std() == 0:
                ax.text(0.5, 0.5, f"{key}: constant", ha="center", va="center", transform=ax.transAxes)
                continue
            z = (x - x.mean()) / x.std()
            ax.hist(z, bins=bins, color="tab:blue" if r == 0 else "tab:green", log=True)
            ax.set_title(f"{label}\n{'regression weights' if r == 0 else 'codebook'}: "
                         f"kurtosis {kurtosis(z, fisher=True):.2f}", fontsize=8)
            ax.set_xlabel("normalised value", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def codebook_tsne_figure(codebooks: Mapping[str, np.ndarray | None], path: Path, *, max_codes: int = 1000,
                         seed: int = 0) -> Path | None:
    """t-SNE of each codebook's codes (paper Figure 1); a random subsample of ``max_codes`` keeps it fast."""
    from sklearn.manifold import TSNE

    present = {k: np.asarray(v, dtype=np.float64) for k, v in codebooks.items() if v is not None and len(v) >= 5}
    if not present:
        log.info("t-SNE figure skipped: no codebook")
        return None
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(1, len(present), figsize=(4.0 * len(present), 3.8), squeeze=False)
    for ax, (label, codes) in zip(axes[0], present.items()):
        if len(codes) > max_codes:
            codes = codes[rng.choice(len(codes), size=max_codes, replace=False)]
        perplexity = float(min(30.0, max(2.0, (len(codes) - 1) / 3)))
        emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)
        ax.scatter(emb[:, 0], emb[:, 1], s=4, alpha=0.7)
        ax.set_title(f"{label} ({len(codes)} codes)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Codebook t-SNE (Figure 1)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
