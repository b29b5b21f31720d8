"""Write a ``Prepared`` dataset to one Zarr (v3) store, and read its metadata back.

Layout of ``<name>.zarr``::

    /            attrs: channels, T_in, T_out, step, offset, scale, metric_space, provenance, manifest
    /train       frames (frame, channel, y, x), starts (window), time (frame, optional)
    /val         same
    /test        same

Frames are kept in raw units (physical or uint8 pixels); the affine scaling to the model's space
is stored as attrs and applied by the window reader. Frames use Zarr sharding: one inner chunk
per frame (a window reads only its own frames) packed into shards of ~``SHARD_BYTES``, so a split
is a handful of files and DVC hashes the store quickly. The store is written next to its final
place and renamed in only when complete, so a failed run leaves no half-written store and never
destroys the previous one.

A store proves it is whole: ``manifest`` lists every file the writer left (all but the root
``zarr.json`` that holds it) with its size and CRC-32, and :func:`verify_store`, which every
reader of frames calls, names the first file missing or changed. Zarr itself would read an absent
chunk as its fill value (NaN frames, zero starts), so a lost file would otherwise train silently.
CRC-32 guards against lost and damaged files, not against deliberate edits.
"""
from __future__ import annotations

import json
import math
import shutil
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import zarr

from pipeline.core.errors import ConfigError, DataError, cut, shown
from pipeline.core.outputs import replace_dir, scratch
from pipeline.data.prepared import SPLITS, Prepared

if TYPE_CHECKING:
    import xarray as xr

SHARD_BYTES = 128 * 2**20  # big enough for few files, small enough for one dask task's memory
MANIFEST = "manifest"
CONNECT_TIMEOUT_S = 5  # data.dask_scheduler: distributed's default keeps retrying a dead address for 30 s


