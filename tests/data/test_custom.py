"""The "your own data" source on netCDF and Zarr written by the tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import custom, get_source

SPLITS = {"train": ["2021-01-01", "2021-01-02"], "val": ["2021-01-03", "2021-01-03"],
          "test": ["2021-01-04T00:00", "2021-01-04T11:00"]}


def settings(path, **over):
    s = {"source": "custom", "name": "mine", "path": str(path), "variables": ["sst", "wind"],
         "splits": SPLITS, "T_in": 3, "T_out": 2}
    s.update(over)
    return s


def dataset(times, *, levels=None, time="time", names=("sst", "wind"), seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (len(times),) + ((len(levels),) if levels is not None else ()) + (8, 12)
    dims = (time,) + (("plev",) if levels is not None else ()) + ("y", "x")
    coords = {time: times, "y": np.arange(8.0), "x": np.arange(12.0)}
    if levels is not None:
        coords["plev"] = np.asarray(levels)
    return xr.Dataset({n: (dims, rng.normal(i * 10, 1, shape).astype(np.float32))
                       for i, n in enumerate(names)}, coords=coords)


def hourly(start, n):
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "h")


def write_two_files(folder: Path, **kw) -> tuple[Path, xr.Dataset]:
    """Four days of hourly data in two netCDF files (Jan 1-2 and Jan 3-4)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = dataset(hourly("2021-01-01", 96), **kw)
    ds.isel(time=slice(0, 48)).to_netcdf(folder / "part1.nc")
    ds.isel(time=slice(48, None)).to_netcdf(folder / "part2.nc")
    return folder / "part*.nc", ds


def test_netcdf_glob_windows_and_values(tmp_path):
    pattern, ds = write_two_files(tmp_path / "data")
    p = get_source("custom").load(tmp_path / "raw", settings(pattern))
    assert p.channels == ["sst", "wind"] and p.scaling == "zscore" and p.metric_space == "physical"
    # train 48 h, val 24 h, test 12 h; every window of 5 that fits: n - 5 + 1
    for split, n in {"train": 48, "val": 24, "test": 12}.items():
        s = p.splits[split]
        assert s.frames.shape == (n, 2, 8, 12) and s.frames.dtype == np.float32
        np.testing.assert_array_equal(s.starts, np.arange(n - 4))
    x = np.asarray(p.splits["val"].frames)
    np.testing.assert_array_equal(x[:, 0], ds["sst"].values[48:72])
    np.testing.assert_array_equal(x[:, 1], ds["wind"].values[48:72])
    assert p.attrs["files"]["train"] == [str(tmp_path / "data" / "part1.nc")]
    assert p.attrs["time_span"]["test"] == ["2021-01-04T00:00:00", "2021-01-04T11:00:00"]


def test_step_stride_and_levels(tmp_path):
    pattern, ds = write_two_files(tmp_path / "data", levels=[1000, 850, 500])
    s = settings(pattern, levels=[500, 1000], level_dim="plev", step=3,
                 stride={"train": 2, "val": 1, "test": 1},
                 splits={**SPLITS, "test": ["2021-01-04", "2021-01-04"]})
    p = custom.load(tmp_path / "raw", s)
    assert p.channels == ["sst500", "sst1000", "wind500", "wind1000"]
    tr = p.splits["train"]
    assert tr.frames.shape == (16, 4, 8, 12) and p.step == 1
    np.testing.assert_array_equal(tr.starts, np.arange(0, 16 - 4, 2))
    assert (np.diff(tr.time) == np.timedelta64(3, "h")).all()
    x = np.asarray(tr.frames)
    np.testing.assert_array_equal(x[:, 0], ds["sst"].sel(plev=500).values[0:48:3])
    np.testing.assert_array_equal(x[:, 3], ds["wind"].sel(plev=1000).values[0:48:3])
    assert [len(p.splits[k].starts) for k in ("val", "test")] == [8 - 4, 8 - 4]
    with pytest.raises(DataError, match=r"part\*\.nc: 'sst' has 3 values of 'plev'; choose"):
        custom.load(tmp_path / "raw", settings(pattern, level_dim="plev"))
    with pytest.raises(DataError, match=r"lacks plev \[700\]"):
        custom.load(tmp_path / "raw", settings(pattern, level_dim="plev", levels=[700]))


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata")
def test_zarr_store(tmp_path):
    store = tmp_path / "mine.zarr"
    ds = dataset(hourly("2021-01-01", 96), time="valid_time")
    ds.to_zarr(store, mode="w", consolidated=False)
    p = custom.load(tmp_path / "raw", settings(store, time="valid_time"))
    assert [len(p.splits[k].starts) for k in ("train", "val", "test")] == [44, 20, 8]
    np.testing.assert_array_equal(np.asarray(p.splits["test"].frames)[:, 1], ds["wind"].values[72:84])
    assert p.attrs["files"]["test"] == [str(store)]


