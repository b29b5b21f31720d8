"""KTH source: twin in the release's folder layout -> real reader -> OpenSTL's clip cutting."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import serve
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import kth
from pipeline.data.sources.frames import backward_starts

SETTINGS = {"T_in": 10, "T_out": 20, "image_size": 128, "train_persons": list(range(1, 15)),
            "val_persons": [15, 16], "test_persons": list(range(17, 26))}
L = 30





@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    raw = tmp_path_factory.mktemp("kth")
    kth.make_sample(raw, SETTINGS, {}, seed=0)
    return raw


@pytest.fixture(scope="module")
def prepared(twin):
    return kth.load(twin, SETTINGS)


def _clip_lengths(root: Path, persons: list[int]) -> list[tuple[str, int]]:
    """(action, frame count) per clip of ``persons``, in the reader's order, from the disk."""
    out = []
    for action in kth.ACTIONS:
        for clip in sorted((root / action).iterdir()):
            if int(clip.name[6:8]) in persons:
                out.append((action, len(list(clip.glob("image_*.jpg")))))
    return out


def _expected(action: str, n: int) -> int:
    # OpenSTL's backward scan on a gap-free clip: non-overlapping windows, or a stride of 3
    if action in kth.ACTIONS_NONOVERLAP:
        return n // L
    return (n - L) // 3 + 1 if n >= L else 0


def test_twin_layout(twin):
    assert sorted(p.name for p in twin.iterdir()) == sorted(kth.ACTIONS)
    clip = twin / "boxing" / "person01_boxing_d1_uncomp"
    names = sorted(p.name for p in clip.iterdir())
    assert names[0] == "image_0001.jpg" and len(names) == 39  # a=0, p=0, s=1: 36 + 3 % 11
    from PIL import Image

    with Image.open(clip / "image_0001.jpg") as im:
        assert im.size == (160, 120) and im.mode == "RGB"
    size = sum(p.stat().st_size for p in twin.rglob("*") if p.is_file())
    assert size < 5 * 2**20


def test_windows_per_split_follow_openstl(twin, prepared):
    # twin clip lengths are 36 + (7 a + 5 p + 3) % 11 for action a and person slot p
    lengths = {split: _clip_lengths(twin, SETTINGS[f"{split}_persons"]) for split in ("train", "val", "test")}
    assert [n for _, n in lengths["train"]] == [39, 46, 42, 38, 45, 41]
    by_hand = {split: sum(_expected(a, n) for a, n in clips) for split, clips in lengths.items()}
    # train: 1+1+1+1 + (45-30)//3+1 + (41-30)//3+1 = 4 + 6 + 4
    assert by_hand == {"train": 14, "val": 14, "test": 13}
    assert {k: len(v.starts) for k, v in prepared.splits.items()} == by_hand
    for split, clips in lengths.items():
        assert prepared.splits[split].frames.shape == (sum(n for _, n in clips), 1, 128, 128)


def test_starts_never_cross_a_clip_and_match_the_scan(twin, prepared):
    for split in ("train", "val", "test"):
        clips = _clip_lengths(twin, SETTINGS[f"{split}_persons"])
        edges = np.cumsum([0] + [n for _, n in clips])
        expected = []
        for (action, n), first in zip(clips, edges[:-1]):
            stride = L if action in kth.ACTIONS_NONOVERLAP else 3
            # windows aligned to the END of the clip, going back by the stride
            expected += [first + s for s in range(n - L, -1, -stride)][::-1]
        starts = prepared.splits[split].starts
        np.testing.assert_array_equal(starts, expected)
        clip_of_first = np.searchsorted(edges, starts, side="right")
        clip_of_last = np.searchsorted(edges, starts + L - 1, side="right")
        np.testing.assert_array_equal(clip_of_first, clip_of_last)


