"""KTH Action as OpenSTL ships it (``kth_action.zip``): grayscale clips, 10 -> 20 frames.

Raw layout (what the release unpacks to, and what the sample twin writes)::

    <raw_dir>/[<one sub-folder>/]<action>/person<PP>_<action>_d<S>_uncomp/image_<NNNN>.jpg

with the six action folders boxing, handclapping, handwaving, walking, jogging, running, one
folder per clip (person PP = 01..25, scenario S = 1..4) and 160x120 frames numbered from 0001.
Only files whose name starts with ``image`` are frames, as in OpenSTL.

Rules (OpenSTL ``openstl/datasets/dataloader_kth.py``):

* A frame is channel 0 of the image (the release's jpgs are RGB with equal channels), resized to
  ``image_size`` x ``image_size`` with bilinear interpolation and no anti-aliasing (what
  ``cv2.resize`` does), rounded and stored as uint8: scaling "fixed", offset 0, scale 255,
  metrics in the model's [0, 1] space.
* A split's frames are its persons' clips concatenated, actions in the order above and clip
  folders sorted by name (OpenSTL uses the unsorted ``os.listdir`` order: same windows).
* Windows of ``L = T_in + T_out`` consecutive frames, found by OpenSTL's backward scan: a
  window ending at frame ``e`` is taken when its first frame lies in the same clip and their
  image numbers differ by exactly ``L - 1`` (no gap in the numbering); the scan then continues
  just before the window (boxing, handclapping, handwaving, walking: non-overlapping windows
  aligned to the END of each clip) or 3 frames earlier (jogging, running: stride 3); when no
  window is taken it moves back one frame. For a clip of ``n`` gap-free frames that is
  ``n // L`` windows in the first group and ``(n - L) // 3 + 1`` (``n >= L``) in the second.
* Splits: OpenSTL trains on persons 1-16 and tests on 17-25, validating on the test set. Here
  the three splits are disjoint person lists; the suggested validation holds out whole persons
  (train 1-14, val 15-16, test 17-25), so no clip is shared with training. Val windows follow
  the same rule as train and test.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "kth"), ``source`` is ignored):

* ``T_in``, ``T_out``: input and target frames (paper: 10 and 20).
* ``image_size``: side of the square frames (paper: 128).
* ``train_persons``, ``val_persons``, ``test_persons``: disjoint, non-empty lists of person
  numbers in 1..25.
* ``url`` (default: OpenSTL's v0.1.0 release of ``kth_action.zip``), ``sha256`` (default none).

Sample knobs (``datasets.<name>.sample``, all optional): ``frames`` (base clip length, default 36;
clips get 0-10 extra frames so lengths differ), ``scenarios`` (clips per person and action,
default 1), ``persons_per_split`` (default 1: the first persons of each list).

This module also holds helpers shared by the other video sources (settings checks, OpenSTL's
backward window scan, lazy image stacks, moving-blob twins).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import DataError, Prepared, Split
from pipeline.errors import ConfigError

NAME = "kth"
URL = "https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/kth_action.zip"
ARCHIVE = "kth_action.zip"
# OpenSTL's two groups: non-overlapping windows vs a stride of 3 (fast actions, short clips).
ACTIONS_NONOVERLAP = ("boxing", "handclapping", "handwaving", "walking")
ACTIONS_STRIDE3 = ("jogging", "running")
ACTIONS = ACTIONS_NONOVERLAP + ACTIONS_STRIDE3
RAW_SIZE = (120, 160)  # (height, width) of the release's frames
_CLIP = re.compile(r"person(\d{2})_")
_FRAME = re.compile(r"image_(\d{4})")


# ---------------------------------------------------------------------------------------------
# Helpers shared by the video sources (kth, human, kittical) and taxibj.

REQUIRED = object()
PASSED_IN = ("name", "source")  # put in the data settings by the caller / the dataset section


def check_settings(settings: Any, spec: Mapping[str, tuple[Any, Callable[[Any, str], Any]]],
                   where: str) -> dict[str, Any]:
    """Validate ``settings`` against ``spec`` (key -> (default or REQUIRED, checker)).

    Unknown or missing keys and bad values raise ConfigError naming ``<where>.<key>``.
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(spec))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting; expected keys {sorted(spec)}")
    out = {}
    for key, (default, check) in spec.items():
        if key in settings:
            out[key] = check(settings[key], f"{where}.{key}")
        elif default is REQUIRED:
            raise ConfigError(f"{where}.{key}: missing required setting")
        else:
            out[key] = default
    return out


