"""Forecast metrics with OpenSTL's conventions, so numbers compare with the SVQ paper.

Inputs are arrays ``(B, T, C, H, W)`` already in metric space: weather de-normalised to
physical units by the caller, TaxiBJ and video in [0, 1].

* MSE / MAE: mean over batch and time, then SUM over C x H x W (a per-frame error sum), as
  OpenSTL's ``MSE``/``MAE``. With ``spatial_norm=True`` (weather) the sum is divided by C*H*W,
  i.e. a plain per-pixel mean. RMSE is the square root of that MSE taken over the whole set
  (OpenSTL's ``RMSE``), not a mean of per-batch RMSEs.
* ``rmse_per_variable``: the RMSE of each variable (its channels: all pressure levels of one
  quantity) over the whole set, then the mean over variables. OpenSTL reports THIS as ``rmse``
  for multi-variable WeatherBench (WB-M, ``metric(..., channel_names=[r, t, u, v])``), where
  ``rmse`` here is one RMSE over all channels. (Its MSE and MAE there are per-variable means
  too, equal to the all-channel values since every variable has as many channels.)
* SSIM, PSNR, LPIPS: computed after clipping to [0, 1], one value per frame, averaged over frames.
  PSNR is ``20 log10(1 / sqrt(mse_frame))`` and, as in OpenSTL, ``inf`` for an exact frame, which
  makes the average ``inf``.
* SSIM: scikit-image ``structural_similarity`` per frame (7x7 uniform window, sample covariance).
  ``ssim_data_range`` defaults to 1. OpenSTL passes no data_range; with the scikit-image it pins
  (<= 0.19.3), float input then implies data_range = 2 (the float dtype range [-1, 1]), which
  quadruples SSIM's stabilising constants and raises the scores. Pass ``ssim_data_range=2.0`` to
  reproduce the paper's SSIM column exactly.
* LPIPS: ``lpips.LPIPS(net='alex')``, inputs mapped [0, 1] -> [-1, 1]. Its AlexNet backbone comes
  from torchvision's ImageNet checkpoint; without that file (no network here) the metric is NaN,
  never a number from a random backbone.

With ``keep_frames`` the accumulator also keeps every metric's per-frame values (one per window and
lead), so that two models can be compared window by window; their mean is the metric.

Differences from OpenSTL, deliberate: sums are accumulated in float64 (OpenSTL works in the input
dtype, float32 for PSNR), and the target is clipped to [0, 1] too (OpenSTL clips only the
prediction; targets of [0, 1] datasets are unchanged by it).
"""
from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pipeline.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METRIC_NAMES = ("mse", "mae", "rmse", "rmse_per_variable", "ssim", "psnr", "lpips")
_FRAME_METRICS = ("ssim", "psnr", "lpips")  # one value per frame, averaged
# Per-frame values kept under keep_frames, by metric: rmse has none of its own (it is sqrt of the mse mean)
_KEPT_AS = {"mse": "mse", "rmse": "mse", "mae": "mae", "ssim": "ssim", "psnr": "psnr", "lpips": "lpips"}
_ERROR_METRICS = ("mse", "rmse", "mae", "rmse_per_variable")
ALEXNET_CHECKPOINT = "alexnet-owt-7be5be79.pth"
_LPIPS_BATCH = 32  # frames per LPIPS forward pass; bounds memory for 256x256 video


# ---------------------------------------------------------------------------------------------
# input checks


def _as_pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    true = np.asarray(true)
    if pred.ndim != 5 or pred.shape != true.shape:
        raise DataError(
            f"metrics: pred and true must both have shape (B, T, C, H, W); got pred {pred.shape}, "
            f"true {true.shape}"
        )
    return pred, true


def _check_names(names: Any) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigError(
            f"metrics: expected a list of metric names among {list(METRIC_NAMES)}, got {names!r}"
        )
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ConfigError(
            f"metrics: unknown metric name(s) {unknown}; expected names among {list(METRIC_NAMES)}"
        )
    return list(dict.fromkeys(names))  # drop repeats, keep order


