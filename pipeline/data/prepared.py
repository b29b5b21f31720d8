"""The hand-off between a dataset source and the Zarr store writer.

Every source, whatever its raw format, reduces to the same thing per split: a stack of frames
``(N, C, H, W)`` in raw units (physical units for weather, uint8 pixels for video) and the
positions where a window may start. A window is ``frames[s + k * step]`` for ``k`` in
``range(T_in + T_out)``: this covers continuous series (weather), pre-cut samples (TaxiBJ) and
many videos concatenated (starts never cross a video boundary). A source may instead give the
window's frame ``offsets`` from its start (T_in + T_out increasing ints; WB-M's OpenSTL indices).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    frames: Any  # numpy or dask array, (N, C, H, W)
    starts: np.ndarray  # int64 window start positions into frames
    time: Any = None  # optional per-frame timestamps (datetime64), kept as a coordinate


@dataclass
class Prepared:
    """A dataset ready to be stored.

    ``scaling`` is an affine map to the model's input space, per channel:
    ``x_model = (x_raw - offset) / scale``. For z-scored weather it is (train mean, train std),
    computed by the store writer when ``scaling == "zscore"``; for fixed scalings the source sets
    ``offset``/``scale`` itself (TaxiBJ: -1 and 2, i.e. (x+1)/2; video: 0 and 255).
    ``metric_space`` says where metrics are computed: "physical" (de-normalised, weather) or
    "model" (the scaled [0, 1] space, as OpenSTL does for TaxiBJ and video).
    """

    splits: dict[str, Split]
    channels: list[str]
    T_in: int
    T_out: int
    step: int
    scaling: str  # "zscore" | "fixed"
    metric_space: str  # "physical" | "model"
    offset: list[float] | None = None
    scale: list[float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)  # provenance: sources, checksums, spans
    offsets: list[int] | None = None  # frames of a window from its start; None: k * step

    def window_offsets(self) -> list[int]:
        if self.offsets is not None:
            return [int(o) for o in self.offsets]
        return [k * self.step for k in range(self.T_in + self.T_out)]

    def window_length(self) -> int:
        return self.window_offsets()[-1] + 1


def window_starts(n_frames: int, T_in: int, T_out: int, step: int = 1, stride: int = 1,
                  offset: int = 0) -> np.ndarray:
    """Every start whose window fits in ``n_frames`` consecutive frames, ``stride`` apart."""
    length = (T_in + T_out - 1) * step + 1
    if n_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - length + 1, stride, dtype=np.int64) + offset
