"""The preprocess step: a failed or killed run keeps the previous store, leaves no scratch
folder behind, and a corrupt raw file is named."""
import types

import pytest

import pipeline.data.prepare as prepare
import pipeline.data.store as store
from pipeline.core.dotted import set_dotted
from pipeline.core.errors import DataError
from pipeline.data.sources import weatherbench as wb
from pipeline.data.store import read_meta
from tests.conftest import make_prepared


def _fake_source(monkeypatch, prepared):
    monkeypatch.setattr(prepare, "get_source", lambda name: types.SimpleNamespace(load=lambda raw, s: prepared))


def test_failed_preprocess_keeps_the_old_store_and_cleans_scratch(params, tmp_path, monkeypatch):
    _fake_source(monkeypatch, make_prepared())
    path = prepare.preprocess(params, "t2m", tmp_path)
    killed = path.with_name(f".{path.name}.tmp-dead1234")  # what a kill -9 mid-write leaves
    (killed / "train").mkdir(parents=True)

    _fake_source(monkeypatch, make_prepared(n_frames=(60, 20, 20)))
    real = store._split_dataset
    calls = []

    def dies_on_test_split(prepared, split):
        calls.append(split)
        if split == "test":
            raise OSError("disk full")
        return real(prepared, split)

    monkeypatch.setattr(store, "_split_dataset", dies_on_test_split)
    with pytest.raises(OSError, match="disk full"):
        prepare.preprocess(params, "t2m", tmp_path)
    assert calls == ["train", "val", "test"]  # it failed after writing most of the new store
    assert read_meta(path)["windows"]["train"] == 37  # the old store, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["t2m.zarr"]


def test_corrupt_netcdf_is_named(params, tmp_path):
    raw = prepare.raw_dir(params, "t2m", tmp_path)
    years = {"train": [2010, 2010], "val": [2016, 2016], "test": [2017, 2017]}
    params = set_dotted(params, "datasets.t2m.data.years", years)  # a copy: the fixture is shared
    settings = dict(params["datasets"]["t2m"]["data"], name="t2m")
    wb.make_sample(raw, settings, {"hours_per_year": 48}, 0)
    bad = wb.year_file(raw, "2m_temperature", 2016)
    data = bytearray(bad.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = bytes(b ^ 0xFF for b in data[mid:mid + 2000])  # a chunk, not the header
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{bad}: corrupt or unreadable"):
        prepare.preprocess(params, "t2m", tmp_path)
    assert not prepare.store_path(params, "t2m", tmp_path).exists()


def test_remote_download_writes_the_manifest_and_checksums(params, tmp_path):
    import json
    import zipfile

    from pipeline.data.download import checksums_path
    from pipeline.data.sources import taxibj
    from tests.conftest import serve

    twin = tmp_path / "twin"
    taxibj.make_sample(twin, dict(params["datasets"]["taxibj"]["data"], name="taxibj"),
                       {"train_samples": 12, "test_samples": 8}, 0)
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / taxibj.ARCHIVE, "w") as z:
        z.write(twin / taxibj.FILE, f"taxibj/{taxibj.FILE}")
    with serve(served) as base:
        url = f"{base}/{taxibj.ARCHIVE}"
        p = set_dotted(set_dotted(params, "datasets.taxibj.raw", "remote"), "datasets.taxibj.data.url", url)
        raw = prepare.download(p, "taxibj", tmp_path)
    manifest = json.loads((raw / "manifest.json").read_text())["files"][taxibj.ARCHIVE]
    assert manifest["url"] == url and manifest["size"] == (served / taxibj.ARCHIVE).stat().st_size
    assert json.loads(checksums_path().read_text())[url]["sha256"] == manifest["sha256"]


def test_the_twin_is_regenerated_when_its_generator_changes_not_otherwise(params, tmp_path, monkeypatch):
    sources = tmp_path / "sources"
    (sources / "weatherbench").mkdir(parents=True)
    (sources / "weatherbench" / "twin.py").write_text("SPEED = 1\n")
    (sources / "frames.py").write_text("# shared helper\n")
    monkeypatch.setattr(prepare, "SOURCES_DIR", sources)
    made = []
    monkeypatch.setattr(prepare, "get_source", lambda name: types.SimpleNamespace(
        make_sample=lambda raw, settings, sample, seed: made.append(raw)))
    root = tmp_path / "repo"
    prepare.download(params, "t2m", root)
    prepare.download(params, "t2m", root)
    assert len(made) == 1  # same settings, same code: the twin is kept
    (sources / "weatherbench" / "twin.py").write_text("SPEED = 2\n")
    prepare.download(params, "t2m", root)
    (sources / "frames.py").write_text("# shared helper, changed\n")
    prepare.download(params, "t2m", root)
    assert len(made) == 3
    assert prepare.twin_code_digest("weatherbench", sources) != prepare.twin_code_digest("custom", sources)