def write_store(prepared: Prepared, path: str | Path, *, scheduler: str | None = None) -> Path:
    """Write ``prepared`` to ``path`` atomically; z-score stats come from the train split."""
    path = Path(path)
    _check(prepared)
    offset, scale = _scaling(prepared)
    tmp = scratch(path)
    try:
        with _scheduler(scheduler):
            for split in SPLITS:
                ds = _split_dataset(prepared, split)
                frames = ds["frames"]
                shard = _shard_frames(frames.shape, frames.dtype.itemsize)
                ds = ds.chunk({"frame": shard})
                encoding = {"frames": {"chunks": (1, *frames.shape[1:]),
                                       "shards": (shard, *frames.shape[1:])}}
                write = ds.to_zarr(tmp, group=split, mode="w", zarr_format=3, consolidated=False,
                                   encoding=encoding, compute=False)
                _write_finite(write, ds["frames"].data, path, split)
        manifest = _manifest(tmp)  # before the root attrs: the root zarr.json is rewritten below
        root = zarr.open_group(tmp, mode="r+", zarr_format=3)
        root.attrs.update(_jsonable({
            "channels": list(prepared.channels),
            "T_in": prepared.T_in, "T_out": prepared.T_out, "step": prepared.step,
            "window_offsets": prepared.window_offsets(), "offset": offset, "scale": scale, "scaling": prepared.scaling,
            "metric_space": prepared.metric_space,
            "windows": {s: int(len(prepared.splits[s].starts)) for s in SPLITS},
            "provenance": prepared.attrs, MANIFEST: manifest,
        }))
        replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The root attrs of a store written by ``write_store`` (with a clear error if it is not one)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: Zarr store not found (run the preprocess stage first)")
    try:
        root = zarr.open_group(path, mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is not a group
        raise DataError(f"{path}: not a readable Zarr store ({exc})") from exc
    meta = dict(root.attrs)
    for key in ("channels", "T_in", "T_out", "step", "offset", "scale", "metric_space"):
        if key not in meta:
            raise DataError(f"{path}: store attrs lack {key!r}; rewrite it with the preprocess stage")
    return meta


def verify_store(path: str | Path) -> dict[str, Any]:
    """The store's root attrs, once every file its manifest lists is there with its size and CRC-32;
    else a DataError naming the first missing or changed file. A file already verified in this
    process and unchanged since (same inode, size and mtime) is not read again, so the datasets
    built per split and per seed cost one pass over the store."""
    path = Path(path)
    meta = read_meta(path)
    redo = f"rewrite it: dvc repro -f preprocess_{path.stem}"
    manifest = meta.get(MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        # absent chunks are legal (zarr skips all-fill chunks), so without the writer's list
        # nothing can tell a lost file from one never written
        raise DataError(f"{path}: store has no file manifest (written before stores recorded their "
                        f"files), so it cannot be checked whole; {redo}")
    for rel, (size, crc) in manifest["files"].items():
        file = path / rel
        try:
            st = file.stat()
        except FileNotFoundError:
            raise DataError(f"{file}: missing; the store's manifest lists it ({size} bytes): the store is "
                            f"incomplete; {redo}") from None
        if st.st_size != size:
            raise DataError(f"{file}: {st.st_size} bytes, the store's manifest says {size}: the file is "
                            f"corrupt; {redo}")
        key = str(file.absolute())
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, crc)
        if _VERIFIED.get(key) == seen:
            continue
        got = _crc32(file)
        if got != crc:
            raise DataError(f"{file}: CRC-32 {got:08x}, the store's manifest says {crc:08x}: the file is "
                            f"corrupt; {redo}")
        _VERIFIED[key] = seen
    return meta


_VERIFIED: dict[str, tuple] = {}  # file -> (device, inode, size, mtime, crc) it was verified with


def content_digest(path: str | Path) -> str:
    """SHA-256 of what a training reads from the store: each split's frames and window starts (dtype,
    shape, bytes) and the scaling. Independent of how Zarr laid the bytes out or where the store
    lives, so two machines that built the same store agree (``tests/data/test_sample_digests.py``)."""
    import hashlib

    meta = read_meta(path)
    group = zarr.open_group(Path(path), mode="r")
    h = hashlib.sha256(json.dumps({k: meta[k] for k in ("channels", "T_in", "T_out", "step", "offset", "scale")},
                                  sort_keys=True).encode())
    for split in SPLITS:
        for name in ("frames", "starts"):
            a = np.ascontiguousarray(group[split][name][:])
            h.update(f"{split}/{name} {a.dtype.str} {a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


CARD_KEYS = ("reader", "variables", "levels", "level_dim", "time", "box", "grid", "units", "calendar",
             "time_step", "step_in_time_steps", "frame_interval_hours")


def data_card(store: str | Path, dataset: str) -> dict[str, Any]:
    """What a forecast needs from a run's store, kept in its checkpoint (written by training)."""
    meta = read_meta(store)
    prov = meta.get("provenance") or {}
    return {"dataset": dataset, "channels": list(meta["channels"]), "offset": list(meta["offset"]),
            "scale": list(meta["scale"]), "metric_space": meta["metric_space"], "T_in": int(meta["T_in"]),
            "T_out": int(meta["T_out"]), "step": int(meta["step"]),
            "window_offsets": meta.get("window_offsets"),
            "provenance": {k: prov[k] for k in CARD_KEYS if k in prov}}


def display_info(meta: dict[str, Any]) -> dict[str, Any]:
    """What a picture of the frames needs: ``units`` per channel (physical units when the source
    recorded them; scaled data are in [0, 1]) and ``lat``, each row's latitude (the provenance's
    ``grid.lat``), or None."""
    prov = meta.get("provenance") or {}
    channels = list(meta["channels"])
    known = prov.get("units") or []
    if meta["metric_space"] != "physical":
        units = ["scaled, 0-1"] * len(channels)
    elif isinstance(known, dict):
        units = [str(known.get(ch, "")) for ch in channels]
    else:
        units = [str(u) for u in known] if len(known) == len(channels) else [""] * len(channels)
    lat = (prov.get("grid") or {}).get("lat")
    return {"units": units, "lat": [float(v) for v in lat] if lat else None}


# --------------------------------------------------------------------------------------------
def _check(p: Prepared) -> None:
    missing = [s for s in SPLITS if s not in p.splits]
    if missing:
        raise DataError(f"prepared dataset lacks split(s) {missing}")
    length = p.window_length()
    offs = p.window_offsets()
    if len(offs) != p.T_in + p.T_out or offs[0] != 0 or any(b <= a for a, b in zip(offs, offs[1:])):
        raise DataError(f"window offsets {offs}: expected T_in + T_out = {p.T_in + p.T_out} increasing "
                        f"frame offsets starting at 0")
    for name in SPLITS:
        split = p.splits[name]
        if split.frames.ndim != 4:
            raise DataError(f"split {name!r}: frames must be (N, C, H, W), got shape {split.frames.shape}")
        if split.frames.shape[1] != len(p.channels):
            raise DataError(f"split {name!r}: {split.frames.shape[1]} channels in frames but "
                            f"{len(p.channels)} channel names {p.channels}")
        starts = np.asarray(split.starts)
        if len(starts) == 0:
            raise DataError(f"split {name!r}: no complete window of {length} frames "
                            f"(T_in={p.T_in}, T_out={p.T_out}, step={p.step}) in "
                            f"{split.frames.shape[0]} frames")
        if starts.min() < 0 or starts.max() + length > split.frames.shape[0]:
            raise DataError(f"split {name!r}: window starts out of range for {split.frames.shape[0]} frames")


def _write_finite(write, frames, path: Path, split: str) -> None:
    """Run the delayed ``write`` and, in the same pass over each block (dask shares the keys), look
    for NaN or infinite frames: Zarr would store them, and a NaN validation split gives NaN losses
    that early stopping never takes as best. Integer (pixel) frames cannot hold them."""
    import dask
    import dask.array as da

    if not np.issubdtype(frames.dtype, np.inexact):
        dask.compute(write)
        return
    _, bad = dask.compute(write, ~da.isfinite(frames).all(axis=(1, 2, 3)))
    if bad.any():
        raise DataError(f"{path}: split {split!r} has NaN or infinite values in {int(bad.sum())} of "
                        f"{len(bad)} frames (first: frame {int(np.argmax(bad))}); expected finite frames")


def _manifest(root: Path) -> dict[str, Any]:
    files = {f.relative_to(root).as_posix(): [f.stat().st_size, _crc32(f)]
             for f in sorted(root.rglob("*")) if f.is_file() and f != root / "zarr.json"}
    return {"checksum": "crc32", "files": files}


def _crc32(file: Path, block: int = 16 * 2**20) -> int:
    crc = 0
    with open(file, "rb") as f:
        while chunk := f.read(block):
            crc = zlib.crc32(chunk, crc)
    return crc


def _scaling(p: Prepared) -> tuple[list[float], list[float]]:
    if p.scaling == "fixed":
        if p.offset is None or p.scale is None:
            raise DataError("fixed scaling needs offset and scale from the source")
        return [float(v) for v in p.offset], [float(v) for v in p.scale]
    if p.scaling != "zscore":
        raise DataError(f"unknown scaling {p.scaling!r}; expected 'zscore' or 'fixed'")
    import dask
    import dask.array as da  # here, not at the top: the training reader needs only read_meta

    frames = da.asarray(p.splits["train"].frames).astype("float64")
    mean = frames.mean(axis=(0, 2, 3))
    std = frames.std(axis=(0, 2, 3))
    mean, std = dask.compute(mean, std)
    if np.any(~np.isfinite(mean)) or np.any(std <= 0):
        raise DataError(f"train split statistics unusable (mean {mean}, std {std}): "
                        "constant or non-finite data")
    return [float(v) for v in mean], [float(v) for v in std]


def _split_dataset(p: Prepared, name: str) -> xr.Dataset:
    import dask.array as da
    import xarray as xr

    split = p.splits[name]
    frames = da.asarray(split.frames)
    data = {"frames": (("frame", "channel", "y", "x"), frames),
            "starts": (("window",), np.asarray(split.starts, dtype=np.int64))}
    coords = {}  # channel names live in the root attrs (v3 has no stable fixed-width string dtype)
    if split.time is not None:
        coords["time"] = (("frame",), np.asarray(split.time))
    return xr.Dataset(data, coords=coords)


def _shard_frames(shape, itemsize) -> int:
    per_frame = math.prod(shape[1:]) * itemsize
    return max(1, min(shape[0], SHARD_BYTES // per_frame))


@contextmanager
def _scheduler(address: str | None) -> Iterator[None]:
    """A dask distributed cluster when an address is given, the local threads otherwise."""
    import dask

    if not address:
        with dask.config.set(scheduler="threads"):
            yield
        return
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError, TypeError) as exc:  # refused, timed out (OSError), malformed address
        raise ConfigError(f"data.dask_scheduler: no dask scheduler reachable at {shown(address)} "
                          f"({type(exc).__name__}: {cut(str(exc), 200)})") from None
    with client, dask.config.set(scheduler=client.get):
        yield


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=_default))


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.datetime64, Path)):
        return str(o)
    return str(o)
