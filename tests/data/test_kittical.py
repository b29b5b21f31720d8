"""KittiCaltech source: twin of PredNet's hkl files and Caltech .seq videos -> real reader."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import hickle
import numpy as np
import pytest

from conftest import serve
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import kittical

SETTINGS = {"T_in": 10, "T_out": 1, "image_size": [128, 160], "caltech_frame_step": 3,
            "caltech_channel_order": "bgr"}
L = 11





@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    raw = tmp_path_factory.mktemp("kittical")
    kittical.make_sample(raw, SETTINGS, {}, seed=2)
    return raw


@pytest.fixture(scope="module")
def prepared(twin):
    return kittical.load(twin, SETTINGS)


def _jpegs(seq: Path) -> list[bytes]:
    """The jpg frames of a .seq file found by their markers, independently of the reader."""
    data = seq.read_bytes()[kittical.SEQ_HEADER:]
    out, pos = [], data.find(b"\xff\xd8\xff")
    while pos >= 0:
        end = data.find(b"\xff\xd9", pos) + 2
        out.append(data[pos:end])
        pos = data.find(b"\xff\xd8\xff", end)
    return out


def _processed(jpg: bytes, bgr: bool) -> np.ndarray:
    """PredNet's process_im for a 480x640 frame: height 128, width round(170.67) = 171,
    centre crop [5:165]."""
    import io

    from PIL import Image
    from skimage.transform import resize

    with Image.open(io.BytesIO(jpg)) as im:
        image = np.asarray(im.convert("RGB"))
    assert image.shape == (480, 640, 3)
    out = resize(image, (128, 171), preserve_range=True)[:, 5:165]
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return (out[..., ::-1] if bgr else out).transpose(2, 0, 1)


def test_twin_layout(twin):
    files = sorted(p.relative_to(twin).as_posix() for p in twin.rglob("*") if p.is_file())
    assert files == ["caltech/set06/V000.seq", "caltech/set07/V000.seq",
                     *(f"kitti_hkl/{kind}_{split}.hkl" for kind in ("X", "sources")
                       for split in ("test", "train", "val"))]
    assert sum((twin / f).stat().st_size for f in files) < 5 * 2**20
    x = hickle.load(str(twin / "kitti_hkl" / "X_train.hkl"))
    sources = hickle.load(str(twin / "kitti_hkl" / "sources_train.hkl"))
    assert x.dtype == np.uint8 and x.shape == (37, 128, 160, 3)
    assert isinstance(sources, list) and len(sources) == 37 and sources[0].endswith("_sync")
    assert len(_jpegs(twin / "caltech" / "set06" / "V000.seq")) == 36


def test_windows_per_split(prepared):
    # non-overlapping windows of 11 aligned to each recording's end: 24 // 11 + 13 // 11 = 3,
    # val 12 // 11 = 1, test: 36 raw frames -> 12 kept per video -> 1 window each
    assert {k: len(v.starts) for k, v in prepared.splits.items()} == {"train": 3, "val": 1, "test": 2}
    np.testing.assert_array_equal(prepared.splits["train"].starts, [2, 13, 26])
    np.testing.assert_array_equal(prepared.splits["val"].starts, [1])
    np.testing.assert_array_equal(prepared.splits["test"].starts, [1, 13])
    assert prepared.splits["train"].frames.shape == (37, 3, 128, 160)
    assert prepared.splits["test"].frames.shape == (24, 3, 128, 160)
    for split in prepared.splits.values():
        assert split.frames.dtype == np.uint8
    assert (prepared.T_in, prepared.T_out, prepared.step) == (10, 1, 1)
    assert (prepared.scaling, prepared.offset, prepared.scale, prepared.metric_space) == \
        ("fixed", [0.0] * 3, [255.0] * 3, "model")


def test_starts_never_cross_a_recording(twin, prepared):
    sources = hickle.load(str(twin / "kitti_hkl" / "sources_train.hkl"))
    for s in prepared.splits["train"].starts:
        assert len(set(sources[s:s + L])) == 1
    starts = prepared.splits["test"].starts
    np.testing.assert_array_equal(starts // 12, (starts + L - 1) // 12)  # 12 kept frames per video


def test_kitti_frames_are_stored_as_they_are(twin, prepared):
    x = hickle.load(str(twin / "kitti_hkl" / "X_val.hkl"))
    np.testing.assert_array_equal(np.asarray(prepared.splits["val"].frames), x.transpose(0, 3, 1, 2))


def test_caltech_every_third_frame_processed_like_prednet(twin, prepared):
    jpgs = _jpegs(twin / "caltech" / "set07" / "V000.seq")
    test = prepared.splits["test"]
    got = np.asarray(test.frames[12:14].compute())  # set07's first two kept frames
    np.testing.assert_array_equal(got[0], _processed(jpgs[2], bgr=True))
    np.testing.assert_array_equal(got[1], _processed(jpgs[5], bgr=True))
    rgb = kittical.load(twin, {**SETTINGS, "caltech_channel_order": "rgb"})
    np.testing.assert_array_equal(np.asarray(rgb.splits["test"].frames[12:13].compute())[0],
                                  got[0][::-1])


def test_openstl_cache_is_used_when_present(tmp_path, twin, prepared):
    raw = tmp_path / "raw"
    shutil.copytree(twin / "kitti_hkl", raw / "kitti_hkl")
    (raw / "caltech").mkdir()
    frames = np.asarray(prepared.splits["test"].frames.compute()).transpose(0, 2, 3, 1)  # BGR
    np.save(raw / "caltech" / "data_cache.npy", frames)
    np.save(raw / "caltech" / "indices_cache.npy", np.array([13, 1], dtype=np.int32))
    p = kittical.load(raw, SETTINGS)
    assert p.attrs["splits"]["test"]["input"] == "openstl_cache"
    np.testing.assert_array_equal(p.splits["test"].starts, [1, 13])
    np.testing.assert_array_equal(np.asarray(p.splits["test"].frames), frames.transpose(0, 3, 1, 2))
    rgb = kittical.load(raw, {**SETTINGS, "caltech_channel_order": "rgb"})
    np.testing.assert_array_equal(np.asarray(rgb.splits["test"].frames)[:, 0], frames[..., 2])
    np.save(raw / "caltech" / "indices_cache.npy", np.array([0, 5], dtype=np.int32))
    with pytest.raises(DataError, match="another T_in"):
        kittical.load(raw, SETTINGS)
    (raw / "caltech" / "indices_cache.npy").unlink()
    with pytest.raises(DataError, match="indices_cache.npy: missing"):
        kittical.load(raw, SETTINGS)


def test_pre_extracted_frame_folders(tmp_path, twin):
    from pipeline.data.sources.frames import blob_video

    raw = tmp_path / "raw"
    shutil.copytree(twin / "kitti_hkl", raw / "kitti_hkl")
    video = blob_video(np.random.default_rng(0), 25, 480, 640, 3)
    folder = raw / "caltech" / "set06" / "V000"
    folder.mkdir(parents=True)
    from PIL import Image

    for i, frame in enumerate(video, start=1):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    (raw / "caltech" / "set06" / "V000.vbb").write_bytes(b"annotations are ignored")
    p = kittical.load(raw, {**SETTINGS, "caltech_channel_order": "rgb"})
    test = p.splits["test"]
    # 25 frames -> the 3rd, 6th, ... 24th: 8 kept, fewer than 11: no window
    assert test.frames.shape[0] == 8 and len(test.starts) == 0
    from skimage.transform import resize

    ref = np.clip(np.rint(resize(video[2], (128, 171), preserve_range=True)[:, 5:165]), 0, 255)
    np.testing.assert_array_equal(np.asarray(test.frames[:1].compute())[0],
                                  ref.astype(np.uint8).transpose(2, 0, 1))


def test_videos_needing_a_decoder_are_refused(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin / "kitti_hkl", raw / "kitti_hkl")
    (raw / "caltech" / "set06").mkdir(parents=True)
    (raw / "caltech" / "set06" / "V000.avi").write_bytes(b"RIFF")
    with pytest.raises(DataError, match="OpenCV.*extract its frames"):
        kittical.load(raw, SETTINGS)


def test_seq_defects(tmp_path, twin):
    seq = twin / "caltech" / "set06" / "V000.seq"
    data = seq.read_bytes()
    frames = kittical.seq_frames(seq)
    assert len(frames) == 36 and frames[0][0] == kittical.SEQ_HEADER + 4
    cut = tmp_path / "cut.seq"
    cut.write_bytes(data[:frames[-1][0] + 10])  # last frame truncated: skipped
    assert len(kittical.seq_frames(cut)) == 35
    cut.write_bytes(data[:frames[10][0] + 10])  # a middle frame truncated: an error
    with pytest.raises(DataError, match="frame 10 of 36"):
        kittical.seq_frames(cut)
    bad = tmp_path / "bad.seq"
    bad.write_bytes(b"\0" * 2048)
    with pytest.raises(DataError, match="not a Norpix .seq"):
        kittical.seq_frames(bad)


def test_bad_kitti_files(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin, raw)
    (raw / "kitti_hkl" / "X_val.hkl").unlink()
    with pytest.raises(DataError, match="X_val.hkl: missing"):
        kittical.load(raw, SETTINGS)
    hickle.dump(np.zeros((12, 64, 80, 3), np.uint8), str(raw / "kitti_hkl" / "X_val.hkl"), mode="w")
    with pytest.raises(DataError, match=r"X_val.hkl: expected uint8 frames shaped \(N, 128, 160, 3\)"):
        kittical.load(raw, SETTINGS)
    hickle.dump(np.zeros((5, 128, 160, 3), np.uint8), str(raw / "kitti_hkl" / "X_val.hkl"), mode="w")
    with pytest.raises(DataError, match="sources_val.hkl: expected one source name per frame"):
        kittical.load(raw, SETTINGS)
    (raw / "kitti_hkl" / "X_val.hkl").write_bytes(b"garbage")
    with pytest.raises(DataError, match="X_val.hkl: not a readable hickle"):
        kittical.load(raw, SETTINGS)
    shutil.rmtree(raw / "kitti_hkl")
    with pytest.raises(DataError, match="X_train.hkl"):
        kittical.load(raw, SETTINGS)


def test_missing_caltech_folder(tmp_path, twin):
    raw = tmp_path / "raw"
    shutil.copytree(twin / "kitti_hkl", raw / "kitti_hkl")
    with pytest.raises(DataError, match="missing Caltech test folder"):
        kittical.load(raw, SETTINGS)


@pytest.mark.parametrize("settings, key", [
    ({**SETTINGS, "caltech_channel_order": "grb"}, "datasets.kittical.data.caltech_channel_order"),
    ({**SETTINGS, "image_size": [128]}, "datasets.kittical.data.image_size"),
    ({k: v for k, v in SETTINGS.items() if k != "caltech_frame_step"},
     "datasets.kittical.data.caltech_frame_step"),
    ({**SETTINGS, "kitti": "x"}, "datasets.kittical.data.kitti"),
    ({**SETTINGS, "name": "kitti", "source": "kittical", "T_in": 0}, "datasets.kitti.data.T_in"),
])
def test_bad_settings_name_the_key(tmp_path, settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        kittical.load(tmp_path, settings)


def test_fetch_from_a_local_server(tmp_path):
    small = tmp_path / "small"
    kittical.make_sample(small, SETTINGS, {"caltech_videos": 1, "caltech_size": [240, 320]}, seed=0)
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "kitti.zip", "w") as z:
        for f in sorted((small / "kitti_hkl").iterdir()):
            z.write(f, f"kitti_data/{f.name}")
    with zipfile.ZipFile(served / "caltech.zip", "w") as z:
        z.write(small / "caltech" / "set06" / "V000.seq", "Test/set06/V000.seq")
        z.write(small / "caltech" / "set06" / "V000.seq", "Train/set00/V000.seq")
    raw = tmp_path / "raw"
    with serve(served) as base:
        settings = {**SETTINGS, "kitti_url": f"{base}/kitti.zip", "caltech_url": f"{base}/caltech.zip",
                    "caltech_sets": ["set06"]}
        results = kittical.fetch(raw, settings)
        assert [r.path.name for r in results] == [kittical.KITTI_ARCHIVE, kittical.CALTECH_ARCHIVE]
        assert all(r.cached for r in kittical.fetch(raw, settings))
    assert sorted(p.name for p in (raw / "caltech").iterdir()) == ["set06"]
    assert not (raw / "caltech_full").exists()
    p = kittical.load(raw, SETTINGS)
    assert {k: len(v.starts) for k, v in p.splits.items()} == {"train": 3, "val": 1, "test": 1}
    with zipfile.ZipFile(served / "caltech.zip", "w") as z:
        z.writestr("README", "no sets")
    with serve(served) as base, pytest.raises(DataError, match="no folder or tar named set09"):
        kittical.fetch(tmp_path / "raw2", {**settings, "kitti_url": f"{base}/kitti.zip",
                                            "caltech_url": f"{base}/caltech.zip", "caltech_sets": ["set09"]})
