"""A PyTorch Dataset of (input, target) windows read by position from a Zarr store.

The store is opened lazily, once per process: DataLoader workers each open their own handle
(the handle is dropped when the dataset is pickled), and no dask is involved in the training
loop. Small splits are read into memory once per process, since decompressing the same frames
for every overlapping window would dominate a CPU epoch. A dataset is built only on a store that
proves it is whole (``verify_store``): Zarr reads a lost chunk as NaN frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from pipeline.core.errors import DataError
from pipeline.data.prepared import SPLITS
from pipeline.data.store import verify_store

CACHE_BYTES = 512 * 2**20


def loader_options(num_workers: int, device: torch.device) -> dict:
    """DataLoader settings that keep a GPU fed: workers that live across epochs, and on CUDA
    page-locked batches (asynchronous copies) with a few batches prefetched per worker."""
    cuda = device.type == "cuda"
    opts = {"num_workers": num_workers, "pin_memory": cuda}
    if num_workers > 0:
        opts |= {"persistent_workers": True, "prefetch_factor": 4 if cuda else 2}
    return opts


SPLIT_SCALINGS = ("train", "own", "own_both")


class WindowDataset(Dataset):
    """Windows of split ``split``: ``x`` (T_in, C, H, W), ``y`` (T_out, C, H, W), scaled to the
    model's space with the store's offset/scale.

    ``split_scaling`` (z-scored stores only; the training split always uses its own statistics):

    * ``train``: every split scaled, and converted back, with the training statistics (ours);
    * ``own``: a validation/test split scaled with its own per-channel mean and std, inputs and
      targets alike, and converted back with the training statistics: the public weather loader
      (openstl/datasets/dataloader_weather.py) for single-variable WeatherBench;
    * ``own_both``: scaled and converted back with the split's own statistics: the same loader's
      multi-variable branch (WB-M), which replaces the statistics it is given by its own.
    """

    def __init__(self, store: str | Path, split: str, cache_bytes: int = CACHE_BYTES,
                 split_scaling: str = "train"):
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split_scaling not in SPLIT_SCALINGS:
            raise DataError(f"unknown split_scaling {split_scaling!r}; expected one of {SPLIT_SCALINGS}")
        self.store = Path(store)
        self.split = split
        meta = verify_store(self.store)  # every split, not only this one: the references read train frames too
        self.T_in, self.T_out, self.step = int(meta["T_in"]), int(meta["T_out"]), int(meta["step"])
        self.channels = list(meta["channels"])
        self.metric_space = meta["metric_space"]
        self.scaling = meta.get("scaling")
        self.offset = np.asarray(meta["offset"], dtype=np.float32)[:, None, None]
        self.scale = np.asarray(meta["scale"], dtype=np.float32)[:, None, None]
        group = zarr.open_group(self.store, mode="r")[split]
        self.starts = np.asarray(group["starts"][:], dtype=np.int64)
        self.frame_shape = tuple(group["frames"].shape[1:])
        nbytes = group["frames"].nbytes
        self._cache = nbytes <= cache_bytes
        self._frames = None
        # stores written before window_offsets existed hold only k * step windows
        offsets = meta.get("window_offsets") or [k * self.step for k in range(self.T_in + self.T_out)]
        self._offsets = np.asarray(offsets, dtype=np.int64)
        # model space in (inputs, targets) and back (to_metric_space); only `own*` make them differ
        self.in_offset, self.in_scale = self.offset, self.scale
        self.split_scaling = split_scaling
        if split_scaling != "train" and split != "train":
            if self.scaling != "zscore":
                raise DataError(f"split_scaling {split_scaling!r} needs a z-scored store; {self.store} has "
                                f"{self.scaling!r} scaling (the same constants for every split)")
            self.in_offset, self.in_scale = self._own_statistics()
            if split_scaling == "own_both":
                self.offset, self.scale = self.in_offset, self.in_scale

    @property
    def offsets(self) -> np.ndarray:
        """Each window's frames relative to its start: T_in inputs, then T_out targets."""
        return self._offsets

    def __len__(self) -> int:
        return len(self.starts)

    def lead_hours(self) -> list[float] | None:
        """Hours from the last input frame to each target frame, from the split's timestamps (the
        first window's: every window has the same offsets); None for a store without timestamps
        (video) or an empty split. WB-M's uneven leads come out uneven."""
        if not len(self.starts):
            return None
        import xarray as xr

        try:  # chunks=None: the small time axis read directly
            times = xr.open_zarr(self.store, group=self.split, consolidated=False, chunks=None)
        except Exception:  # noqa: BLE001 - no readable timestamps: no hours
            return None
        if "time" not in times.variables:
            return None
        t = times["time"].values[self.starts[0] + self._offsets]
        out = []
        for v in t[self.T_in:]:
            d = v - t[self.T_in - 1]  # numpy timedelta64 for standard dates, timedelta for cftime ones
            out.append(float(d / np.timedelta64(1, "s") if isinstance(d, np.timedelta64) else d.total_seconds()) / 3600)
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_frames"] = None  # each worker opens (or loads) its own
        return state

    def _array(self):
        if self._frames is None:
            arr = zarr.open_group(self.store, mode="r")[self.split]["frames"]
            self._frames = arr[:] if self._cache else arr
        return self._frames

    def raw_window(self, i: int) -> np.ndarray:
        """Window ``i`` in raw units, (T_in + T_out, C, H, W)."""
        idx = self.starts[i] + self._offsets
        arr = self._array()
        if isinstance(arr, np.ndarray):
            return arr[idx]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        if hi - lo <= 2 * len(idx):  # one slice read is ~3x faster than a point read per frame
            return arr[lo:hi][idx - lo]
        return arr.oindex[idx]

    def _own_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """This split's per-channel mean and std over all its frames, in float64 as the store
        writer computes the training ones (the public loader: over the split's time range)."""
        arr = zarr.open_group(self.store, mode="r")[self.split]["frames"]
        n = arr.shape[0]
        total, sq = np.zeros(arr.shape[1]), np.zeros(arr.shape[1])
        step = max(1, CACHE_BYTES // max(1, arr.nbytes // max(n, 1)))
        for lo in range(0, n, step):
            block = arr[lo:lo + step].astype(np.float64)
            total += block.sum(axis=(0, 2, 3))
            sq += np.square(block).sum(axis=(0, 2, 3))
        count = n * arr.shape[2] * arr.shape[3]
        mean = total / count
        std = np.sqrt(np.maximum(sq / count - mean ** 2, 0.0))
        if not np.all(std > 0):
            raise DataError(f"{self.store} [{self.split}]: split statistics unusable (std {std}): constant data")
        return mean.astype(np.float32)[:, None, None], std.astype(np.float32)[:, None, None]

    def __getitem__(self, i: int):
        w = (self.raw_window(i).astype(np.float32) - self.in_offset) / self.in_scale
        w = torch.from_numpy(w)
        return w[: self.T_in], w[self.T_in:]

    def to_metric_space(self, x: np.ndarray) -> np.ndarray:
        """Model-space values -> the space metrics are computed in (physical units for weather)."""
        if self.metric_space == "physical":
            return x * self.scale + self.offset
        return x
