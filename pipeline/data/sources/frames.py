"""Frame helpers shared by the traffic and video sources: locating unpacked folders, OpenSTL's
backward window scan, lazily stacked image files, resizing, and moving-blob content for twins."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import DataError


def find_dir(raw_dir: Path, has: Callable[[Path], bool], what: str, depth: int = 2) -> Path:
    """The one folder at most ``depth`` levels under ``raw_dir`` (itself included) that ``has``
    accepts: archives unpack with or without a top folder."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw folder does not exist (expected {what})")
    level, found = [raw_dir], []
    for _ in range(depth + 1):
        found = [d for d in level if has(d)]
        if found:
            break
        level = [c for d in level for c in sorted(d.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    if not found:
        raise DataError(f"{raw_dir}: no {what} found here or up to {depth} folders below")
    if len(found) > 1:
        raise DataError(f"{raw_dir}: several candidate folders for {what}: {[str(f) for f in found]}")
    return found[0]


def backward_starts(clip: Sequence[int], seq_len: int, jump: int | Sequence[int],
                    number: Sequence[int] | None = None) -> np.ndarray:
    """OpenSTL's window scan over concatenated clips, returned in ascending order.

    From the last frame backwards: the window ending at ``index`` is valid when its first frame
    has the same clip id (ids must be contiguous runs, so the whole window is in the clip) and,
    when ``number`` is given, the frame numbers differ by exactly ``seq_len - 1``. After a valid
    window the scan moves back ``jump`` (of the window's last frame) frames, otherwise one.
    """
    clip = [int(c) for c in clip]
    jumps = [int(jump)] * len(clip) if np.isscalar(jump) else [int(j) for j in jump]
    numbers = None if number is None else [int(n) for n in number]
    starts = []
    index = len(clip) - 1
    while index >= seq_len - 1:
        first = index - seq_len + 1
        if clip[index] == clip[first] and (numbers is None or numbers[index] - numbers[first] == seq_len - 1):
            starts.append(first)
            index -= jumps[index]
        else:
            index -= 1
    return np.asarray(starts[::-1], dtype=np.int64)


def _read_block(items: tuple, read: Callable[[Any], np.ndarray], frame_shape: tuple, dtype) -> np.ndarray:
    out = np.empty((len(items), *frame_shape), dtype=dtype)
    for i, item in enumerate(items):
        frame = read(item)
        if frame.shape != frame_shape:
            raise DataError(f"{item}: frame has shape {frame.shape}, expected {frame_shape}")
        out[i] = frame
    return out


def lazy_stack(items: Sequence, read: Callable[[Any], np.ndarray], frame_shape: tuple,
               dtype=np.uint8, block: int = 64):
    """A dask array (N, *frame_shape) whose frame i is ``read(items[i])``, read ``block`` at a
    time only when computed: the real video sets are far larger than memory."""
    import dask
    import dask.array as da

    frame_shape = tuple(int(s) for s in frame_shape)
    if not items:
        return np.zeros((0, *frame_shape), dtype=dtype)
    parts = []
    for i in range(0, len(items), block):
        chunk = tuple(items[i:i + block])
        task = dask.delayed(_read_block, pure=True)(chunk, read, frame_shape, dtype)
        parts.append(da.from_delayed(task, shape=(len(chunk), *frame_shape), dtype=dtype))
    return da.concatenate(parts, axis=0)


def open_image(path: Path | str) -> np.ndarray:
    """Decode an image file to (H, W) or (H, W, C) uint8, with a DataError naming a bad file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc


def resize_linear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize without anti-aliasing, pixel centres aligned (as ``cv2.resize``),
    rounded to uint8."""
    if image.shape[:2] == tuple(shape):
        return image
    from skimage.transform import resize

    out = resize(image.astype(np.float32), shape, order=1, mode="edge", anti_aliasing=False,
                 preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def blob_video(rng: np.random.Generator, n: int, height: int, width: int, channels: int,
               blobs: int = 3, speed: float = 3.0) -> np.ndarray:
    """Plausible moving content for twins: soft blobs bouncing on a shaded background,
    (n, height, width, channels) uint8."""
    yy = np.arange(height, dtype=np.float32)
    xx = np.arange(width, dtype=np.float32)
    base = rng.uniform(40, 90, size=channels).astype(np.float32)
    pos = rng.uniform([0, 0], [height, width], size=(blobs, 2))
    vel = rng.uniform(-speed, speed, size=(blobs, 2))
    radius = rng.uniform(0.06, 0.15, size=blobs) * min(height, width)
    colour = rng.uniform(100, 180, size=(blobs, channels)).astype(np.float32)
    size = np.array([height, width], dtype=np.float64)
    raw = pos[None] + vel[None] * np.arange(n)[:, None, None]  # (n, blobs, 2)
    path = (size - np.abs(np.mod(raw, 2 * size) - size)).astype(np.float32)  # bounce off edges
    r2 = (2 * radius ** 2).astype(np.float32)[None, :, None]
    # Gaussian blobs are separable: per frame and channel, (H x blobs) @ (blobs x W)
    gy = np.exp(-(yy[None, None] - path[:, :, 0:1]) ** 2 / r2)  # (n, blobs, H)
    gx = np.exp(-(xx[None, None] - path[:, :, 1:2]) ** 2 / r2)  # (n, blobs, W)
    rows = gy.transpose(0, 2, 1)[:, None] * colour.T[None, :, None, :]  # (n, C, H, blobs)
    frames = rows @ gx[:, None]  # (n, C, H, W)
    frames += (base[:, None, None] + 30 * (yy / height)[None, :, None] + 10 * (xx / width)[None, None, :])
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)