# ------------------------------------------------------------------------------- bad data
def test_missing_variable_names_file(tmp_path):
    pattern, _ = write_two_files(tmp_path / "data")
    dataset(hourly("2021-01-03", 48), names=("sst", "gust")).to_netcdf(tmp_path / "data" / "part2.nc")
    with pytest.raises(DataError, match=r"part2\.nc: variable 'wind' \(datasets\.mine\.data\.variables\) expected"):
        custom.load(tmp_path / "raw", settings(pattern))


def test_missing_time_coordinate(tmp_path):
    pattern, _ = write_two_files(tmp_path / "data")
    with pytest.raises(DataError, match=r"part1\.nc: no time coordinate 'date'"):
        custom.load(tmp_path / "raw", settings(pattern, time="date"))


def test_non_monotonic_time_names_file(tmp_path):
    t = hourly("2021-01-01", 96)
    t[10], t[11] = t[11], t[10]
    dataset(t).to_netcdf(tmp_path / "one.nc")
    with pytest.raises(DataError, match=r"one\.nc: time axis is not strictly increasing: "
                                        r"2021-01-01T11:00:00 is followed by 2021-01-01T10:00:00"):
        custom.load(tmp_path / "raw", settings(tmp_path / "one.nc"))


def test_overlapping_files_name_both(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    dataset(hourly("2021-01-01", 50)).to_netcdf(folder / "a.nc")
    dataset(hourly("2021-01-03", 48)).to_netcdf(folder / "b.nc")
    with pytest.raises(DataError, match=r"b\.nc: starts at 2021-01-03T00:00:00, not after the end of .*a\.nc"):
        custom.load(tmp_path / "raw", settings(folder / "*.nc"))


def test_gap_inside_split_names_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    dataset(hourly("2021-01-01", 40)).to_netcdf(folder / "a.nc")  # ends 2021-01-02T15
    dataset(hourly("2021-01-02T18", 78)).to_netcdf(folder / "b.nc")
    with pytest.raises(DataError, match=r"a\.nc / .*b\.nc: time axis of split 'train' is not evenly "
                                        r"spaced.*2021-01-02T15:00:00 -> 2021-01-02T18:00:00 is 0 days 03:00:00"):
        custom.load(tmp_path / "raw", settings(folder / "*.nc"))


def test_nan_names_file_and_time(tmp_path):
    pattern, ds = write_two_files(tmp_path / "data")
    part2 = ds.isel(time=slice(48, None)).copy(deep=True)
    part2["wind"][30, 2, 3] = np.nan
    part2.to_netcdf(tmp_path / "data" / "part2.nc")
    with pytest.raises(DataError, match=r"part2\.nc: NaN in 'wind' at 2021-01-04T06:00:00 \(split 'test'\)"):
        custom.load(tmp_path / "raw", settings(pattern))


def test_too_short_split_names_split_and_numbers(tmp_path):
    pattern, _ = write_two_files(tmp_path / "data")
    s = settings(pattern, splits={**SPLITS, "test": ["2021-01-04T00:00", "2021-01-04T03:00"]})
    with pytest.raises(DataError, match=r"split 'test' \(2021-01-04T00:00 \.\. 2021-01-04T03:00\).*: "
                                        r"4 frames .*one window needs T_in \+ T_out = 5"):
        custom.load(tmp_path / "raw", s)
    s = settings(pattern, splits={**SPLITS, "test": ["2022-01-01", "2022-01-02"]})
    with pytest.raises(DataError, match=r"split 'test' .*: 0 frames"):
        custom.load(tmp_path / "raw", s)


def test_missing_path(tmp_path):
    s = settings(tmp_path / "nowhere" / "*.nc")
    with pytest.raises(DataError, match=r"datasets\.mine\.data\.path: no netCDF file matches .*nowhere"):
        custom.fetch(tmp_path / "raw", s)
    with pytest.raises(DataError, match=r"no netCDF file matches"):
        custom.load(tmp_path / "raw", s)
    with pytest.raises(DataError, match=r"Zarr store .*gone\.zarr does not exist"):
        custom.fetch(tmp_path / "raw", settings(tmp_path / "gone.zarr"))


# ------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("change, key", [
    ({"colour": 1}, "datasets.mine.data.colour"),
    ({"path": None}, "datasets.mine.data.path"),
    ({"variables": "sst"}, "datasets.mine.data.variables"),
    ({"splits": {"train": ["2021-01-01", "2021-01-02"], "val": ["2021-01-03", "2021-01-03"]}},
     "datasets.mine.data.splits.test"),
    ({"splits": {**SPLITS, "val": ["2021-01-03", "yesterday"]}}, "datasets.mine.data.splits.val"),
    ({"splits": {**SPLITS, "val": ["2021-01-03", "2021-01-02"]}}, "datasets.mine.data.splits.val"),
    ({"splits": {**SPLITS, "val": ["2021-01-02", "2021-01-03"]}}, "datasets.mine.data.splits.val"),
    ({"T_out": 0}, "datasets.mine.data.T_out"),
    ({"stride": "2"}, "datasets.mine.data.stride"),
])
def test_bad_settings_name_the_key(change, key):
    s = settings("x.nc")
    s.update(change)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        custom.parse_settings(s)


