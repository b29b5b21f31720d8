"""The Human3.6M twin: ``images/`` of jpg frames and OpenSTL-style window lists."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.frames import blob_video, write_jpeg
from pipeline.data.sources.human.reader import IMAGES, SUBJECTS
from pipeline.data.sources.human.settings import LISTS, HumanSample, HumanSettings


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small Human3.6M twin: ``images/`` of 256x256-style jpgs numbered every
    ``frame_step`` from 000001, and ``train.txt``/``test.txt`` lines in OpenSTL's format."""
    s = data_settings(HumanSettings, settings)
    k = sample_settings(HumanSample, sample, s.name)
    fs, length, size = s.frame_step, s.T_in + s.T_out, s.image_size
    positions = k.frames - length + 1
    if positions < max(k.train_windows, k.test_windows):
        raise ConfigError(f"datasets.{s.name}.sample.frames: {k.frames} frames per video hold "
                          f"{max(positions, 0)} windows of {length}, fewer than the "
                          f"{max(k.train_windows, k.test_windows)} lines asked for")
    rng = np.random.default_rng(seed)
    root = Path(raw_dir)
    actions = ("Walking", "Eating", "Phoning", "Directions", "Discussion")
    cameras = ("54138969", "55011271", "58860488", "60457274")
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for v in range(k.videos):
        prefix = f"{SUBJECTS[v % len(SUBJECTS)]}_{actions[v % len(actions)]}.{cameras[v % len(cameras)]}_"
        video = blob_video(rng, k.frames, size, size, 3, blobs=3, speed=12.0)
        for i, frame in enumerate(video):
            write_jpeg(root / IMAGES / f"{prefix}{1 + i * fs:06d}.jpg", frame)
        for split in lines:
            for p in rng.choice(positions, size=getattr(k, f"{split}_windows"), replace=False):
                first = 1 + int(p) * fs
                # the third field is unused by OpenSTL; the real lists carry first + 70
                lines[split].append(f"{IMAGES}/{prefix},{first},{first + 70}")
    for split, name in LISTS.items():
        order = rng.permutation(len(lines[split]))  # the real lists are not sorted
        (root / name).write_text("".join(lines[split][i] + "\n" for i in order))
