"""Reading KTH's clip folders (real or twin) into the three person splits with OpenSTL's
backward window scan (rules in ``kth/__init__.py``)."""
from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.prepared import Prepared, Split
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import backward_starts, find_dir, lazy_stack, open_image, resize_linear
from pipeline.data.sources.kth.settings import SPLIT_KEYS, KTHSettings

NAME = "kth"


# OpenSTL's two groups: non-overlapping windows vs a stride of 3 (fast actions, short clips).
ACTIONS_NONOVERLAP = ("boxing", "handclapping", "handwaving", "walking")
ACTIONS_STRIDE3 = ("jogging", "running")
ACTIONS = ACTIONS_NONOVERLAP + ACTIONS_STRIDE3
RAW_SIZE = (120, 160)  # (height, width) of the release's frames
_CLIP = re.compile(r"person(\d{2})_")
_FRAME = re.compile(r"image_(\d{4})")


def has_actions(d: Path) -> bool:
    return all((d / a).is_dir() for a in ACTIONS)


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
    s = data_settings(KTHSettings, settings)
    root = find_dir(Path(raw_dir), has_actions, f"the KTH action folders {list(ACTIONS)}")
    seq_len = s.T_in + s.T_out
    size = s.image_size
    splits, counts = {}, {}
    for split, key in SPLIT_KEYS.items():
        clips = _clips(root, s.persons(split))
        if not clips:
            raise DataError(f"{root}: no clip folders (person<PP>_...) with frames for persons "
                            f"{s.persons(split)} (datasets.{s.name}.data.{key})")
        paths, clip_ids, numbers, jumps = [], [], [], []
        for i, (action, folder, files, nums) in enumerate(clips):
            paths += [folder / f for f in files]
            clip_ids += [i] * len(files)
            numbers += nums
            jumps += [seq_len if action in ACTIONS_NONOVERLAP else 3] * len(files)
        starts = backward_starts(clip_ids, seq_len, jumps, numbers)
        frames = lazy_stack(paths, partial(_read_frame, size=size), (1, size, size))
        splits[split] = Split(frames=frames, starts=starts)
        counts[split] = {"persons": s.persons(split), "clips": len(clips), "frames": len(paths),
                         "windows": int(len(starts))}
    return Prepared(
        splits=splits, channels=["gray"], T_in=s.T_in, T_out=s.T_out, step=1,
        scaling="fixed", metric_space="model", offset=[0.0], scale=[255.0],
        attrs={"source": NAME, "root": str(root), "url": s.url, "splits": counts,
               "window_rule": "OpenSTL backward scan: non-overlapping for "
                              f"{list(ACTIONS_NONOVERLAP)}, stride 3 for {list(ACTIONS_STRIDE3)}"})
