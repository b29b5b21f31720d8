"""Reading KittiCaltech: KITTI's hickle files for train and validation, the Caltech test
videos (OpenSTL's cache, .seq files or frame folders) for test (rules in ``kittical/__init__.py``)."""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.hkl import read_hkl
from pipeline.data.prepared import Prepared, Split
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import backward_starts, find_dir, lazy_stack, open_image
from pipeline.data.sources.kittical.seq import seq_frames
from pipeline.data.sources.kittical.settings import KittiCalSettings

NAME = "kittical"
KITTI_DIR = "kitti_hkl"
CALTECH_DIR = "caltech"
CACHE = ("data_cache.npy", "indices_cache.npy")
CHANNELS = ["red", "green", "blue"]
VIDEO_EXTS = {".avi", ".mp4", ".mkv", ".mov", ".mpg", ".mpeg", ".wmv", ".m4v"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


def _kitti_dir(raw_dir: Path) -> Path:
    return find_dir(Path(raw_dir) / KITTI_DIR, lambda d: (d / "X_train.hkl").is_file(),
                    "KITTI hickle files (X_train.hkl)")


def _load_hkl(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: missing KITTI hickle file (PredNet's kitti_data.zip)")
    return read_hkl(path)  # h5py only: hickle.load would unpickle what the file says


def _run_ids(names: Sequence) -> np.ndarray:
    """Clip id per frame: a new id wherever the source name changes."""
    ids = np.zeros(len(names), dtype=np.int64)
    for i in range(1, len(names)):
        ids[i] = ids[i - 1] + (names[i] != names[i - 1])
    return ids


def _kitti_split(folder: Path, split: str, size: tuple[int, int], seq_len: int) -> tuple[Split, dict]:
    x_path, s_path = folder / f"X_{split}.hkl", folder / f"sources_{split}.hkl"
    frames = _load_hkl(x_path)
    sources = _load_hkl(s_path)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 \
            or frames.shape[1:] != (*size, 3):
        shape = getattr(frames, "shape", None)
        raise DataError(f"{x_path}: expected uint8 frames shaped (N, {size[0]}, {size[1]}, 3), got "
                        f"{type(frames).__name__} {shape} {getattr(frames, 'dtype', '')}")
    sources = list(np.asarray(sources).tolist()) if isinstance(sources, np.ndarray) else sources
    if not isinstance(sources, list) or len(sources) != len(frames):
        raise DataError(f"{s_path}: expected one source name per frame of {x_path.name} "
                        f"({len(frames)}), got {type(sources).__name__} of length "
                        f"{len(sources) if hasattr(sources, '__len__') else '?'}")
    clips = _run_ids(sources)
    starts = backward_starts(clips, seq_len, seq_len)
    info = {"files": [str(x_path), str(s_path)], "frames": len(frames),
            "recordings": int(clips[-1] + 1) if len(clips) else 0, "windows": int(len(starts))}
    return Split(frames=frames.transpose(0, 3, 1, 2), starts=starts), info


def _process(image: np.ndarray, size: tuple[int, int], bgr: bool) -> np.ndarray:
    """PredNet's process_im: resize to the target height keeping the aspect, centre-crop the
    width; then round to uint8, channels first."""
    from skimage.transform import resize

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    width = int(np.round(size[0] / image.shape[0] * image.shape[1]))
    if width < size[1]:
        raise DataError(f"frame of {image.shape[1]}x{image.shape[0]} is too narrow to give "
                        f"{size[1]}x{size[0]} after resizing to height {size[0]}")
    out = resize(image, (size[0], width), preserve_range=True)
    d = (width - size[1]) // 2
    out = np.clip(np.rint(out[:, d:d + size[1]]), 0, 255).astype(np.uint8)
    if bgr:
        out = out[..., ::-1]
    return out.transpose(2, 0, 1)


def _read_seq_frame(item: tuple[str, int, int], size: tuple[int, int], bgr: bool) -> np.ndarray:
    from PIL import Image

    path, offset, length = item
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    try:
        with Image.open(io.BytesIO(data)) as im:
            image = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DataError(f"{path}: jpg frame at byte {offset} cannot be decoded ({exc})") from exc
    return _process(image, size, bgr)


def _read_image_frame(path: Path, size: tuple[int, int], bgr: bool) -> np.ndarray:
    return _process(open_image(path), size, bgr)


def _caltech_split(root: Path, s: KittiCalSettings) -> tuple[Split, dict]:
    size, seq_len = s.image_size, s.T_in + s.T_out
    every = s.caltech_frame_step
    if not root.is_dir():
        raise DataError(f"{root}: missing Caltech test folder (sets of .seq videos, pre-extracted "
                        f"frame folders, or OpenSTL's {CACHE[0]} + {CACHE[1]})")
    cache, indices = root / CACHE[0], root / CACHE[1]
    if cache.is_file() or indices.is_file():
        return _caltech_cache(cache, indices, s)
    items, clips, videos, kinds = [], [], [], {"seq": 0, "frames": 0}
    for set_name in sorted(os.listdir(root)):
        set_dir = root / set_name
        if not set_dir.is_dir():
            continue
        for entry in sorted(os.listdir(set_dir)):
            path = set_dir / entry
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
                kept = [(str(p),) for i, p in enumerate(files) if (i + 1) % every == 0]
                kinds["frames"] += 1
            elif path.suffix.lower() == ".seq":
                kept = [(str(path), off, n) for i, (off, n) in enumerate(seq_frames(path))
                        if (i + 1) % every == 0]
                kinds["seq"] += 1
            elif path.suffix.lower() in VIDEO_EXTS:
                raise DataError(f"{path}: decoding {path.suffix} videos needs OpenCV, which is not "
                                f"installed; extract its frames (e.g. ffmpeg -i {entry} "
                                f"{path.with_suffix('')}/%05d.png) into a folder of the same name")
            else:
                continue
            items += kept
            clips += [len(videos)] * len(kept)
            videos.append(f"{set_name}/{entry}")
    if not items:
        raise DataError(f"{root}: no Caltech frames found in <set>/<video>.seq files or "
                        f"<set>/<video>/ frame folders")
    starts = backward_starts(clips, seq_len, seq_len)
    bgr = s.caltech_channel_order == "bgr"
    frames = lazy_stack(items, partial(_read_item, size=size, bgr=bgr), (3, *size))
    info = {"root": str(root), "input": kinds, "videos": len(videos), "frames": len(items),
            "windows": int(len(starts)), "frame_step": every}
    return Split(frames=frames, starts=starts), info


def _read_item(item: tuple, size: tuple[int, int], bgr: bool) -> np.ndarray:
    if len(item) == 3:
        return _read_seq_frame(item, size, bgr)
    return _read_image_frame(Path(item[0]), size, bgr)


def _caltech_cache(cache: Path, indices: Path, s: KittiCalSettings) -> tuple[Split, dict]:
    size, seq_len = s.image_size, s.T_in + s.T_out
    for p in (cache, indices):
        if not p.is_file():
            raise DataError(f"{p}: missing; OpenSTL's Caltech cache needs both {CACHE[0]} and {CACHE[1]}")
    try:
        data = np.load(cache, mmap_mode="r", allow_pickle=False)
        starts = np.sort(np.load(indices, allow_pickle=False).astype(np.int64).ravel())
    except (OSError, ValueError) as exc:
        raise DataError(f"{cache.parent}: cannot read OpenSTL's Caltech cache ({exc})") from exc
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (*size, 3):
        raise DataError(f"{cache}: expected uint8 frames shaped (N, {size[0]}, {size[1]}, 3), got "
                        f"{data.dtype} {data.shape}")
    if len(starts) == 0 or starts[0] < 0 or starts[-1] + seq_len > len(data) \
            or np.any(np.diff(starts) < seq_len):
        raise DataError(f"{indices}: starts are not disjoint windows of {seq_len} frames within "
                        f"{len(data)} frames; the cache was made for another T_in + T_out")
    frames = data.transpose(0, 3, 1, 2)
    if s.caltech_channel_order == "rgb":
        frames = frames[:, ::-1]  # the cache holds cv2's BGR frames
    info = {"root": str(cache.parent), "input": "openstl_cache", "frames": int(len(data)),
            "windows": int(len(starts))}
    return Split(frames=frames, starts=starts), info


def load(raw_dir: Path, settings: Any) -> Prepared:
    s = data_settings(KittiCalSettings, settings)
    raw_dir = Path(raw_dir)
    seq_len = s.T_in + s.T_out
    kitti = _kitti_dir(raw_dir)
    train, train_info = _kitti_split(kitti, "train", s.image_size, seq_len)
    val, val_info = _kitti_split(kitti, "val", s.image_size, seq_len)
    test, test_info = _caltech_split(raw_dir / CALTECH_DIR, s)
    return Prepared(
        splits={"train": train, "val": val, "test": test}, channels=list(CHANNELS),
        T_in=s.T_in, T_out=s.T_out, step=1, scaling="fixed", metric_space="model",
        offset=[0.0] * 3, scale=[255.0] * 3,
        attrs={"source": NAME, "splits": {"train": train_info, "val": val_info, "test": test_info},
               "caltech_channel_order": s.caltech_channel_order,
               "window_rule": "OpenSTL backward scan, non-overlapping windows per recording"})