def data_settings(settings: Any, spec: Mapping[str, tuple[Any, Callable[[Any, str], Any]]],
                  default_name: str) -> dict[str, Any]:
    """``datasets.<name>.data`` checked against ``spec``. ``name`` (given by the caller, used in
    messages; ``default_name`` without it) and ``source`` are accepted; the name is returned
    under "name"."""
    name = default_name
    if isinstance(settings, Mapping):
        if settings.get("name") is not None:
            name = str(settings["name"])
        settings = {k: v for k, v in settings.items() if k not in PASSED_IN}
    values = check_settings(settings, spec, f"datasets.{name}.data")
    values["name"] = name
    return values


def int_at_least(low: int) -> Callable[[Any, str], int]:
    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{key}: expected an integer >= {low}, got {value!r}")
        return int(value)
    return check


def fraction(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{key}: expected a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def url_string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "file://")):
        raise ConfigError(f"{key}: expected an http(s):// or file:// URL, got {value!r}")
    return value


def sha256_or_none(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ConfigError(f"{key}: expected 64 hex digits or null, got {value!r}")
    return value.lower()


def choice(*options: str) -> Callable[[Any, str], str]:
    def check(value: Any, key: str) -> str:
        if value not in options:
            raise ConfigError(f"{key}: expected one of {list(options)}, got {value!r}")
        return value
    return check


def int_list(low: int, high: int) -> Callable[[Any, str], list[int]]:
    def check(value: Any, key: str) -> list[int]:
        ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
        if ok:
            ok = all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) and low <= v <= high
                     for v in value) and len(set(value)) == len(value)
        if not ok:
            raise ConfigError(f"{key}: expected a non-empty list of distinct integers in "
                              f"{low}..{high}, got {value!r}")
        return [int(v) for v in value]
    return check


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


# ---------------------------------------------------------------------------------------------
# KTH itself.

_SPEC = {
    "T_in": (REQUIRED, int_at_least(1)),
    "T_out": (REQUIRED, int_at_least(1)),
    "image_size": (REQUIRED, int_at_least(8)),
    "train_persons": (REQUIRED, int_list(1, 25)),
    "val_persons": (REQUIRED, int_list(1, 25)),
    "test_persons": (REQUIRED, int_list(1, 25)),
    "url": (URL, url_string),
    "sha256": (None, sha256_or_none),
}
_SAMPLE_SPEC = {
    "frames": (36, int_at_least(1)),
    "scenarios": (1, int_at_least(1)),
    "persons_per_split": (1, int_at_least(1)),
}
_SPLIT_KEYS = {"train": "train_persons", "val": "val_persons", "test": "test_persons"}


def _settings(settings: Any) -> dict[str, Any]:
    s = data_settings(settings, _SPEC, NAME)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sorted(set(s[_SPLIT_KEYS[a]]) & set(s[_SPLIT_KEYS[b]]))
        if shared:
            raise ConfigError(f"datasets.{s['name']}.data.{_SPLIT_KEYS[b]}: persons {shared} are also in "
                              f"{_SPLIT_KEYS[a]}; the person lists must be disjoint")
    return s