def _check_data_range(data_range: Any) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ConfigError(f"ssim_data_range: expected a positive number, got {data_range!r}")
    return float(data_range)


# ---------------------------------------------------------------------------------------------
# error metrics (unclipped)


def _error_sums(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    diff = pred.astype(np.float64) - true.astype(np.float64)
    return float(np.square(diff).sum()), float(np.abs(diff).sum())


def _frame_error_sums(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared and absolute error sums over (C, H, W): two (B, T) arrays."""
    diff = pred.astype(np.float64) - true.astype(np.float64)
    return np.square(diff).sum(axis=(2, 3, 4)), np.abs(diff).sum(axis=(2, 3, 4))


def _per_frame_norm(shape: tuple[int, ...], spatial_norm: bool) -> float:
    """What a total error sum is divided by: the frame count, times C*H*W for a per-pixel mean."""
    B, T, C, H, W = shape
    return B * T * (C * H * W if spatial_norm else 1)


def mse(pred: Any, true: Any, spatial_norm: bool = False) -> float:
    """Mean over (B, T) of the per-frame squared-error sum; per-pixel mean if ``spatial_norm``."""
    pred, true = _as_pair(pred, true)
    return _error_sums(pred, true)[0] / _per_frame_norm(pred.shape, spatial_norm)


def mae(pred: Any, true: Any, spatial_norm: bool = False) -> float:
    """Mean over (B, T) of the per-frame absolute-error sum; per-pixel mean if ``spatial_norm``."""
    pred, true = _as_pair(pred, true)
    return _error_sums(pred, true)[1] / _per_frame_norm(pred.shape, spatial_norm)


def rmse(pred: Any, true: Any, spatial_norm: bool = False) -> float:
    """``sqrt(mse(pred, true, spatial_norm))`` over the whole array, as OpenSTL's RMSE."""
    return float(np.sqrt(mse(pred, true, spatial_norm)))


def channel_variables(channels: Sequence[str]) -> list[str]:
    """The variable of each channel: its name without a trailing pressure level (``r150`` -> ``r``)."""
    return [re.sub(r"(?<=\D)\d+$", "", c) or c for c in channels]


def _per_variable_rmse(sse_c: np.ndarray, n_frames: int, frame_shape: tuple[int, ...], spatial_norm: bool,
                       variables: Sequence[str] | None) -> float:
    """Mean over variables of sqrt(mse over the variable's channels), from per-channel squared-error sums."""
    _, C, H, W = frame_shape
    labels = list(variables) if variables is not None else [str(c) for c in range(C)]
    if len(labels) != C:
        raise DataError(f"metrics: {len(labels)} channel variables given for {C} channels")
    out = []
    for v in dict.fromkeys(labels):
        idx = [c for c, lab in enumerate(labels) if lab == v]
        norm = n_frames * (len(idx) * H * W if spatial_norm else 1)
        out.append(np.sqrt(sse_c[idx].sum() / norm))
    return float(np.mean(out))


def rmse_per_variable(pred: Any, true: Any, spatial_norm: bool = False,
                      variables: Sequence[str] | None = None) -> float:
    """Mean over variables of each variable's RMSE (``variables``: one label per channel; None: one
    variable per channel), as OpenSTL's multi-variable ``rmse``."""
    pred, true = _as_pair(pred, true)
    sse_c = np.square(pred.astype(np.float64) - true.astype(np.float64)).sum(axis=(0, 1, 3, 4))
    return _per_variable_rmse(sse_c, pred.shape[0] * pred.shape[1], pred.shape[1:], spatial_norm, variables)


# ---------------------------------------------------------------------------------------------
# image-quality metrics (clipped to [0, 1], one value per frame)


def _clipped_frames(a: np.ndarray) -> np.ndarray:
    """(B, T, C, H, W) -> (B*T, C, H, W) float64 in [0, 1]."""
    B, T, C, H, W = a.shape
    return np.clip(a.astype(np.float64), 0.0, 1.0).reshape(B * T, C, H, W)


def _ssim_frames(pred: np.ndarray, true: np.ndarray, data_range: float) -> np.ndarray:
    # channel_axis=0 on (C, H, W) equals OpenSTL's (W, H, C) with multichannel=True: the
    # uniform window is symmetric, so the H/W transpose does not change the score.
    from skimage.metrics import structural_similarity  # only image datasets pay for scikit-image

    p, t = _clipped_frames(pred), _clipped_frames(true)
    return np.array([
        structural_similarity(pf, tf, channel_axis=0, data_range=data_range) for pf, tf in zip(p, t)
    ], dtype=np.float64)


def _psnr_frames(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    p, t = _clipped_frames(pred), _clipped_frames(true)
    frame_mse = np.square(p - t).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):  # an exact frame gives +inf, as in OpenSTL
        return -10.0 * np.log10(frame_mse)


def lpips_weights_path() -> str:
    """Where torchvision keeps the AlexNet ImageNet checkpoint that ``LPIPS(net='alex')`` loads."""
    # the file name of torchvision's AlexNet_Weights.IMAGENET1K_V1, written out: importing
    # torchvision to look it up costs seconds per stage (a test checks the two agree)
    return os.path.join(torch.hub.get_dir(), "checkpoints", ALEXNET_CHECKPOINT)


def lpips_available() -> bool:
    """True when the AlexNet checkpoint is on disk, so building LPIPS needs no download."""
    return os.path.isfile(lpips_weights_path())


@functools.lru_cache(maxsize=1)
def _pretrained_lpips() -> torch.nn.Module:
    import lpips as lpips_lib

    with warnings.catch_warnings():  # lpips still calls torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        return lpips_lib.LPIPS(net="alex", verbose=False).eval()


def load_lpips_model() -> torch.nn.Module | None:
    """The pretrained LPIPS(alex) model (built once), or None with a warning if weights are missing."""
    if not lpips_available():
        log.warning(
            "LPIPS unavailable: AlexNet weights not found at %s (no download is attempted); "
            "LPIPS is reported as NaN. Put the torchvision checkpoint there to enable it.",
            lpips_weights_path(),
        )
        return None
    return _pretrained_lpips()


def _lpips_frames(pred: np.ndarray, true: np.ndarray, model: torch.nn.Module) -> np.ndarray:
    C = pred.shape[2]
    if C not in (1, 3):
        raise ConfigError(
            f"metrics: lpips needs 1- or 3-channel frames, got C={C}; drop 'lpips' from the "
            f"metric list for this dataset"
        )
    p, t = _clipped_frames(pred), _clipped_frames(true)
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(p), _LPIPS_BATCH):
            pb = torch.as_tensor(p[i:i + _LPIPS_BATCH], dtype=torch.float32, device=device) * 2 - 1
            tb = torch.as_tensor(t[i:i + _LPIPS_BATCH], dtype=torch.float32, device=device) * 2 - 1
            if C == 1:  # grey frames as RGB, which is what LPIPS' input scaling broadcasts to anyway
                pb, tb = pb.repeat(1, 3, 1, 1), tb.repeat(1, 3, 1, 1)
            out.append(model(pb, tb).reshape(-1).double().cpu().numpy())
    return np.concatenate(out)


def ssim(pred: Any, true: Any, data_range: float = 1.0) -> float:
    """Mean per-frame SSIM after clipping both inputs to [0, 1]."""
    pred, true = _as_pair(pred, true)
    return float(_ssim_frames(pred, true, _check_data_range(data_range)).mean())


def psnr(pred: Any, true: Any) -> float:
    """Mean per-frame ``20 log10(1 / sqrt(mse))`` after clipping to [0, 1] (inf if a frame is exact)."""
    pred, true = _as_pair(pred, true)
    return float(_psnr_frames(pred, true).mean())


def lpips(pred: Any, true: Any, lpips_model: torch.nn.Module | None = None) -> float:
    """Mean per-frame LPIPS(alex) after clipping; NaN (with a warning) if weights are unavailable.

    ``lpips_model`` overrides the pretrained model (tests pass ``LPIPS(pnet_rand=True)``).
    """
    pred, true = _as_pair(pred, true)
    model = lpips_model if lpips_model is not None else load_lpips_model()
    if model is None:
        return float("nan")
    return float(_lpips_frames(pred, true, model).mean())


# ---------------------------------------------------------------------------------------------
# streaming


class MetricAccumulator:
    """Metrics over many batches, equal to computing them on the concatenated arrays.

    Keeps float64 error sums and per-frame score sums; ``compute()`` divides by the frame count,
    so batch sizes may differ. All batches must share (T, C, H, W). With ``keep_frames`` it also
    keeps each frame's values (``frame_values()``), for paired comparisons window by window.
    """

    def __init__(self, names: Sequence[str], spatial_norm: bool,
                 lpips_model: torch.nn.Module | None = None, ssim_data_range: float = 1.0,
                 keep_frames: bool = False, variables: Sequence[str] | None = None):
        self.names = _check_names(names)
        self.variables = None if variables is None else list(variables)  # per channel, for rmse_per_variable
        self._sse_c: np.ndarray | None = None  # per-channel squared-error sums, only for rmse_per_variable
        self.spatial_norm = bool(spatial_norm)
        self.ssim_data_range = _check_data_range(ssim_data_range)
        self.keep_frames = bool(keep_frames)
        self._lpips_model = lpips_model
        if "lpips" in self.names and lpips_model is None:
            self._lpips_model = load_lpips_model()  # None -> NaN, warned once here
        self._frame_shape: tuple[int, ...] | None = None
        self._n_frames = 0
        self._sse = 0.0
        self._sae = 0.0
        self._frame_sums = {n: 0.0 for n in _FRAME_METRICS}
        # metric -> one float32 (B, T) block per batch; empty (nothing kept) without keep_frames
        # rmse_per_variable keeps nothing per frame: it is no mean over frames
        self._frames: dict[str, list[np.ndarray]] = (
            {_KEPT_AS[n]: [] for n in self.names if n in _KEPT_AS} if self.keep_frames else {})

    def update(self, pred: Any, true: Any) -> None:
        pred, true = _as_pair(pred, true)
        if self._frame_shape is None:
            self._frame_shape = pred.shape[1:]
        elif pred.shape[1:] != self._frame_shape:
            raise DataError(
                f"metrics: batch has (T, C, H, W) = {pred.shape[1:]}, earlier batches had "
                f"{self._frame_shape}; all batches of one evaluation must match"
            )
        if pred.shape[0] == 0:
            return
        self._n_frames += pred.shape[0] * pred.shape[1]
        if "rmse_per_variable" in self.names:
            se_c = np.square(pred.astype(np.float64) - true.astype(np.float64)).sum(axis=(0, 1, 3, 4))
            self._sse_c = se_c if self._sse_c is None else self._sse_c + se_c
        if set(_ERROR_METRICS) & set(self.names):
            if self.keep_frames:  # per-frame sums only when kept: the plain total is cheaper
                se, ae = _frame_error_sums(pred, true)
                self._sse += float(se.sum())
                self._sae += float(ae.sum())
                pixels = np.prod(pred.shape[2:]) if self.spatial_norm else 1  # compute()'s normalisation
                self._keep("mse", se / pixels)
                self._keep("mae", ae / pixels)
            else:
                sse, sae = _error_sums(pred, true)
                self._sse += sse
                self._sae += sae
        if "ssim" in self.names:
            self._add_frames("ssim", _ssim_frames(pred, true, self.ssim_data_range))
        if "psnr" in self.names:
            self._add_frames("psnr", _psnr_frames(pred, true))
        if "lpips" in self.names and self._lpips_model is not None:
            self._add_frames("lpips", _lpips_frames(pred, true, self._lpips_model))
        elif "lpips" in self._frames:
            self._keep("lpips", np.full(pred.shape[:2], np.nan))  # unavailable, as compute() reports it

    def _add_frames(self, name: str, frames: np.ndarray) -> None:
        """One batch's per-frame scores (B*T,) into the score sum, and kept."""
        self._frame_sums[name] += float(frames.sum())
        self._keep(name, frames)

    def _keep(self, name: str, frames: np.ndarray) -> None:
        if name in self._frames:
            self._frames[name].append(frames.reshape(-1, self._frame_shape[0]).astype(np.float32))

    def partial_sums(self) -> dict[str, Any]:
        """The running sums, to add into another accumulator (evaluation split across processes)."""
        return {"frame_shape": self._frame_shape, "n_frames": self._n_frames, "sse": self._sse,
                "sae": self._sae, "frame_sums": dict(self._frame_sums), "frames": self.frame_values(),
                "sse_c": None if self._sse_c is None else self._sse_c.tolist()}

    def add_partial_sums(self, sums: dict[str, Any]) -> None:
        if sums["n_frames"] == 0:
            return
        if self._frame_shape is None:
            self._frame_shape = tuple(sums["frame_shape"])
        elif tuple(sums["frame_shape"]) != tuple(self._frame_shape):
            raise DataError(f"metrics: partial sums over (T, C, H, W) = {sums['frame_shape']} cannot be "
                            f"added to sums over {self._frame_shape}")
        self._n_frames += sums["n_frames"]
        self._sse += sums["sse"]
        self._sae += sums["sae"]
        if sums.get("sse_c") is not None:
            sse_c = np.asarray(sums["sse_c"], dtype=np.float64)
            self._sse_c = sse_c if self._sse_c is None else self._sse_c + sse_c
        for n, v in sums["frame_sums"].items():
            self._frame_sums[n] += v
        for n, blocks in self._frames.items():  # after this one's windows: shards come in rank order
            blocks.append(sums["frames"][n])

    def frame_values(self) -> dict[str, np.ndarray]:
        """The kept per-frame values (``keep_frames``; else empty): metric -> float32 (windows, T), windows in
        the order added. Errors are per-frame sums (per-pixel means with ``spatial_norm``), scores as averaged;
        each array's mean is ``compute()``'s value. rmse is sqrt of the mean of "mse", kept for either name."""
        return {n: np.concatenate(blocks) for n, blocks in self._frames.items() if blocks}

    def compute(self) -> dict[str, float]:
        if self._n_frames == 0:
            raise DataError("metrics: compute() called before any non-empty batch was added")
        T, C, H, W = self._frame_shape
        norm = self._n_frames * (C * H * W if self.spatial_norm else 1)
        values = {
            "mse": self._sse / norm,
            "mae": self._sae / norm,
            "rmse": float(np.sqrt(self._sse / norm)),
        }
        if "rmse_per_variable" in self.names:
            values["rmse_per_variable"] = _per_variable_rmse(self._sse_c, self._n_frames, self._frame_shape,
                                                             self.spatial_norm, self.variables)
        for n in _FRAME_METRICS:
            values[n] = self._frame_sums[n] / self._n_frames
        if self._lpips_model is None:
            values["lpips"] = float("nan")
        return {n: float(values[n]) for n in self.names}


def evaluation_accumulator(names: Sequence[str], metric_space: str, keep_frames: bool = False,
                           channels: Sequence[str] | None = None) -> MetricAccumulator:
    """The accumulator every test evaluation uses (trained runs and reference forecasts alike):
    per-pixel means for physical-unit (weather) data, OpenSTL's per-frame sums otherwise, and
    SSIM with data_range 2, what the scikit-image version behind the paper's numbers used. ``channels``
    (the store's channel names) group channels into variables for ``rmse_per_variable``."""
    return MetricAccumulator(list(names), spatial_norm=metric_space == "physical", ssim_data_range=2.0,
                             keep_frames=keep_frames,
                             variables=None if channels is None else channel_variables(channels))


def compute_metrics(pred: Any, true: Any, names: Sequence[str], spatial_norm: bool,
                    lpips_model: torch.nn.Module | None = None,
                    ssim_data_range: float = 1.0) -> dict[str, float]:
    """The named metrics (among mse, mae, rmse, ssim, psnr, lpips) of one pair of arrays."""
    acc = MetricAccumulator(names, spatial_norm, lpips_model=lpips_model,
                            ssim_data_range=ssim_data_range)
    acc.update(pred, true)
    return acc.compute()