def test_frames_are_channel0_resized_like_cv2(twin, prepared):
    import torch

    from pipeline.data.sources.frames import open_image

    frames = prepared.splits["train"].frames
    assert frames.dtype == np.uint8
    first = np.asarray(frames[:2].compute())
    image = open_image(twin / "boxing" / "person01_boxing_d1_uncomp" / "image_0002.jpg")[..., 0]
    # cv2.resize INTER_LINEAR == bilinear, half-pixel centres, no anti-aliasing
    ref = torch.nn.functional.interpolate(torch.from_numpy(image.astype(np.float32))[None, None],
                                          size=(128, 128), mode="bilinear", align_corners=False)
    assert np.abs(first[1, 0].astype(np.float32) - ref[0, 0].numpy()).max() <= 0.5 + 1e-3
    assert (prepared.scaling, prepared.offset, prepared.scale, prepared.metric_space) == \
        ("fixed", [0.0], [255.0], "model")
    assert prepared.channels == ["gray"] and (prepared.T_in, prepared.T_out, prepared.step) == (10, 20, 1)


def test_backward_scan_by_hand():
    numbers = list(range(1, 11)) + list(range(12, 21))  # a gap between 10 and 12
    clip = [0] * len(numbers)
    # non-overlapping (jump 4): windows ending at numbers 20, 16, then 12 fails (8..12 has a gap)
    np.testing.assert_array_equal(backward_starts(clip, 4, 4, numbers), [2, 6, 11, 15])
    np.testing.assert_array_equal(backward_starts(clip, 4, 3, numbers), [0, 3, 6, 12, 15])
    # two clips of 5 and 6 frames, windows of 3, ids checked at both ends
    np.testing.assert_array_equal(backward_starts([0] * 5 + [1] * 6, 3, 3), [2, 5, 8])
    assert len(backward_starts([0, 0], 3, 3)) == 0


def test_reader_ignores_other_persons_and_files(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin, raw)
    extra = raw / "walking" / "person26_walking_d1_uncomp"
    shutil.copytree(raw / "walking" / "person01_walking_d1_uncomp", extra)
    (raw / "walking" / "person01_walking_d1_uncomp" / "Thumbs.db").write_bytes(b"x")
    p = kth.load(raw, {**SETTINGS, "image_size": 64})
    assert len(p.splits["train"].starts) == 14 and p.splits["train"].frames.shape[2:] == (64, 64)


@pytest.mark.parametrize("settings, key", [
    ({**SETTINGS, "val_persons": [14, 15]}, "datasets.kth.data.val_persons"),
    ({**SETTINGS, "persons": [1]}, "datasets.kth.data.persons"),
    ({k: v for k, v in SETTINGS.items() if k != "image_size"}, "datasets.kth.data.image_size"),
    ({**SETTINGS, "test_persons": [0, 26]}, "datasets.kth.data.test_persons"),
    ({**SETTINGS, "url": "ftp://x"}, "datasets.kth.data.url"),
    ({**SETTINGS, "name": "kth_action", "source": "kth", "T_out": "20"}, "datasets.kth_action.data.T_out"),
])
def test_bad_settings_name_the_key(tmp_path, settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        kth.load(tmp_path, settings)


def test_bad_layouts(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin, raw)
    shutil.rmtree(raw / "jogging")
    with pytest.raises(DataError, match="KTH action folders"):
        kth.load(raw, SETTINGS)
    (raw / "jogging").mkdir()
    bad = raw / "boxing" / "person01_boxing_d1_uncomp" / "image_x.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match="image_x.jpg"):
        kth.load(raw, SETTINGS)
    bad.unlink()
    with pytest.raises(DataError, match=r"persons \[20\]"):
        kth.load(raw, {**SETTINGS, "test_persons": [20]})
    broken = raw / "boxing" / "person01_boxing_d1_uncomp" / "image_0003.jpg"
    broken.write_bytes(b"not a jpg")
    p = kth.load(raw, SETTINGS)
    with pytest.raises(DataError, match="image_0003.jpg"):
        p.splits["train"].frames[:8].compute()


def test_fetch_from_a_local_server(tmp_path, twin):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / kth.ARCHIVE, "w") as z:
        for f in sorted(twin.rglob("*.jpg")):
            z.write(f, "kth_action/" + f.relative_to(twin).as_posix())
    raw = tmp_path / "raw"
    with serve(served) as base:
        results = kth.fetch(raw, {**SETTINGS, "url": f"{base}/{kth.ARCHIVE}"})
    assert len(results) == 1 and results[0].path == raw / kth.ARCHIVE
    p = kth.load(raw, SETTINGS)
    assert {k: len(v.starts) for k, v in p.splits.items()} == {"train": 14, "val": 14, "test": 13}
    assert p.attrs["root"] == str(raw / "kth_action" / "kth_action")