def _has_actions(d: Path) -> bool:
    return all((d / a).is_dir() for a in ACTIONS)


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``kth_action.zip`` into ``raw_dir`` and unpack it next to it."""
    from pipeline.data.download import download, extract

    s = _settings(settings)
    raw_dir = Path(raw_dir)
    result = download(s["url"], raw_dir / ARCHIVE, sha256=s["sha256"])
    target = raw_dir / "kth_action"
    if not result.cached or not (target.is_dir() and any(target.iterdir())):
        extract(result.path, target, overwrite=True)
    find_dir(target, _has_actions, f"the KTH action folders {list(ACTIONS)}")
    return [result]


def _clips(root: Path, persons: list[int]) -> list[tuple[str, Path, list[str], list[int]]]:
    """(action, folder, frame files, frame numbers) of every clip of ``persons``."""
    clips = []
    for action in ACTIONS:
        folder = root / action
        if not folder.is_dir():
            raise DataError(f"{folder}: missing KTH action folder (expected {list(ACTIONS)} in {root})")
        for name in sorted(os.listdir(folder)):
            match = _CLIP.match(name)
            clip = folder / name
            if not match or int(match.group(1)) not in persons or not clip.is_dir():
                continue
            files = sorted(f for f in os.listdir(clip) if f.startswith("image"))
            numbers = []
            for f in files:
                m = _FRAME.match(f)
                if not m:
                    raise DataError(f"{clip / f}: frame name does not follow image_<NNNN>.<ext>")
                numbers.append(int(m.group(1)))
            if files:
                clips.append((action, clip, files, numbers))
    return clips


def _read_frame(path: Path, size: int) -> np.ndarray:
    image = open_image(path)
    if image.ndim == 3:
        image = image[..., 0]  # OpenSTL keeps channel 0 of the RGB jpgs
    return resize_linear(image, (size, size))[None]


def load(raw_dir: Path, settings: Any) -> Prepared:
    s = _settings(settings)
    root = find_dir(Path(raw_dir), _has_actions, f"the KTH action folders {list(ACTIONS)}")
    seq_len = s["T_in"] + s["T_out"]
    size = s["image_size"]
    splits, counts = {}, {}
    for split, key in _SPLIT_KEYS.items():
        clips = _clips(root, s[key])
        if not clips:
            raise DataError(f"{root}: no clip folders (person<PP>_...) with frames for persons "
                            f"{s[key]} (datasets.{s['name']}.data.{key})")
        paths, clip_ids, numbers, jumps = [], [], [], []
        for i, (action, folder, files, nums) in enumerate(clips):
            paths += [folder / f for f in files]
            clip_ids += [i] * len(files)
            numbers += nums
            jumps += [seq_len if action in ACTIONS_NONOVERLAP else 3] * len(files)
        starts = backward_starts(clip_ids, seq_len, jumps, numbers)
        frames = lazy_stack(paths, partial(_read_frame, size=size), (1, size, size))
        splits[split] = Split(frames=frames, starts=starts)
        counts[split] = {"persons": s[key], "clips": len(clips), "frames": len(paths),
                         "windows": int(len(starts))}
    return Prepared(
        splits=splits, channels=["gray"], T_in=s["T_in"], T_out=s["T_out"], step=1,
        scaling="fixed", metric_space="model", offset=[0.0], scale=[255.0],
        attrs={"source": NAME, "root": str(root), "url": s["url"], "splits": counts,
               "window_rule": "OpenSTL backward scan: non-overlapping for "
                              f"{list(ACTIONS_NONOVERLAP)}, stride 3 for {list(ACTIONS_STRIDE3)}"})


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small KTH twin in the release's layout: all six action folders, clips of the
    first persons of each split, 160x120 RGB jpgs with equal channels and moving blobs."""
    s = _settings(settings)
    k = check_settings(sample, _SAMPLE_SPEC, f"datasets.{s['name']}.sample")
    rng = np.random.default_rng(seed)
    root = Path(raw_dir)
    persons = [p for key in _SPLIT_KEYS.values() for p in s[key][:k["persons_per_split"]]]
    for a, action in enumerate(ACTIONS):
        (root / action).mkdir(parents=True, exist_ok=True)
        speed = 4.0 if action in ACTIONS_STRIDE3 else 2.0
        for p, person in enumerate(persons):
            for scenario in range(1, k["scenarios"] + 1):
                n = k["frames"] + (7 * a + 5 * p + 3 * scenario) % 11
                video = blob_video(rng, n, *RAW_SIZE, 1, blobs=2, speed=speed)
                clip = root / action / f"person{person:02d}_{action}_d{scenario}_uncomp"
                for i, frame in enumerate(video, start=1):
                    write_jpeg(clip / f"image_{i:04d}.jpg", np.repeat(frame, 3, axis=2))
