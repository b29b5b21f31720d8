import numpy as np
import pytest
import torch
import zarr

from conftest import make_prepared
from pipeline.core.errors import DataError
from pipeline.data.prepared import Split
from pipeline.data.store import MANIFEST, read_meta, verify_store, write_store
from pipeline.data.windows import WindowDataset, loader_options


def test_store_layout_stats_and_windows(tmp_path):
    prep = make_prepared()
    path = write_store(prep, tmp_path / "d.zarr")
    meta = read_meta(path)
    train = prep.splits["train"].frames
    assert meta["offset"] == pytest.approx([float(train.astype(np.float64).mean())], rel=1e-6)
    assert meta["scale"] == pytest.approx([float(train.astype(np.float64).std())], rel=1e-6)
    assert meta["windows"] == {"train": 37, "val": 17, "test": 17}
    assert meta["provenance"] == {"made_by": "tests"}
    frames = zarr.open_group(path, mode="r")["train/frames"]
    assert frames.chunks == (1, 1, 16, 16) and frames.shards[0] == 40  # one shard: few files

    ds = WindowDataset(path, "train")
    x, y = ds[5]
    assert x.shape == (2, 1, 16, 16) and y.shape == (2, 1, 16, 16)
    raw = train[5:9]
    expected = (raw - meta["offset"][0]) / meta["scale"][0]
    np.testing.assert_allclose(torch.cat([x, y]).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.to_metric_space(x.numpy()), raw[:2], rtol=1e-5)


def test_lazy_reads_match_cached_reads(tmp_path):
    path = write_store(make_prepared(), tmp_path / "d.zarr")
    cached, lazy = WindowDataset(path, "test"), WindowDataset(path, "test", cache_bytes=0)
    for i in (0, 7, len(cached) - 1):
        torch.testing.assert_close(cached[i], lazy[i])


def test_multiworker_loader(tmp_path):
    path = write_store(make_prepared(), tmp_path / "d.zarr")
    ds = WindowDataset(path, "val", cache_bytes=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    xs = torch.cat([x for x, _ in loader])
    assert xs.shape[0] == len(ds)
    torch.testing.assert_close(xs[3], ds[3][0])


def test_fixed_scaling_keeps_uint8(tmp_path):
    prep = make_prepared(scaling="fixed", dtype=np.uint8)
    path = write_store(prep, tmp_path / "v.zarr")
    assert zarr.open_group(path, mode="r")["train/frames"].dtype == np.uint8
    ds = WindowDataset(path, "train")
    x, _ = ds[0]
    assert float(x.max()) <= 1.0 and ds.metric_space == "model"


def test_split_too_short_is_refused_and_nothing_written(tmp_path):
    prep = make_prepared()
    prep.splits["val"] = Split(frames=prep.splits["val"].frames[:3], starts=np.zeros(0, dtype=np.int64))
    with pytest.raises(DataError, match="split 'val': no complete window of 4 frames"):
        write_store(prep, tmp_path / "d.zarr")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_store(tmp_path):
    path = write_store(make_prepared(), tmp_path / "d.zarr")
    bad = make_prepared()
    bad.splits["train"].frames[:] = 5.0  # constant: no usable z-score
    with pytest.raises(DataError, match="statistics"):
        write_store(bad, path)
    assert read_meta(path)["windows"]["train"] == 37
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_the_manifest_lists_every_file_but_the_root_metadata(tmp_path):
    path = write_store(make_prepared(), tmp_path / "d.zarr")
    listed = set(read_meta(path)[MANIFEST]["files"])
    on_disk = {f.relative_to(path).as_posix() for f in path.rglob("*") if f.is_file()}
    assert listed == on_disk - {"zarr.json"} and "test/frames/c/0/0/0/0" in listed
    assert verify_store(path)["T_in"] == 2


def test_a_deleted_chunk_is_named(tmp_path):
    path = write_store(make_prepared(), tmp_path / "t2m.zarr")
    WindowDataset(path, "test")  # verified once, then the file goes: not taken from the cache
    (path / "test/frames/c/0/0/0/0").unlink()
    with pytest.raises(DataError, match=r"t2m.zarr/test/frames/c/0/0/0/0: missing.*preprocess_t2m"):
        WindowDataset(path, "train")  # any split's reader checks the whole store


@pytest.mark.parametrize("change", ["flip", "truncate"])
def test_a_corrupted_chunk_is_named(tmp_path, change):
    path = write_store(make_prepared(), tmp_path / "t2m.zarr")
    chunk = path / "val/frames/c/0/0/0/0"
    WindowDataset(path, "val")
    data = bytearray(chunk.read_bytes())
    if change == "flip":
        data[100:164] = bytes(b ^ 0xFF for b in data[100:164])  # size kept: only the checksum tells
    else:
        del data[-10:]
    chunk.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"val/frames/c/0/0/0/0: .* the file is corrupt; rewrite it"):
        WindowDataset(path, "val")


