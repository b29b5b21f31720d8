"""TaxiBJ source: twin in the release's npz format -> real reader -> OpenSTL's windows."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import serve
from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import taxibj
from pipeline.data.sources.taxibj import twin as taxibj_twin

SETTINGS = {"T_in": 4, "T_out": 4, "val_fraction": 0.1}





@pytest.fixture()
def twin(tmp_path):
    raw = tmp_path / "raw"
    taxibj.make_sample(raw, SETTINGS, {"train_samples": 40, "test_samples": 10}, seed=3)
    return raw


def test_twin_has_the_release_format(twin):
    files = [p for p in twin.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["dataset.npz"]
    assert files[0].stat().st_size < 5 * 2**20
    with np.load(files[0]) as z:
        assert sorted(z.files) == sorted(taxibj.KEYS)
        assert z["X_train"].shape == (40, 4, 2, 32, 32) and z["Y_train"].shape == (40, 4, 2, 32, 32)
        assert z["X_test"].shape == (10, 4, 2, 32, 32) and z["Y_test"].shape == (10, 4, 2, 32, 32)
        assert z["X_train"].min() >= -1 and z["X_train"].max() <= 1


def test_twin_flows_follow_rush_hours_so_persistence_fades_with_lead():
    """What makes the twin learnable beyond persistence: a city-wide daily cycle whose morning
    ramp moves the flows within the 2 h of a target, business areas filling as homes empty."""
    flows = taxibj_twin._city_flows(np.random.default_rng(0), 48 * 7, first_slot=0)  # Monday 00:00
    hour = np.arange(len(flows)) % 48 / 2.0
    weekday = np.arange(len(flows)) // 48 < 5
    total = flows.sum(axis=(1, 2, 3))
    assert total[weekday & (hour == 8.5)].mean() > 4 * total[weekday & (hour == 3.0)].mean()
    morning = flows[weekday & (hour == 8.5)].mean(0) - flows[weekday & (hour == 13.0)].mean(0)
    # somewhere inflow peaks in the morning while outflow does, elsewhere the reverse
    assert (morning[0] - morning[1]).max() > 0 > (morning[0] - morning[1]).min()
    series = flows / flows.max()
    errors = [np.mean((series[lead:] - series[:-lead]) ** 2) for lead in (1, 4)]
    assert errors[1] > 4 * errors[0]


def test_windows_per_split_follow_the_rule(twin):
    p = taxibj.load(twin, SETTINGS)
    # 40 train samples: val = round(0.1 * 40) = 4 at the end, 7 (= 4 + 4 - 1) dropped before them
    assert {k: len(v.starts) for k, v in p.splits.items()} == {"train": 29, "val": 4, "test": 10}
    for split, n in (("train", 29), ("val", 4), ("test", 10)):
        s = p.splits[split]
        assert s.frames.shape == (n * 8, 2, 32, 32) and s.frames.dtype == np.float32
        np.testing.assert_array_equal(s.starts, np.arange(n) * 8)  # one window per sample
        assert -1 <= s.frames.min() and s.frames.max() <= 1
    assert (p.T_in, p.T_out, p.step, p.window_length()) == (4, 4, 1, 8)
    assert p.channels == ["inflow", "outflow"]
    assert (p.scaling, p.metric_space, p.offset, p.scale) == ("fixed", "model", [-1.0, -1.0], [2.0, 2.0])
    assert p.attrs["samples"]["dropped_before_val"] == 7


def test_windows_are_the_files_samples(twin):
    p = taxibj.load(twin, SETTINGS)
    with np.load(twin / "dataset.npz") as z:
        x, y, xt, yt = z["X_train"], z["Y_train"], z["X_test"], z["Y_test"]
    frames = p.splits["train"].frames
    for i in (0, 17, 28):
        window = frames[p.splits["train"].starts[i]:][:8]
        np.testing.assert_array_equal(window, np.concatenate([x[i], y[i]]))
    val = p.splits["val"]
    for j in range(4):  # the last 4 train samples, 36..39
        np.testing.assert_array_equal(val.frames[val.starts[j]:][:8], np.concatenate([x[36 + j], y[36 + j]]))
    np.testing.assert_array_equal(p.splits["test"].frames[-8:], np.concatenate([xt[-1], yt[-1]]))
    # the gap keeps every validation frame out of training (the twin's samples are stride-1 slices)
    train = p.splits["train"].frames.reshape(len(frames), -1)
    for f in val.frames.reshape(len(val.frames), -1):
        assert not np.any(np.all(train == f, axis=1))
    # (x + 1) / 2 with the stored offset/scale lands in [0, 1] as OpenSTL feeds it
    scaled = (frames - np.asarray(p.offset)[:, None, None]) / np.asarray(p.scale)[:, None, None]
    assert 0 <= scaled.min() and scaled.max() <= 1


def test_twin_is_seeded(tmp_path):
    for name in ("a", "b"):
        taxibj.make_sample(tmp_path / name, SETTINGS, {}, seed=5)
    with np.load(tmp_path / "a" / "dataset.npz") as a, np.load(tmp_path / "b" / "dataset.npz") as b:
        for k in taxibj.KEYS:
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("settings, key", [
    ({**SETTINGS, "stride": 2}, "datasets.taxibj.data.stride"),
    ({"T_out": 4, "val_fraction": 0.1}, "datasets.taxibj.data.T_in"),
    ({**SETTINGS, "val_fraction": 1.5}, "datasets.taxibj.data.val_fraction"),
    ({**SETTINGS, "T_out": 0}, "datasets.taxibj.data.T_out"),
    ({**SETTINGS, "sha256": "abc"}, "datasets.taxibj.data.sha256"),
    ({**SETTINGS, "name": "bj", "source": "taxibj", "T_in": 1.5}, "datasets.bj.data.T_in"),
])
def test_bad_settings_name_the_key(tmp_path, settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        taxibj.load(tmp_path, settings)


def test_bad_sample_knob_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.taxibj\.sample\.videos"):
        taxibj.make_sample(tmp_path, SETTINGS, {"videos": 2}, seed=0)
    with pytest.raises(ConfigError, match=r"datasets\.bj\.sample\.train_samples: expected at least 9"):
        taxibj.make_sample(tmp_path, {**SETTINGS, "name": "bj"}, {"train_samples": 8}, seed=0)


def test_caller_supplied_name_and_source_are_accepted(twin):
    p = taxibj.load(twin, {**SETTINGS, "name": "taxibj", "source": "taxibj"})
    assert len(p.splits["train"].starts) == 29


def test_missing_file_names_it(tmp_path):
    (tmp_path / "other.npz").write_bytes(b"")
    with pytest.raises(DataError, match="dataset.npz"):
        taxibj.load(tmp_path, SETTINGS)


def _write(path: Path, **arrays):
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "dataset.npz", **arrays)


def test_wrong_keys_and_shapes(tmp_path):
    good = np.zeros((12, 4, 2, 32, 32), np.float32)
    _write(tmp_path / "a", X_train=good, Y_train=good, X_test=good)
    with pytest.raises(DataError, match=r"lacks arrays \['Y_test'\]"):
        taxibj.load(tmp_path / "a", SETTINGS)
    _write(tmp_path / "b", X_train=np.zeros((12, 4, 3, 32, 32)), Y_train=good, X_test=good, Y_test=good)
    with pytest.raises(DataError, match=r"X_train has shape \(12, 4, 3, 32, 32\)"):
        taxibj.load(tmp_path / "b", SETTINGS)
    _write(tmp_path / "c", X_train=good, Y_train=good[:5], X_test=good, Y_test=good)
    with pytest.raises(DataError, match="X_train has 12 samples but Y_train has 5"):
        taxibj.load(tmp_path / "c", SETTINGS)
    with pytest.raises(DataError, match=r"datasets\.taxibj\.data\.T_in is 5"):
        taxibj.load(_fresh(tmp_path / "d", good), {**SETTINGS, "T_in": 5})
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "dataset.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        taxibj.load(tmp_path / "e", SETTINGS)


def _fresh(path: Path, good: np.ndarray) -> Path:
    _write(path, X_train=good, Y_train=good, X_test=good, Y_test=good)
    return path


def test_val_fraction_too_large_for_the_file(tmp_path):
    good = np.zeros((10, 4, 2, 32, 32), np.float32)
    with pytest.raises(DataError, match="val_fraction"):
        taxibj.load(_fresh(tmp_path, good), {**SETTINGS, "val_fraction": 0.5})


def test_fetch_from_a_local_server(tmp_path, twin):
    served = tmp_path / "served"
    served.mkdir()
    archive = served / taxibj.ARCHIVE
    with zipfile.ZipFile(archive, "w") as z:
        z.write(twin / "dataset.npz", "dataset.npz")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    raw = tmp_path / "fetched"
    with serve(served) as base:
        settings = {**SETTINGS, "url": f"{base}/{taxibj.ARCHIVE}", "sha256": digest}
        results = taxibj.fetch(raw, settings)
        assert len(results) == 1 and results[0].sha256 == digest and not results[0].cached
        again = taxibj.fetch(raw, settings)
        assert again[0].cached
    p = taxibj.load(raw, SETTINGS)
    expected = taxibj.load(twin, SETTINGS)
    np.testing.assert_array_equal(p.splits["test"].frames, expected.splits["test"].frames)
    assert p.attrs["file"] == str(raw / "taxibj_dataset" / "dataset.npz")


def test_fetch_rejects_an_archive_without_the_npz(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / taxibj.ARCHIVE, "w") as z:
        z.writestr("README.txt", "nothing here")
    with serve(served) as base, pytest.raises(DataError, match="dataset.npz"):
        taxibj.fetch(tmp_path / "raw", {**SETTINGS, "url": f"{base}/{taxibj.ARCHIVE}"})
