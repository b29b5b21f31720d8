"""Frame helpers shared by the traffic and video sources: locating unpacked folders, OpenSTL's
backward window scan, lazily stacked image files, resizing, and moving-blob content for twins."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError


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


def fetch_release(raw_dir: Path, url: str, sha256: str | None, archive: str, folder: str,
                  has: Callable[[Path], bool], what: str) -> list:
    """Download a release archive into ``raw_dir``, unpack it into ``raw_dir/folder`` and check
    that it holds ``what`` (the folder ``has`` accepts)."""
    from pipeline.data.download import fetch_archive

    raw_dir = Path(raw_dir)
    result = fetch_archive(url, raw_dir / archive, raw_dir / folder, sha256=sha256)
    find_dir(raw_dir / folder, has, f"{what} inside {archive}")
    return [result]


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
    """Content for video twins, (n, height, width, channels) uint8: a static camera's textured,
    shaded background with ``blobs`` soft-edged ellipses (people, cars) moving in straight lines
    at 0.6-1 x ``speed`` pixels per frame and bouncing off the edges. Objects are darker or
    brighter than any background, so copying the last frame misplaces every one of them while
    the background, the objects' look and their constant velocities are learnable."""
    yy = np.arange(height, dtype=np.float32)[:, None] / height
    xx = np.arange(width, dtype=np.float32)[None, :] / width
    tint = rng.uniform(-10, 10, size=channels).astype(np.float32)
    background = np.full((height, width), 125.0, np.float32) + 25 * yy - 10 * xx
    for _ in range(6):  # faint low-frequency gratings: texture that copying the last frame keeps
        fy, fx = rng.uniform(-5, 5, size=2)
        background += rng.uniform(1.5, 3) * np.cos(2 * np.pi * (fy * yy + fx * xx) + rng.uniform(0, 2 * np.pi))
    frames = np.repeat((background[..., None] + tint)[None], n, axis=0)  # (n, H, W, C)
    size = np.array([height, width], dtype=np.float64)
    axes = rng.uniform(0.07, 0.16, size=(blobs, 2)) * min(height, width)
    axes[:, 0] *= 1.5  # upright, person-like
    pos = rng.uniform(axes, size - axes)
    angle = rng.uniform(0, 2 * np.pi, size=blobs)
    vel = rng.uniform(0.6, 1.0, size=(blobs, 1)) * speed * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    raw = pos[None] + vel[None] * np.arange(n)[:, None, None]  # (n, blobs, 2)
    path = (size - np.abs(np.mod(raw, 2 * size) - size)).astype(np.float32)  # bounce off edges
    colour = np.where(rng.random((blobs, 1)) < 0.5, rng.uniform(20, 55, size=(blobs, channels)),
                      rng.uniform(200, 240, size=(blobs, channels))).astype(np.float32)
    Y, X = np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]
    for b in range(blobs):
        ry, rx = axes[b]
        r = np.sqrt(((Y[None] - path[:, b, 0, None, None]) / ry) ** 2
                    + ((X[None] - path[:, b, 1, None, None]) / rx) ** 2)  # (n, H, W)
        alpha = 1 / (1 + np.exp(np.clip((r - 1) * min(ry, rx) / 1.0, -30, 30)))[..., None]  # ~1 px soft edge
        frames += alpha * (colour[b] - frames)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)
