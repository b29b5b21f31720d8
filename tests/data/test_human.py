"""Human3.6M source: twin in OpenSTL's images/ + window-list layout -> real reader."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import serve
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import human
from pipeline.data.sources.human import reader as human_reader

SETTINGS = {"T_in": 4, "T_out": 4, "frame_step": 5, "image_size": 256, "val_fraction": 0.1,
            "val_seed": 0}





@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    raw = tmp_path_factory.mktemp("human")
    human.make_sample(raw, SETTINGS, {}, seed=1)
    return raw


@pytest.fixture(scope="module")
def prepared(twin):
    return human.load(twin, SETTINGS)


def _lines(path: Path) -> list[tuple[str, int]]:
    return [(ln.split(",")[0], int(ln.split(",")[1])) for ln in path.read_text().splitlines()]


def test_twin_layout(twin):
    assert sorted(p.name for p in twin.iterdir()) == ["images", "test.txt", "train.txt"]
    names = sorted(p.name for p in (twin / "images").iterdir())
    assert len(names) == 3 * 16 and "S1_Walking.54138969_000001.jpg" in names
    assert "S1_Walking.54138969_000076.jpg" in names  # every 5th frame: 1 + 15 * 5
    first = (twin / "train.txt").read_text().splitlines()[0].split(",")
    assert first[0].startswith("images/S") and int(first[2]) == int(first[1]) + 70
    from PIL import Image

    with Image.open(twin / "images" / names[0]) as im:
        assert im.size == (256, 256) and im.mode == "RGB"
    assert sum(p.stat().st_size for p in twin.rglob("*") if p.is_file()) < 5 * 2**20


def test_windows_per_split(twin, prepared):
    # 3 videos x 6 train lines = 18; val = round(0.1 * 18) = 2 of them; test 3 x 2 = 6
    assert {k: len(v.starts) for k, v in prepared.splits.items()} == {"train": 16, "val": 2, "test": 6}
    assert (prepared.T_in, prepared.T_out, prepared.step) == (4, 4, 1)
    assert prepared.attrs["frame_step"] == 5
    assert (prepared.scaling, prepared.offset, prepared.scale, prepared.metric_space) == \
        ("fixed", [0.0] * 3, [255.0] * 3, "model")
    for split in prepared.splits.values():
        assert split.frames.dtype == np.uint8 and split.frames.shape[1:] == (3, 256, 256)


def test_val_is_a_seeded_subset_of_the_train_list(twin, prepared):
    from pipeline.data.sources.frames import open_image

    lines = _lines(twin / "train.txt")
    held = np.zeros(len(lines), bool)
    held[np.random.default_rng(0).permutation(len(lines))[:2]] = True
    val = prepared.splits["val"]
    for (prefix, first), s in zip([w for w, h in zip(lines, held) if h], val.starts):
        got = np.asarray(val.frames[s:s + 8].compute())
        for k in (0, 7):
            direct = open_image(twin / f"{prefix}{first + 5 * k:06d}.jpg").transpose(2, 0, 1)
            np.testing.assert_array_equal(got[k], direct)
    assert prepared.attrs["splits"]["train"]["windows"] == len(lines) - 2
    assert human.load(twin, {**SETTINGS, "val_seed": 7}).attrs["splits"]["val"]["windows"] == 2


def test_each_window_is_its_listed_frames(twin, prepared):
    """Window i = frames first + 5k of its video: consecutive stored frames, one video only."""
    for split, name in (("test", "test.txt"), ("train", "train.txt")):
        windows = _lines(twin / name)
        paths, starts, _ = human_reader._assemble(twin, windows, human.parse_settings(SETTINGS))
        for (prefix, first), s in zip(windows, starts):
            for k in range(8):
                assert paths[s + k] == twin / f"{prefix}{first + 5 * k:06d}.jpg"
    test = prepared.splits["test"]
    windows = _lines(twin / "test.txt")
    prefix, first = windows[0]
    stack = np.asarray(test.frames[test.starts[0]:test.starts[0] + 8].compute())
    from pipeline.data.sources.frames import open_image

    for k in range(8):
        direct = open_image(twin / f"{prefix}{first + 5 * k:06d}.jpg").transpose(2, 0, 1)
        np.testing.assert_array_equal(stack[k], direct)


def test_runs_break_between_videos_and_residues(tmp_path):
    s = {**SETTINGS, "T_in": 1, "T_out": 1}
    windows = [("images/A_", 1), ("images/A_", 11), ("images/A_", 6), ("images/B_", 1), ("images/A_", 3)]
    for prefix, first in windows:
        for k in range(2):
            (tmp_path / f"{prefix}{first + 5 * k:06d}.jpg").parent.mkdir(exist_ok=True)
            (tmp_path / f"{prefix}{first + 5 * k:06d}.jpg").write_bytes(b"")
    paths, starts, runs = human_reader._assemble(tmp_path, windows, human.parse_settings(s))
    names = [p.name for p in paths]
    # A residue 1: 1, 6, 11, 16 (one run); A residue 3: 3, 8; B: 1, 6
    assert names == ["A_000001.jpg", "A_000006.jpg", "A_000011.jpg", "A_000016.jpg",
                     "A_000003.jpg", "A_000008.jpg", "B_000001.jpg", "B_000006.jpg"]
    np.testing.assert_array_equal(starts, [0, 2, 1, 6, 4])
    assert runs == 3


def test_fetch_without_frames_explains_how_to_get_them(tmp_path):
    with pytest.raises(DataError) as err:
        human.fetch(tmp_path, SETTINGS)
    message = str(err.value)
    assert "registration" in message and "http://vision.imar.ro/human3.6m/" in message
    assert str(tmp_path / "images") in message and "S11_Walking.60457274_001621.jpg" in message
    assert "train.txt" in message and "256x256" in message


def test_fetch_downloads_the_lists_and_checks_every_frame(tmp_path, twin):
    served = tmp_path / "served"
    served.mkdir()
    for name in ("train.txt", "test.txt"):
        shutil.copy(twin / name, served / name)
    raw = tmp_path / "raw"
    shutil.copytree(twin / "images", raw / "images")
    with serve(served) as base:
        urls = {"train_list_url": f"{base}/train.txt", "test_list_url": f"{base}/test.txt"}
        results = human.fetch(raw, {**SETTINGS, **urls})
        assert [r.path.name for r in results] == ["train.txt", "test.txt"]
        assert (raw / "train.txt").read_text() == (twin / "train.txt").read_text()
        prefix, first = _lines(raw / "test.txt")[0]
        missing = raw / f"{prefix}{first + 5:06d}.jpg"
        missing.unlink()
        with pytest.raises(DataError, match=f"frames the window lists need are missing, e.g. {missing}"):
            human.fetch(raw, {**SETTINGS, **urls})
    with pytest.raises(DataError, match="vision.imar.ro"):
        human.load(raw, SETTINGS)


def test_bad_lists(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin, raw)
    (raw / "test.txt").unlink()
    with pytest.raises(DataError, match="test.txt: window list missing"):
        human.load(raw, SETTINGS)
    (raw / "test.txt").write_text("images/S1_Walking.54138969_,1,71\nimages/S1_Walking.54138969_,x,1\n")
    with pytest.raises(DataError, match=r"test.txt:2: expected"):
        human.load(raw, SETTINGS)
    (raw / "test.txt").write_text("\n")
    with pytest.raises(DataError, match="no windows listed"):
        human.load(raw, SETTINGS)


def test_other_sizes_are_resized(tmp_path, twin):
    p = human.load(twin, {**SETTINGS, "image_size": 64})
    assert np.asarray(p.splits["val"].frames[:1].compute()).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("settings, key", [
    ({**SETTINGS, "subjects": ["S1"]}, "datasets.human.data.subjects"),
    ({k: v for k, v in SETTINGS.items() if k != "val_seed"}, "datasets.human.data.val_seed"),
    ({**SETTINGS, "val_fraction": 0}, "datasets.human.data.val_fraction"),
    ({**SETTINGS, "frame_step": 0}, "datasets.human.data.frame_step"),
    ({**SETTINGS, "name": "h36m", "source": "human", "image_size": None}, "datasets.h36m.data.image_size"),
])
def test_bad_settings_name_the_key(tmp_path, settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        human.load(tmp_path, settings)


def test_twin_knobs_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.human\.sample\.frames"):
        human.make_sample(tmp_path, SETTINGS, {"frames": 9, "train_windows": 3}, seed=0)