def test_a_store_without_manifest_is_refused(tmp_path):
    path = write_store(make_prepared(), tmp_path / "t2m.zarr")
    root = zarr.open_group(path, mode="r+")
    root.attrs.update({MANIFEST: None})  # as written before stores recorded their files
    with pytest.raises(DataError, match="no file manifest.*preprocess_t2m"):
        WindowDataset(path, "test")


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="run the preprocess stage"):
        WindowDataset(tmp_path / "none.zarr", "train")


def test_write_through_a_dask_distributed_cluster(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        path = write_store(make_prepared(), tmp_path / "d.zarr", scheduler=cluster.scheduler_address)
    assert read_meta(path)["windows"]["test"] == 17


def test_display_info_units_and_latitudes(tmp_path):
    from pipeline.data.store import display_info

    p = make_prepared()
    p.attrs.update(units=["K"], grid={"dims": ["lat", "lon"], "lat": [-10.0 + i for i in range(16)]})
    meta = read_meta(write_store(p, tmp_path / "w.zarr"))
    assert display_info(meta) == {"units": ["K"], "lat": [-10.0 + i for i in range(16)]}
    video = read_meta(write_store(make_prepared(scaling="fixed", dtype=np.uint8), tmp_path / "v.zarr"))
    assert display_info(video) == {"units": ["scaled, 0-1"], "lat": None}


def test_a_split_over_the_cache_budget_is_never_loaded_whole(tmp_path):
    """Human3.6M's 14 GB train split: every window reads only its own frames from the store."""
    path = write_store(make_prepared(), tmp_path / "d.zarr")
    nbytes = zarr.open_group(path, mode="r")["train/frames"].nbytes
    ds = WindowDataset(path, "train", cache_bytes=nbytes - 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, **loader_options(2, torch.device("cpu")))
    assert sum(len(x) for x, _ in loader) == len(ds)
    ds[0]
    assert isinstance(ds._frames, zarr.Array)  # the main process too: a handle, not an array in memory
    assert WindowDataset(path, "train", cache_bytes=nbytes)._array().__class__ is np.ndarray


def test_loader_options_pin_and_prefetch_on_cuda_only():
    assert loader_options(0, torch.device("cpu")) == {"num_workers": 0, "pin_memory": False}
    cuda = loader_options(4, torch.device("cuda"))
    assert cuda["pin_memory"] and cuda["persistent_workers"] and cuda["prefetch_factor"] == 4
    assert not loader_options(2, torch.device("cpu"))["pin_memory"]


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_a_split_with_nan_frames_is_refused_naming_store_and_split(tmp_path, split):
    prep = make_prepared(scaling="fixed")  # fixed: the train statistics would not see a NaN first
    prep.splits[split].frames[3:] = np.nan  # e.g. val dates that fall on missing data
    with pytest.raises(DataError) as err:
        write_store(prep, tmp_path / "d.zarr")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'd.zarr'}: split {split!r} has NaN")
    assert "(first: frame 3)" in msg
    assert list(tmp_path.iterdir()) == []  # nothing written, so training never starts on it


def test_an_infinite_frame_is_refused(tmp_path):
    prep = make_prepared()
    prep.splits["test"].frames[7, 0, 2, 2] = np.inf
    with pytest.raises(DataError, match=r"split 'test' has NaN or infinite values in 1 of 20 frames "
                                         r"\(first: frame 7\)"):
        write_store(prep, tmp_path / "d.zarr")


def test_an_unreachable_dask_scheduler_is_one_line_within_seconds(tmp_path):
    import time

    from pipeline.core.errors import ConfigError

    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        write_store(make_prepared(), tmp_path / "d.zarr", scheduler="tcp://127.0.0.1:1")
    assert time.monotonic() - t0 < 20  # distributed's own default retries for 30 s
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("data.dask_scheduler: no dask scheduler reachable at 'tcp://127.0.0.1:1'")
    assert list(tmp_path.iterdir()) == []
