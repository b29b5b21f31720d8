"""The moving-object content of the video twins (pipeline/data/sources/frames.py: blob_video)."""
from __future__ import annotations

import numpy as np

from pipeline.data.sources.frames import blob_video


def test_blob_video_is_seeded_uint8_frames():
    a = blob_video(np.random.default_rng(5), 6, 40, 50, 3, blobs=2, speed=2.0)
    b = blob_video(np.random.default_rng(5), 6, 40, 50, 3, blobs=2, speed=2.0)
    assert a.shape == (6, 40, 50, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_objects_move_over_a_static_textured_background():
    """Copying the last frame must be a beatable reference: the background stays put (and is not
    flat), objects move smoothly, so the copy's error grows with the lead."""
    video = blob_video(np.random.default_rng(0), 20, 64, 64, 1, blobs=2, speed=2.5).astype(np.float32)[..., 0]
    still = blob_video(np.random.default_rng(0), 20, 64, 64, 1, blobs=2, speed=0.0).astype(np.float32)[..., 0]
    assert np.array_equal(still[0], still[-1])
    background = np.median(video, axis=0)  # objects never sit anywhere for long
    assert background.std() > 5
    errors = [np.mean((video[lead:] - video[:-lead]) ** 2) for lead in (1, 3, 10)]
    assert 0 < errors[0] < errors[1] < errors[2]
    # a prediction of the background alone beats copying a frame 10 steps back
    assert np.mean((video[10:] - background) ** 2) < errors[2]
