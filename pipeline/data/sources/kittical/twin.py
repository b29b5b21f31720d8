"""The KittiCaltech twin: PredNet-style hkl files and Caltech-style .seq videos."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.sources.base import data_settings, sample_settings
from pipeline.data.sources.frames import blob_video
from pipeline.data.sources.kittical.reader import CALTECH_DIR, KITTI_DIR
from pipeline.data.sources.kittical.seq import write_seq
from pipeline.data.sources.kittical.settings import KittiCalSample, KittiCalSettings


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small twin: PredNet-style hkl files (frames and per-frame recording names) and
    Caltech-style .seq videos, all with moving blobs."""
    import hickle

    s = data_settings(KittiCalSettings, settings)
    k = sample_settings(KittiCalSample, sample, s.name)
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    kitti = raw_dir / KITTI_DIR
    kitti.mkdir(parents=True, exist_ok=True)
    height, width = s.image_size
    drive = 1
    for split in ("train", "val", "test"):
        frames, sources = [], []
        for n in getattr(k, f"kitti_{split}"):
            frames.append(blob_video(rng, n, height, width, 3, blobs=8, speed=6.0))
            category = ("city", "residential", "road")[drive % 3]
            sources += [f"{category}-2011_09_26_drive_{drive:04d}_sync"] * n
            drive += 1
        hickle.dump(np.concatenate(frames), str(kitti / f"X_{split}.hkl"), mode="w",
                    compression="gzip")
        hickle.dump(sources, str(kitti / f"sources_{split}.hkl"), mode="w")
    sets = s.caltech_sets
    for v in range(k.caltech_videos):
        h, w = k.caltech_size
        # drawn at half size and doubled: full-size blobs cost seconds, the decoder sees no difference
        video = blob_video(rng, k.caltech_frames, (h + 1) // 2, (w + 1) // 2, 3, blobs=8, speed=7.0)
        video = video.repeat(2, axis=1).repeat(2, axis=2)[:, :h, :w]
        write_seq(raw_dir / CALTECH_DIR / sets[v % len(sets)] / f"V{v // len(sets):03d}.seq", video)
