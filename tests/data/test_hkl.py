"""KITTI .hkl files are read with h5py: the layouts PredNet's and hickle's files use, and never a
pickled node (a crafted file must not run code)."""
import pickle

import h5py
import hickle
import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.data.hkl import read_hkl


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a crafted file's pickle does when unpickled
        return (open, (str(self.marker), "w"))


def test_hickle5_files_read_like_hickle(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 8, 10, 3), dtype=np.uint8)
    names = ["city-drive_0001"] * 3 + ["road-drive_0002"] * 2
    hickle.dump(frames, str(tmp_path / "X.hkl"), mode="w", compression="gzip")
    hickle.dump(names, str(tmp_path / "s.hkl"), mode="w")
    out = read_hkl(tmp_path / "X.hkl")
    assert out.dtype == np.uint8 and np.array_equal(out, frames)
    assert read_hkl(tmp_path / "s.hkl") == names == hickle.load(str(tmp_path / "s.hkl"))


def test_hickle3_layout(tmp_path):
    """hickle 2/3 (PredNet's era): one ``data_0`` dataset typed by a string attribute."""
    with h5py.File(tmp_path / "X.hkl", "w") as f:
        f.attrs.update(CLASS=b"hickle", VERSION="3.4.0")
        f.create_dataset("data_0", data=np.ones((2, 4, 4, 3), np.uint8)).attrs["type"] = [b"ndarray"]
    with h5py.File(tmp_path / "s.hkl", "w") as f:
        f.create_dataset("data_0", data=[b"a", b"a", b"b"]).attrs["type"] = [b"<type 'list'>"]
    assert read_hkl(tmp_path / "X.hkl").shape == (2, 4, 4, 3)
    assert read_hkl(tmp_path / "s.hkl") == ["a", "a", "b"]


@pytest.mark.parametrize("layout", ["hickle5", "hickle5_nested", "hickle3"])
def test_pickled_node_is_refused_and_never_unpickled(tmp_path, layout):
    marker = tmp_path / "code-ran"
    path = tmp_path / "X_train.hkl"
    if layout == "hickle3":
        with h5py.File(path, "w") as f:
            d = f.create_dataset("data_0", data=[np.void(pickle.dumps(_RunsCode(marker)))])
            d.attrs["type"] = [b"pickle"]
    else:
        obj = _RunsCode(marker) if layout == "hickle5" else [np.zeros(3), _RunsCode(marker)]
        with pytest.warns(Warning):
            hickle.dump(obj, str(path), mode="w")
    with pytest.raises(DataError, match=r"X_train.hkl: node '/data.*' holds a pickled Python object"):
        read_hkl(path)
    assert not marker.exists()


def test_not_hdf5_or_unexpected_content_is_named(tmp_path):
    (tmp_path / "bad.hkl").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="bad.hkl: not a readable hickle"):
        read_hkl(tmp_path / "bad.hkl")
    hickle.dump({"a": 1}, str(tmp_path / "dict.hkl"), mode="w")
    with pytest.raises(DataError, match="holds a dict object, not an array or a list of names"):
        read_hkl(tmp_path / "dict.hkl")


def _retyped(path, name, make):
    """Replace dataset ``name`` by ``make(file, name)``, keeping its hickle type attributes."""
    with h5py.File(path, "r+") as f:
        attrs = dict(f[name].attrs)
        del f[name]
        node = make(f, name)
        for k, v in attrs.items():
            node.attrs[k] = v


def test_a_reference_cycle_is_refused_in_one_line(tmp_path):
    path = tmp_path / "sources_train.hkl"
    hickle.dump(["a", "b", "a"], str(path), mode="w")  # hickle 5: the second "a" is a reference

    def self_ref(f, name):
        d = f.create_dataset(name, shape=(), dtype=h5py.ref_dtype)
        d[()] = d.ref  # a link to itself: followed forever before
        return d

    _retyped(path, "data/data2", self_ref)
    with pytest.raises(DataError) as err:
        read_hkl(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: node '/data/data2': references nested over 8 deep")


def test_hard_and_soft_link_cycles_end(tmp_path):
    path = tmp_path / "sources_train.hkl"
    hickle.dump(["a", "b"], str(path), mode="w")
    with h5py.File(path, "r+") as f:
        f["data"]["loop"] = f["data"]  # a group holding itself
        f["data"]["soft"] = h5py.SoftLink("/data")
    with pytest.raises(DataError, match=r"sources_train.hkl: unexpected hickle content"):
        read_hkl(path)


@pytest.mark.parametrize("shape", [(10**12,), (2**40, 2**40)])
def test_a_huge_declared_dataset_is_refused_before_reading(tmp_path, shape):
    path = tmp_path / "X_train.hkl"
    hickle.dump(np.zeros((2, 2), np.uint8), str(path), mode="w")
    # a few KB on disk; (2**40, 2**40) is 2**80 bytes, past any 64-bit product
    _retyped(path, "data", lambda f, n: f.create_dataset(n, shape=shape, dtype=np.uint8,
                                                         chunks=(2**16,) + (1,) * (len(shape) - 1),
                                                         compression="gzip"))
    with pytest.raises(DataError) as err:
        read_hkl(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: datasets declare {np.prod(shape, dtype=object):,} bytes "
                                              f"(largest '/data'), over the limit of {16 * 2**30:,}")


def test_the_byte_limit_is_per_call(tmp_path):
    frames = np.zeros((4, 8, 10, 3), np.uint8)
    hickle.dump(frames, str(tmp_path / "X.hkl"), mode="w")
    assert read_hkl(tmp_path / "X.hkl", max_bytes=frames.nbytes).shape == frames.shape
    with pytest.raises(DataError, match=f"X.hkl: datasets declare {frames.nbytes:,} bytes"):
        read_hkl(tmp_path / "X.hkl", max_bytes=frames.nbytes - 1)