# ------------------------------------------------------------------------------- twin + fetch
def test_sample_then_fetch_switches_what_load_reads(tmp_path):
    pattern, ds = write_two_files(tmp_path / "data")
    raw = tmp_path / "raw"
    custom.make_sample(raw, settings(pattern), {"frames_per_split": 10, "height": 6, "width": 10}, seed=1)
    assert json.loads((raw / "custom.json").read_text()) == {"path": "custom_sample.nc", "sample": True}
    with xr.open_dataset(raw / "custom_sample.nc") as twin:
        assert set(twin.data_vars) == {"sst", "wind"} and twin["sst"].dims == ("time", "lat", "lon")
    p = custom.load(raw, settings(pattern))
    assert p.attrs["sample"] and p.splits["train"].frames.shape == (10, 2, 6, 10)
    assert [len(p.splits[k].starts) for k in ("train", "val", "test")] == [6, 6, 6]

    res = custom.fetch(raw, settings(pattern))
    assert [r.path.name for r in res] == ["part1.nc", "part2.nc"] and all(len(r.sha256) == 64 for r in res)
    q = custom.load(raw, settings(pattern))
    assert not q.attrs["sample"] and q.splits["train"].frames.shape == (48, 2, 8, 12)


def test_yaml_dates_are_accepted(tmp_path):
    """Unquoted dates in params.yaml arrive as date/datetime objects."""
    import datetime as dt

    pattern, _ = write_two_files(tmp_path / "data")
    s = settings(pattern, splits={"train": [dt.date(2021, 1, 1), dt.date(2021, 1, 2)],
                                  "val": [dt.date(2021, 1, 3), dt.date(2021, 1, 3)],
                                  "test": [dt.datetime(2021, 1, 4, 0), dt.datetime(2021, 1, 4, 11)]})
    p = custom.load(tmp_path / "raw", s)
    assert [p.splits[k].frames.shape[0] for k in ("train", "val", "test")] == [48, 24, 12]


def test_zarr_twin_with_levels(tmp_path):
    s = settings(tmp_path / "user.zarr", levels=[850, 500], time="valid_time")
    custom.make_sample(tmp_path, s, {"frames_per_split": 8, "interval": "90min"}, seed=0)
    assert (tmp_path / "custom_sample.zarr").is_dir()
    p = custom.load(tmp_path, s)
    assert p.channels == ["sst850", "sst500", "wind850", "wind500"]
    assert (np.diff(p.splits["val"].time) == np.timedelta64(90, "m")).all()
    assert [len(p.splits[k].starts) for k in ("train", "val", "test")] == [4, 4, 4]
    with pytest.raises(ConfigError, match=r"datasets\.mine\.sample\.frames_per_split: 40 steps"):
        custom.make_sample(tmp_path, s, {"frames_per_split": 40, "interval": "6h"}, seed=0)


def test_zarr_fetch_hashes_store(tmp_path):
    store = tmp_path / "mine.zarr"
    dataset(hourly("2021-01-01", 96)).to_zarr(store, mode="w", consolidated=False)
    a = custom.fetch(tmp_path / "raw", settings(store))
    b = custom.fetch(tmp_path / "raw", settings(store))
    assert len(a) == 1 and a[0].sha256 == b[0].sha256 and a[0].size > 0


def test_box_settings_and_errors(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    lat, lon = np.linspace(-80, 80, 9), np.arange(0, 360, 30.0)
    times = hourly("2021-01-01", 96)
    xr.Dataset({n: (("time", "lat", "lon"), np.random.default_rng(0).normal(size=(96, 9, 12)).astype("f4"))
                for n in ("sst", "wind")}, coords={"time": times, "lat": lat, "lon": lon}).to_netcdf(folder / "g.nc")
    p = custom.load(tmp_path / "raw", settings(folder / "g.nc", box={"lat": [-20, 40], "lon": [300, 60]}))
    assert p.attrs["grid"]["lat"] == [-20.0, 0.0, 20.0, 40.0]
    assert p.attrs["grid"]["lon"] == [300.0, 330.0, 0.0, 30.0, 60.0]  # through the date line, in order
    assert p.splits["train"].frames.shape[2:] == (4, 5)
    with pytest.raises(DataError, match=r"g\.nc: datasets.mine.data.box.lat = \[85.0, 89.0\] selects no lat"):
        custom.load(tmp_path / "raw", settings(folder / "g.nc", box={"lat": [85, 89]}))
    with pytest.raises(ConfigError, match=r"^datasets.mine.data.box.lat: expected \[south, north\]"):
        custom.parse_settings(settings(folder / "g.nc", box={"lat": [40, -20]}))
    ds = dataset(hourly("2021-01-01", 96))  # y/x grid without lat/lon coordinates
    ds.to_netcdf(folder / "yx.nc")
    with pytest.raises(DataError, match=r"datasets.mine.data.box.lat needs a 1-D lat coordinate"):
        custom.load(tmp_path / "raw", settings(folder / "yx.nc", box={"lat": [0, 10]}))
