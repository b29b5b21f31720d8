"""Reading Human3.6M as OpenSTL prepares it: the window lists and the frames they need
(rules in ``human/__init__.py``)."""
from __future__ import annotations

import os
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.prepared import Prepared, Split
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import lazy_stack, open_image, resize_linear
from pipeline.data.sources.human.settings import LISTS, HumanSettings

NAME = "human"
IMAGES = "images"
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
CHANNELS = ["red", "green", "blue"]
INSTRUCTIONS = """\
Human3.6M must be obtained by hand: its license requires registration.
  1. Register at the official site http://vision.imar.ro/human3.6m/ and download the videos of
     subjects {subjects}.
  2. Turn them into jpg frames named <Subject>_<Action>.<camera>_<NNNNNN>.jpg, numbered from
     000001 like the video frames (e.g. S11_Walking.60457274_001621.jpg). OpenSTL's images keep
     every 5th frame (000001, 000006, ...); keeping all frames works too. This is the layout of
     the per-subject image tars that OpenSTL's tools/prepare_data/download_human3.6m.sh unpacks.
  3. Resize them to 256x256 (OpenSTL's tools/prepare_data/resize_image.py; frames of another
     size are resized here the same way, more slowly).
  4. Put all frames, flat, in {images}/ .
OpenSTL's window lists train.txt and test.txt (tools/prepare_data/meta/human/) go in {raw_dir}/;
the download stage fetches them itself. Then run the download stage again: the pipeline checks
the frames and picks them up."""


def _instructions(raw_dir: Path, problem: str) -> str:
    raw_dir = Path(raw_dir)
    return f"Human3.6M frames not found: {problem}.\n" + INSTRUCTIONS.format(
        subjects=", ".join(SUBJECTS), images=raw_dir / IMAGES, raw_dir=raw_dir)


def _windows(path: Path) -> list[tuple[str, int]]:
    """(prefix, first frame number) of every line of an OpenSTL list."""
    if not path.is_file():
        raise DataError(f"{path}: window list missing (OpenSTL's tools/prepare_data/meta/human/"
                        f"{path.name}; the download stage fetches it)")
    windows = []
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            fields = line.split(",")
            try:
                if len(fields) < 2 or not fields[0]:
                    raise ValueError
                windows.append((fields[0], int(fields[1])))
            except ValueError:
                raise DataError(f"{path}:{lineno}: expected '<images/Subject_Action.camera_>,"
                                f"<first frame>,...', got {line!r}") from None
    if not windows:
        raise DataError(f"{path}: no windows listed")
    return windows


def _assemble(root: Path, windows: list[tuple[str, int]], s: HumanSettings
              ) -> tuple[list[Path], np.ndarray, int]:
    """Stored frames (paths) of a split, window starts into them, and the number of runs.

    Frames are grouped per video and residue of their number modulo the frame step, sorted,
    so a window's frames are consecutive entries; runs break where numbers are not a step apart.
    """
    fs, length = s.frame_step, s.T_in + s.T_out
    groups: dict[tuple[str, int], set[int]] = defaultdict(set)
    for prefix, first in windows:
        if first < 0:
            raise DataError(f"window {prefix},{first}: negative frame number")
        groups[(prefix, first % fs)].update(range(first, first + length * fs, fs))
    listing: dict[Path, set[str]] = {}
    position: dict[tuple[str, int], int] = {}
    paths: list[Path] = []
    missing: list[Path] = []
    runs = 0
    for prefix, residue in sorted(groups):
        numbers = sorted(groups[(prefix, residue)])
        for j, number in enumerate(numbers):
            runs += j == 0 or number - numbers[j - 1] != fs
            path = root / f"{prefix}{number:06d}.jpg"
            folder = path.parent
            if folder not in listing:
                listing[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if path.name not in listing[folder]:
                missing.append(path)
            position[(prefix, number)] = len(paths)
            paths.append(path)
    if missing:
        raise DataError(_instructions(root, f"{len(missing)} of the {len(paths)} frames the window "
                                            f"lists need are missing, e.g. {missing[0]}"))
    starts = np.asarray([position[w] for w in windows], dtype=np.int64)
    return paths, starts, runs


def _read_frame(path: Path, size: int) -> np.ndarray:
    image = open_image(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return resize_linear(image, (size, size)).transpose(2, 0, 1)


def load(raw_dir: Path, settings: Any) -> Prepared:
    s = data_settings(HumanSettings, settings)
    root = Path(raw_dir)
    train = _windows(root / LISTS["train"])
    test = _windows(root / LISTS["test"])
    n_val = max(1, int(round(s.val_fraction * len(train))))
    if n_val >= len(train):
        raise DataError(f"{root / LISTS['train']}: {len(train)} windows cannot give {n_val} to "
                        f"validation (datasets.{s.name}.data.val_fraction={s.val_fraction}) "
                        f"and keep some for training")
    held = np.zeros(len(train), dtype=bool)
    held[np.random.default_rng(s.val_seed).permutation(len(train))[:n_val]] = True
    chosen = {"train": [w for w, h in zip(train, held) if not h],
              "val": [w for w, h in zip(train, held) if h], "test": test}
    size = s.image_size
    splits, counts = {}, {}
    for split, windows in chosen.items():
        paths, starts, runs = _assemble(root, windows, s)
        frames = lazy_stack(paths, partial(_read_frame, size=size), (3, size, size))
        splits[split] = Split(frames=frames, starts=starts)
        counts[split] = {"windows": len(windows), "frames": len(paths), "runs": runs}
    return Prepared(
        splits=splits, channels=list(CHANNELS), T_in=s.T_in, T_out=s.T_out, step=1,
        scaling="fixed", metric_space="model", offset=[0.0] * 3, scale=[255.0] * 3,
        attrs={"source": NAME, "root": str(root),
               "lists": {k: str(root / v) for k, v in LISTS.items()},
               "frame_step": s.frame_step, "splits": counts,
               "val_rule": f"{n_val} of {len(train)} train.txt lines drawn with "
                           f"numpy default_rng({s.val_seed})"})
