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


class WindowDataset(Dataset):
    """Windows of split ``split``: ``x`` (T_in, C, H, W), ``y`` (T_out, C, H, W), scaled to the
    model's space with the store's offset/scale."""

    def __init__(self, store: str | Path, split: str, cache_bytes: int = CACHE_BYTES):
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
        self.store = Path(store)
        self.split = split
        meta = verify_store(self.store)  # every split, not only this one: the references read train frames too
        self.T_in, self.T_out, self.step = int(meta["T_in"]), int(meta["T_out"]), int(meta["step"])
        self.channels = list(meta["channels"])
        self.metric_space = meta["metric_space"]
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

    def __getitem__(self, i: int):
        w = (self.raw_window(i).astype(np.float32) - self.offset) / self.scale
        w = torch.from_numpy(w)
        return w[: self.T_in], w[self.T_in:]

    def to_metric_space(self, x: np.ndarray) -> np.ndarray:
        """Model-space values -> the space metrics are computed in (physical units for weather)."""
        if self.metric_space == "physical":
            return x * self.scale + self.offset
        return x
