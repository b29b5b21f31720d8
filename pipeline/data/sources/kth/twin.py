"""The KTH twin: all six action folders of 160x120 jpg clips in the release's layout."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.frames import blob_video, write_jpeg
from pipeline.data.sources.kth.reader import ACTIONS, ACTIONS_STRIDE3, RAW_SIZE
from pipeline.data.sources.kth.settings import KTHSample, KTHSettings, SPLIT_KEYS


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small KTH twin in the release's layout: all six action folders, clips of the
    first persons of each split, 160x120 RGB jpgs with equal channels and moving blobs."""
    s = data_settings(KTHSettings, settings)
    k = sample_settings(KTHSample, sample, s.name)
    rng = np.random.default_rng(seed)
    root = Path(raw_dir)
    persons = [p for split in SPLIT_KEYS for p in s.persons(split)[:k.persons_per_split]]
    for a, action in enumerate(ACTIONS):
        (root / action).mkdir(parents=True, exist_ok=True)
        speed = 6.0 if action in ACTIONS_STRIDE3 else 4.0
        for p, person in enumerate(persons):
            for scenario in range(1, k.scenarios + 1):
                n = k.frames + (7 * a + 5 * p + 3 * scenario) % 11
                video = blob_video(rng, n, *RAW_SIZE, 1, blobs=2, speed=speed)
                clip = root / action / f"person{person:02d}_{action}_d{scenario}_uncomp"
                for i, frame in enumerate(video, start=1):
                    write_jpeg(clip / f"image_{i:04d}.jpg", np.repeat(frame, 3, axis=2))
