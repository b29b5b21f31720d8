"""Forecast pictures, drawn by training (one run) and by the report (two runs side by side).

They sit below both ``pipeline.training.fit`` and ``pipeline.report`` so that training never imports
the report. Every picture shows the same test sample as rows of frames: input, truth, each
model's prediction, persistence (the last input frame repeated, the forecast a model must
beat), then the absolute errors of each forecast; one colour bar (with units) for the values and
one for the errors. Rows of a gridded field are drawn north up: ``lat`` gives each row's latitude,
and ascending latitudes (row 0 southernmost, as WeatherBench stores them) are flipped.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on these machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger(__name__)

PANEL_INCHES = 2.3   # width of one frame; large enough to see a 32 x 64 field's structure
DPI = 100


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def north_up(lat: Sequence[float] | np.ndarray | None) -> bool:
    """Whether rows must be flipped to put north at the top: latitudes ascending down the rows."""
    if lat is None or len(lat) < 2:
        return False
    lat = np.asarray(lat, dtype=float)
    return bool(lat[-1] > lat[0])


def persistence(inputs: np.ndarray, t_out: int) -> np.ndarray:
    """The last input frame repeated ``t_out`` times: (T_in, C, H, W) -> (t_out, C, H, W)."""
    return np.repeat(np.asarray(inputs)[-1:], t_out, axis=0)


def forecast_panels(inputs: np.ndarray, truth: np.ndarray, predictions: Mapping[str, np.ndarray], path: Path, *,
                    title: str = "", channel: int = 0, channel_name: str | None = None, units: str = "",
                    lat: Sequence[float] | None = None, max_frames: int = 6) -> Path:
    """One test sample, one channel. ``predictions``: label -> (T_out, C, H, W) forecast (persistence
    is added); all arrays in metric space (physical units for weather)."""
    inputs, truth = np.asarray(inputs), np.asarray(truth)
    forecasts = {k: np.asarray(v) for k, v in predictions.items()}
    forecasts["persistence"] = persistence(inputs, truth.shape[0])
    for name, arr in {"inputs": inputs, "truth": truth, **forecasts}.items():
        if arr.ndim != 4 or channel >= arr.shape[1]:
            raise ValueError(f"forecast arrays ({name}): expected (T, C, H, W) with channel {channel}, "
                              f"got shape {arr.shape}")
        if name != "inputs" and arr.shape != truth.shape:
            raise ValueError(f"forecast arrays ({name}): shape {arr.shape} differs from the truth's {truth.shape}")
    rows = [("input", inputs, "value"), ("truth", truth, "value")]
    rows += [(f"{k}", v, "value") for k, v in forecasts.items()]
    rows += [(f"|error|\n{k}", np.abs(v - truth), "error") for k, v in forecasts.items()]
    values = np.concatenate([a[:, channel].ravel() for _, a, kind in rows if kind == "value"])
    errors = np.concatenate([a[:, channel].ravel() for _, a, kind in rows if kind == "error"])
    vmin, vmax = (float(v) for v in np.nanpercentile(values, [1, 99]))
    emax = float(np.nanpercentile(errors, 99)) or 1.0
    n = min(max(a.shape[0] for _, a, _ in rows), max_frames)
    h, w = truth.shape[-2:]
    panel_h = PANEL_INCHES * h / w
    # A fixed layout in inches (panels, a title line above each, row labels left, colour bars
    # right): matplotlib's constrained layout took 2.4 of the 3.3 s a training stage spent drawing.
    left, right, top, bottom, gap_w, gap_h = 0.45, 1.2, 0.6, 0.1, 0.08, 0.3
    width = left + n * PANEL_INCHES + (n - 1) * gap_w + right
    height = top + len(rows) * panel_h + (len(rows) - 1) * gap_h + bottom
    fig, axes = plt.subplots(len(rows), n, figsize=(width, height), squeeze=False,
                             gridspec_kw={"left": left / width, "right": 1 - right / width, "top": 1 - top / height,
                                          "bottom": bottom / height, "wspace": gap_w / PANEL_INCHES,
                                          "hspace": gap_h / panel_h})
    origin = "lower" if north_up(lat) else "upper"
    images = {}
    for r, (label, arr, kind) in enumerate(rows):
        idx = np.linspace(0, arr.shape[0] - 1, num=min(n, arr.shape[0])).round().astype(int)
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.axis("off")
                continue
            kw = ({"cmap": "magma", "vmin": 0.0, "vmax": emax} if kind == "error"
                  else {"cmap": "coolwarm", "vmin": vmin, "vmax": vmax})
            images[kind] = ax.imshow(arr[idx[c], channel], origin=origin, interpolation="nearest", **kw)
            step = f"t={idx[c] + 1}" if label == "input" else f"+{idx[c] + 1}"
            ax.set_title(step, fontsize=8)
        axes[r][0].set_ylabel(label, fontsize=8)
    unit = f" ({units})" if units else ""
    for kind, name in (("value", "value"), ("error", "|error|")):
        kind_rows = [r for r, (_, _, k) in enumerate(rows) if k == kind]
        y1 = 1 - (top + kind_rows[0] * (panel_h + gap_h)) / height             # top of its first row
        y0 = 1 - (top + kind_rows[-1] * (panel_h + gap_h) + panel_h) / height  # bottom of its last
        cax = fig.add_axes(((width - right + 0.15) / width, y0, 0.12 / width, y1 - y0))
        fig.colorbar(images[kind], cax=cax).set_label(f"{name}{unit}", fontsize=8)
        cax.tick_params(labelsize=7)
    name = channel_name or f"channel {channel}"
    where = "north up" if lat is not None and len(lat) > 1 else "rows as stored"
    fig.suptitle(f"{title} - {name}{unit}; input frames t, forecast leads +k; {where}", fontsize=9)
    return save(fig, path)


def forecast_figure(inputs: np.ndarray, truth: np.ndarray, prediction: np.ndarray, path: Path, *,
                    title: str = "", channels: list[str] | None = None, units: Sequence[str] | None = None,
                    lat: Sequence[float] | None = None, max_frames: int = 6) -> Path:
    """One run's test sample, first channel: input, truth, prediction, persistence and their errors.
    Arrays are (T, C, H, W) in metric space."""
    return forecast_panels(inputs, truth, {"prediction": prediction}, path, title=title,
                           channel_name=channels[0] if channels else None,
                           units=units[0] if units else "", lat=lat, max_frames=max_frames)


def forecast_comparison_figure(first: Mapping[str, np.ndarray] | None, second: Mapping[str, np.ndarray] | None,
                               path: Path, *, title: str = "", labels: tuple[str, str] = ("SimVP+SVQ", "SimVP"),
                               channel: int = 0, max_frames: int = 6) -> Path | None:
    """Two runs' forecasts of the same first test sample (paper Fig. 15-17) beside persistence.
    ``first`` / ``second``: the runs' forecast npz contents (inputs, truth, prediction; optional
    lat, units, channels as training saves them); None when a run is missing (skipped, logged)."""
    if first is None or second is None:
        log.info("forecast figure %s skipped: %s run missing", Path(path).name,
                 labels[0] if first is None else labels[1])
        return None
    for name, arrays in zip(labels, (first, second)):
        missing = [k for k in ("inputs", "truth", "prediction") if k not in arrays]
        if missing:
            raise ValueError(f"forecast arrays of {name}: missing {missing}; expected inputs, truth, prediction")
    units = [str(u) for u in np.atleast_1d(first["units"])] if "units" in first else []
    names = [str(c) for c in np.atleast_1d(first["channels"])] if "channels" in first else []
    return forecast_panels(first["inputs"], first["truth"],
                           {labels[0]: first["prediction"], labels[1]: second["prediction"]}, path,
                           title=title, channel=channel,
                           channel_name=names[channel] if channel < len(names) else None,
                           units=units[channel] if channel < len(units) else "",
                           lat=first["lat"] if "lat" in first else None, max_frames=max_frames)


__all__ = ["save", "north_up", "persistence", "forecast_panels", "forecast_figure", "forecast_comparison_figure"]
