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

"""
from __future__ import annotations

import sys
import os
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import DataError, Prepared, Split
from pipeline.data.sources.frames import backward_starts, blob_video, find_dir, lazy_stack, open_image, resize_linear, write_jpeg
from pipeline.data.sources.settings import REQUIRED, check_settings, data_settings, int_at_least, int_list, sha256_or_none, url_string
from pipeline.data.sources import SOURCES
from pipeline.errors import ConfigError

NAME = "kth"
SOURCES.register(NAME)(sys.modules[__name__])  # a package of its own next
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
    from pipeline.data.download import fetch_archive

    s = _settings(settings)
    raw_dir = Path(raw_dir)
    target = raw_dir / "kth_action"
    result = fetch_archive(s["url"], raw_dir / ARCHIVE, target, sha256=s["sha256"])
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
        speed = 6.0 if action in ACTIONS_STRIDE3 else 4.0
        for p, person in enumerate(persons):
            for scenario in range(1, k["scenarios"] + 1):
                n = k["frames"] + (7 * a + 5 * p + 3 * scenario) % 11
                video = blob_video(rng, n, *RAW_SIZE, 1, blobs=2, speed=speed)
                clip = root / action / f"person{person:02d}_{action}_d{scenario}_uncomp"
                for i, frame in enumerate(video, start=1):
                    write_jpeg(clip / f"image_{i:04d}.jpg", np.repeat(frame, 3, axis=2))
