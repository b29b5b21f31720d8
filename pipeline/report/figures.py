"""Figures: forecast samples (input, truth, prediction, error) and the report's plots."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on these machines
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.data.prepared import DataError  # noqa: E402


def forecast_figure(inputs: np.ndarray, truth: np.ndarray, prediction: np.ndarray, path: Path,
                    *, title: str = "", channels: list[str] | None = None, max_frames: int = 6) -> Path:
    """One test sample, first channel: a row each for input, truth, prediction and |error|.

    Arrays are (T, C, H, W) in metric space (physical units for weather)."""
    t_in, t_out = inputs.shape[0], truth.shape[0]
    n = min(max(t_in, t_out), max_frames)
    rows = [("input", inputs), ("truth", truth), ("prediction", prediction),
            ("|error|", np.abs(prediction - truth))]
    vmin = float(min(inputs[:, 0].min(), truth[:, 0].min()))
    vmax = float(max(inputs[:, 0].max(), truth[:, 0].max()))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n, 1.35 * len(rows) * max(0.6, truth.shape[-2] / truth.shape[-1])),
                             squeeze=False)
    for r, (label, arr) in enumerate(rows):
        idx = np.linspace(0, arr.shape[0] - 1, num=min(n, arr.shape[0])).round().astype(int)
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(idx):
                kw = {"cmap": "magma"} if label == "|error|" else {"cmap": "coolwarm", "vmin": vmin, "vmax": vmax}
                ax.imshow(arr[idx[c], 0], **kw)
                ax.set_title(f"t={idx[c] + 1}", fontsize=7)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(label, fontsize=8)
    channel = channels[0] if channels else "channel 0"
    fig.suptitle(f"{title} - {channel}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# The report's figures. Each takes plain arrays or numbers (the stage fetches them from MLflow),
# writes one PNG and returns its path, or returns None (and logs why) when its inputs are missing.
log = logging.getLogger(__name__)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def forecast_comparison_figure(svq: Mapping[str, np.ndarray] | None, baseline: Mapping[str, np.ndarray] | None,
                               path: Path, *, title: str = "", labels: tuple[str, str] = ("SimVP+SVQ", "SimVP"),
                               channel: int = 0, max_frames: int = 6) -> Path | None:
    """One test sample, one channel: input, truth, both predictions and both |errors| (paper Fig. 15-17).

    ``svq`` / ``baseline``: the runs' forecast npz contents (inputs, truth, prediction; (T, C, H, W)
    in metric space); both runs forecast the same first test sample."""
    if svq is None or baseline is None:
        log.info("forecast figure %s skipped: %s run missing", Path(path).name,
                 "SVQ" if svq is None else "baseline")
        return None
    for name, arrays in ((labels[0], svq), (labels[1], baseline)):
        missing = [k for k in ("inputs", "truth", "prediction") if k not in arrays]
        if missing:
            raise DataError(f"forecast arrays of {name}: missing {missing}; expected inputs, truth, prediction")
    truth = np.asarray(svq["truth"])
    rows = [("input", np.asarray(svq["inputs"]), "value"), ("truth", truth, "value"),
            (f"prediction\n{labels[0]}", np.asarray(svq["prediction"]), "value"),
            (f"prediction\n{labels[1]}", np.asarray(baseline["prediction"]), "value"),
            (f"|error|\n{labels[0]}", np.abs(np.asarray(svq["prediction"]) - truth), "error"),
            (f"|error|\n{labels[1]}", np.abs(np.asarray(baseline["prediction"]) - np.asarray(baseline["truth"])), "error")]
    for name, arr, _ in rows:
        if arr.ndim != 4 or channel >= arr.shape[1]:
            raise DataError(f"forecast arrays ({name}): expected (T, C, H, W) with channel {channel}, "
                            f"got shape {arr.shape}")
    values = np.concatenate([a[:, channel].ravel() for _, a, kind in rows if kind == "value"])
    errors = np.concatenate([a[:, channel].ravel() for _, a, kind in rows if kind == "error"])
    vmin, vmax = np.nanpercentile(values, [1, 99])
    emax = float(np.nanpercentile(errors, 99)) or 1.0
    n = min(max(a.shape[0] for _, a, _ in rows), max_frames)
    h, w = truth.shape[-2:]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.8 * n + 0.6, 1.6 * len(rows) * max(0.5, h / w)), squeeze=False)
    for r, (label, arr, kind) in enumerate(rows):
        idx = np.linspace(0, arr.shape[0] - 1, num=min(n, arr.shape[0])).round().astype(int)
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.axis("off")
                continue
            if kind == "error":
                ax.imshow(arr[idx[c], channel], cmap="magma", vmin=0.0, vmax=emax)
            else:
                ax.imshow(arr[idx[c], channel], cmap="coolwarm", vmin=vmin, vmax=vmax)
            ax.set_title(f"t={idx[c] + 1}", fontsize=6)
        axes[r][0].set_ylabel(label, fontsize=7)
    fig.suptitle(f"{title} (channel {channel})", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def learning_curves_figure(curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: Path,
                           *, metric: str = "val_loss") -> Path | None:
    """Validation loss per epoch: one panel per group (dataset), one line per run label."""
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
        for label, points in lines.items():
            steps, vals = zip(*sorted(points))
            ax.plot(steps, vals, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def noise_figure(table5, path: Path) -> Path | None:
    """MSE vs injected-noise proportion without / with SVQ (Table 5): ours solid, paper dashed.

    ``table5``: the tidy frame of :func:`pipeline.report.tables.build_table5`."""
    rows = table5[(table5["kind"] == "measured") & table5["column"].isin(["mse_wo", "mse_w"])]
    if rows["ours"].notna().sum() == 0:
        log.info("noise figure skipped: no Table 5 run")
        return None
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for col, label, color in (("mse_wo", "w/o SVQ", "tab:red"), ("mse_w", "w SVQ", "tab:blue")):
        sub = rows[rows["column"] == col]
        eta = [_eta(r) for r in sub["row"]]
        ours = sub["ours"].to_numpy(dtype=float)
        ok = np.isfinite(ours)
        if ok.any():
            ax.plot(np.array(eta)[ok], ours[ok], marker="o", color=color, label=f"ours {label}")
        ax.plot(eta, sub["paper"].to_numpy(dtype=float), linestyle="--", marker="x", color=color, alpha=0.6,
                label=f"paper {label}")
    ax.set_xlabel("noise proportion η (%)")
    ax.set_ylabel("test MSE")
    ax.set_title("MSE vs injected noise (Table 5)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _eta(label: str) -> float:
    text = label.split("=", 1)[1].rstrip("%")
    return float(text)


def codebook_size_figure(series: Mapping[str, Sequence[tuple[float, float]]], path: Path, *,
                         reference: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Path | None:
    """Test MSE vs codebook size per method (paper Figure 4); ``reference``: the paper's points, dashed."""
    series = {k: sorted(v) for k, v in series.items() if v}
    if not series:
        log.info("codebook-size figure skipped: no SVQ / grouped residual VQ run with a codebook size")
        return None
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, points) in enumerate(series.items()):
        x, y = zip(*points)
        ax.plot(x, y, marker="o", color=colors[i % len(colors)], label=f"ours {label}")
        ref = (reference or {}).get(label)
        if ref:
            rx, ry = zip(*sorted(ref))
            ax.plot(rx, ry, linestyle="--", marker="x", alpha=0.6, color=colors[i % len(colors)],
                    label=f"paper {label}")
    ax.set_xscale("log")
    ax.set_xlabel("codebook size")
    ax.set_ylabel("test MSE")
    ax.set_title("MSE vs codebook size (Figure 4)", fontsize=9)
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


def codebook_from_state_dict(state_dict: Mapping[str, Any]) -> np.ndarray | None:
    """The quantizer's codebook as (codes, dim), found by name: SVQ's ``...quantizer(.svq).codebook``,
    else a lucidrains ``embed`` / ``*codebook*`` tensor of 2 or 3 dims (heads are stacked); None if none."""
    def as_array(v):
        arr = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v, dtype=np.float32)
        return arr.reshape(-1, arr.shape[-1]) if arr.ndim == 3 else arr

    keys = list(state_dict)
    for suffix in ("quantizer.svq.codebook", "quantizer.codebook"):
        for k in keys:
            if k.endswith(suffix) and getattr(state_dict[k], "ndim", 0) in (2, 3):
                return as_array(state_dict[k])
    for k in keys:
        last = k.rsplit(".", 1)[-1]
        if "quantizer" in k and (last == "embed" or "codebook" in last) and \
                getattr(state_dict[k], "ndim", 0) in (2, 3) and "float" in str(getattr(state_dict[k], "dtype", "")):
            return as_array(state_dict[k])  # shared codebooks: the first is the one
    return None


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
