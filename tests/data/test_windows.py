"""WindowDataset's split scaling: ours (training statistics) and the public weather loader's two."""
import numpy as np
import pytest

from conftest import make_prepared
from pipeline.core.errors import DataError
from pipeline.data.store import read_meta, write_store
from pipeline.data.windows import WindowDataset


def _store(tmp_path, **kw):
    prep = make_prepared(n_frames=(40, 20, 20), shape=(2, 8, 8), **kw)
    # a test split warmer and wider than train, so its own statistics differ from train's
    prep.splits["test"].frames[:] = prep.splits["test"].frames * 1.5 - 130
    return prep, write_store(prep, tmp_path / "d.zarr")


def test_own_scaling_uses_the_splits_statistics_in_and_the_trainings_back(tmp_path):
    prep, path = _store(tmp_path)
    meta, raw = read_meta(path), prep.splits["test"].frames.astype(np.float64)
    own_mean, own_std = raw.mean(axis=(0, 2, 3)), raw.std(axis=(0, 2, 3))
    assert not np.allclose(own_mean, meta["offset"], rtol=1e-3)
    ds = WindowDataset(path, "test", split_scaling="own")
    x, y = ds[3]
    window = raw[3:7]
    expected = (window - own_mean[:, None, None]) / own_std[:, None, None]
    np.testing.assert_allclose(np.concatenate([x, y]), expected, rtol=1e-4, atol=1e-4)
    # converted back with the TRAINING statistics, as the public single-variable loader does
    back = np.asarray(meta["scale"])[:, None, None] * expected + np.asarray(meta["offset"])[:, None, None]
    np.testing.assert_allclose(ds.to_metric_space(y.numpy()), back[2:], rtol=1e-4)
    both = WindowDataset(path, "test", split_scaling="own_both")
    np.testing.assert_allclose(both.to_metric_space(both[3][1].numpy()), window[2:], rtol=1e-5)
    # training windows and the default are untouched
    ours = WindowDataset(path, "test")
    np.testing.assert_allclose(ours.to_metric_space(ours[3][1].numpy()), window[2:], rtol=1e-5)
    assert np.array_equal(WindowDataset(path, "train", split_scaling="own")[0][0],
                          WindowDataset(path, "train")[0][0])


def test_own_scaling_is_refused_for_fixed_scaling_and_unknown_names(tmp_path):
    path = write_store(make_prepared(scaling="fixed", dtype=np.uint8), tmp_path / "v.zarr")
    with pytest.raises(DataError, match="needs a z-scored store"):
        WindowDataset(path, "val", split_scaling="own")
    with pytest.raises(DataError, match="unknown split_scaling 'mine'"):
        WindowDataset(path, "val", split_scaling="mine")
