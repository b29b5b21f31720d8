"""WeatherBench source: twin and hand-written real-layout files through the same reader."""
from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.core.errors import ConfigError, DataError
from pipeline.data.sources import get_source
from pipeline.data.sources import weatherbench as wb

YEARS = {"train": [2010, 2011], "val": [2016, 2016], "test": [2017, 2018]}


def t2m(**over):
    s = {"source": "weatherbench", "name": "t2m", "variables": ["2m_temperature"], "levels": None,
         "years": YEARS, "T_in": 12, "T_out": 12, "step": 1, "stride": 1}
    s.update(over)
    return s


def hand_write(raw: Path, var: str, year: int, hours: int, levels=None, *, short=None,
               times=None, fill=None) -> np.ndarray:
    """A file in the real WeatherBench 1 layout written directly with xarray (not write_year)."""
    if times is None:
        times = np.datetime64(f"{year}-01-01T00", "ns") + np.arange(hours) * np.timedelta64(1, "h")
    shape = (len(times),) + ((len(levels),) if levels else ()) + (32, 64)
    data = np.random.default_rng(year).normal(280, 5, shape).astype(np.float32) if fill is None else fill
    dims = ("time", "level", "lat", "lon") if levels else ("time", "lat", "lon")
    coords = {"time": times, "lat": np.linspace(-87.1875, 87.1875, 32), "lon": np.arange(64) * 5.625}
    if levels:
        coords["level"] = np.asarray(levels, dtype=np.int32)
    name = short or wb.VARIABLES[var][0]
    path = raw / var / f"{var}_{year}_5.625deg.nc"
    path.parent.mkdir(parents=True, exist_ok=True)
    xr.Dataset({name: (dims, data)}, coords=coords).to_netcdf(path)
    return data


def write_split_files(raw, var, settings, hours, levels=None, **kw):
    cfg = wb.parse_settings(settings)
    return {y: hand_write(raw, var, y, hours, levels, **kw) for y in cfg.all_years()}


# ------------------------------------------------------------------------------- sample + load
def test_t2m_sample_window_counts_follow_openstl(tmp_path):
    src = get_source("weatherbench")
    src.make_sample(tmp_path, t2m(), {"hours_per_year": 96}, seed=0)
    files = sorted(p.name for p in (tmp_path / "2m_temperature").iterdir())
    assert files == [f"2m_temperature_{y}_5.625deg.nc" for y in (2010, 2011, 2016, 2017, 2018)]
    p = src.load(tmp_path, t2m())
    assert p.channels == ["t2m"] and p.scaling == "zscore" and p.metric_space == "physical"
    assert (p.T_in, p.T_out, p.step) == (12, 12, 1)
    # each year is one 96 h run (95 h in the split's last year: OpenSTL drops the last step);
    # a run of n frames gives n - 24 starts
    expect = {"train": (96 + 95, 72 + 71), "val": (95, 71), "test": (96 + 95, 72 + 71)}
    for split, (n_frames, n_windows) in expect.items():
        s = p.splits[split]
        assert s.frames.shape == (n_frames, 1, 32, 64) and s.frames.dtype == np.float32
        assert len(s.starts) == n_windows and s.starts.dtype == np.int64
        assert s.time.shape == (n_frames,)
    tr = p.splits["train"]
    assert list(tr.starts[70:74]) == [70, 71, 96, 97]  # no window crosses the year gap
    last = tr.starts[-1] + 23
    assert np.diff(tr.time[tr.starts[-1]:last + 1]).max() == np.timedelta64(1, "h")
    x = np.asarray(tr.frames)
    assert 200 < x.min() and x.max() < 330 and np.isfinite(x).all()
    # latitude gradient (warm tropics) and a diurnal cycle
    assert x[:, 0, 14:18].mean() > x[:, 0, :3].mean() + 20
    assert np.abs(x[12, 0] - x[0, 0]).mean() > 1.0
    assert p.attrs["files"]["val"] == ["2m_temperature/2m_temperature_2016_5.625deg.nc"]
    assert p.attrs["time_span"]["val"] == ["2016-01-01T00:00:00", "2016-01-04T22:00:00"]
    assert p.attrs["frame_interval_hours"] == 1


def test_sample_is_seeded(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d, seed in ((a, 3), (b, 3), (c, 4)):
        wb.make_sample(d, t2m(years={"train": [2010, 2010], "val": [2016, 2016], "test": [2017, 2017]}),
                       {"hours_per_year": 30}, seed)
    fa, fb, fc = (np.asarray(wb.load(d, t2m(T_in=2, T_out=2, years={
        "train": [2010, 2010], "val": [2016, 2016], "test": [2017, 2017]})).splits["train"].frames)
        for d in (a, b, c))
    assert np.array_equal(fa, fb) and not np.array_equal(fa, fc)


def test_stride_per_split(tmp_path):
    wb.make_sample(tmp_path, t2m(), {"hours_per_year": 96}, 0)
    p = wb.load(tmp_path, t2m(stride={"train": 6, "val": 1, "test": 24}))
    assert list(p.splits["train"].starts) == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66,
                                             96, 102, 108, 114, 120, 126, 132, 138, 144, 150, 156, 162]
    assert len(p.splits["val"].starts) == 71
    assert list(p.splits["test"].starts) == [0, 24, 48, 96, 120, 144]


def test_real_layout_r_keeps_last_level_and_matches_sample_reader(tmp_path):
    s = t2m(name="r", variables=["relative_humidity"], T_in=2, T_out=2)
    real = tmp_path / "real"
    data = write_split_files(real, "relative_humidity", s, hours=10, levels=[500, 850, 1000])
    p = wb.load(real, s)
    assert p.channels == ["r"]
    # 10 h per year, last step of the split dropped: train 10 + 9 frames
    assert p.splits["train"].frames.shape == (19, 1, 32, 64)
    assert [len(p.splits[k].starts) for k in ("train", "val", "test")] == [6 + 5, 5, 6 + 5]
    got = np.asarray(p.splits["train"].frames)
    np.testing.assert_array_equal(got[:10, 0], data[2010][:, -1])  # level 1000 = the last one
    np.testing.assert_array_equal(got[10:, 0], data[2011][:9, -1])

    twin = tmp_path / "twin"
    wb.make_sample(twin, s, {"hours_per_year": 10}, 1)
    with xr.open_dataset(twin / "relative_humidity" / "relative_humidity_2010_5.625deg.nc") as ds:
        assert ds["r"].dims == ("time", "level", "lat", "lon") and list(ds["level"].values) == [500, 850, 1000]
        last = ds["r"].isel(level=-1).values
    q = wb.load(twin, s)
    assert q.splits["train"].frames.shape == p.splits["train"].frames.shape
    x = np.asarray(q.splits["train"].frames)
    np.testing.assert_array_equal(x[:10, 0], last)
    assert 0 <= x.min() and x.max() < 100.1  # clipped at 100 before 4-digit quantization


def test_uv10_stacks_two_channels(tmp_path):
    s = t2m(name="uv10", variables=["10m_u_component_of_wind", "10m_v_component_of_wind"], T_in=3, T_out=3)
    u = write_split_files(tmp_path, "10m_u_component_of_wind", s, hours=12)
    v = write_split_files(tmp_path, "10m_v_component_of_wind", s, hours=12)
    p = wb.load(tmp_path, s)
    assert p.channels == ["u10", "v10"]
    x = np.asarray(p.splits["val"].frames)
    assert x.shape == (11, 2, 32, 64)
    np.testing.assert_array_equal(x[:, 0], u[2016][:11])
    np.testing.assert_array_equal(x[:, 1], v[2016][:11])
    assert len(p.splits["val"].starts) == 11 - 6
    # what pictures need: units per channel, and the rows' latitudes (ascending: row 0 is the south)
    assert p.attrs["units"] == ["m s**-1", "m s**-1"]
    lat = p.attrs["grid"]["lat"]
    assert lat == [float(v) for v in wb.LAT] and lat[0] < lat[-1]


def test_wbm_twelve_channels_six_hours_apart(tmp_path):
    s = {"name": "wbm", "variables": ["relative_humidity", "temperature", "u_component_of_wind",
                                      "v_component_of_wind"],
         "levels": [150, 500, 850], "years": {"train": [1979, 1980], "val": [2016, 2016], "test": [2017, 2017]},
         "T_in": 4, "T_out": 4, "step": 6}
    wb.make_sample(tmp_path, s, {"hours_per_year": 96}, 0)
    p = wb.load(tmp_path, s)
    assert p.channels == [f"{v}{lev}" for v in "rtuv" for lev in (150, 500, 850)]
    assert p.step == 1 and p.attrs["frame_interval_hours"] == 6
    tr = p.splits["train"]
    # 96 h per year -> 16 frames at 00/06/12/18 UTC; each run of 16 gives 16 - 8 starts
    assert tr.frames.shape == (32, 12, 32, 64)
    assert list(tr.starts) == list(range(8)) + list(range(16, 24))
    assert len(p.splits["val"].starts) == 8 and len(p.splits["test"].starts) == 8
    window = tr.time[tr.starts[3]: tr.starts[3] + 8]
    assert (np.diff(window) == np.timedelta64(6, "h")).all()
    assert (tr.time.astype("datetime64[h]").astype(int) % 6 == 0).all()
    with xr.open_dataset(tmp_path / "temperature" / "temperature_1979_5.625deg.nc") as ds:
        t500 = ds["t"].sel(level=500).values[::6]
    x = np.asarray(tr.frames)
    np.testing.assert_array_equal(x[:16, p.channels.index("t500")], t500)
    # upper air is colder than lower air; humidity in %
    assert x[:, p.channels.index("t150")].mean() < x[:, p.channels.index("t850")].mean() - 30
    assert 0 <= x[:, :3].min() and x[:, :3].max() < 100.1


# ------------------------------------------------------------------------------- bad data
def small(**over):
    return t2m(T_in=2, T_out=2, years={"train": [2010, 2010], "val": [2016, 2016],
                                       "test": [2017, 2017]}, **over)


def test_missing_variable_names_file(tmp_path):
    write_split_files(tmp_path, "2m_temperature", small(), hours=10)
    bad = hand_write(tmp_path, "2m_temperature", 2016, 10, short="t")  # noqa: F841
    with pytest.raises(DataError, match=r"2m_temperature_2016_5\.625deg\.nc: variable 't2m'"):
        wb.load(tmp_path, small())


def test_missing_file_names_split_and_file(tmp_path):
    write_split_files(tmp_path, "2m_temperature", small(), hours=10)
    (tmp_path / "2m_temperature" / "2m_temperature_2017_5.625deg.nc").unlink()
    with pytest.raises(DataError, match=r"split 'test'.*2m_temperature_2017_5\.625deg\.nc"):
        wb.load(tmp_path, small())


@pytest.mark.parametrize("hours, match", [
    ([0, 1, 2, 4, 5, 6], r"not evenly spaced.*2016-01-01T02:00:00 -> 2016-01-01T04:00:00 is 2 h"),
    ([0, 1, 2, 2, 3, 4], r"not strictly increasing: 2016-01-01T02:00:00 is followed by 2016-01-01T02:00:00"),
    ([0, 1, 3, 2, 4, 5], r"not strictly increasing"),
])
def test_bad_time_axis_names_file(tmp_path, hours, match):
    write_split_files(tmp_path, "2m_temperature", small(), hours=10)
    times = np.datetime64("2016-01-01T00", "ns") + np.asarray(hours) * np.timedelta64(1, "h")
    hand_write(tmp_path, "2m_temperature", 2016, 0, times=times)
    with pytest.raises(DataError, match=r"2m_temperature_2016_5\.625deg\.nc: time axis is " + match):
        wb.load(tmp_path, small())


def test_file_with_wrong_year_names_file(tmp_path):
    write_split_files(tmp_path, "2m_temperature", small(), hours=10)
    times = np.datetime64("2015-12-31T20", "ns") + np.arange(10) * np.timedelta64(1, "h")
    hand_write(tmp_path, "2m_temperature", 2016, 0, times=times)
    with pytest.raises(DataError, match=r"2016_5\.625deg\.nc: holds times 2015-12-31T20:00:00"):
        wb.load(tmp_path, small())


def test_nan_names_file_and_time(tmp_path):
    write_split_files(tmp_path, "2m_temperature", small(), hours=10)
    fill = np.full((10, 32, 64), 280.0, np.float32)
    fill[7, 3, 5] = np.nan
    hand_write(tmp_path, "2m_temperature", 2017, 10, fill=fill)
    with pytest.raises(DataError, match=r"2m_temperature_2017_5\.625deg\.nc: NaN in 't2m' at "
                                        r"2017-01-01T07:00:00 \(split 'test'\)"):
        wb.load(tmp_path, small())


def test_too_short_split_names_split_and_numbers(tmp_path):
    for y in (2010, 2017):
        hand_write(tmp_path, "2m_temperature", y, 10)
    hand_write(tmp_path, "2m_temperature", 2016, 5)
    with pytest.raises(DataError, match=r"split 'val' \(2016-2016\): 4 frames 1 h apart, longest "
                                        r"unbroken run 4; one window needs .* 5 consecutive"):
        wb.load(tmp_path, small())


def test_level_missing_names_file(tmp_path):
    s = small(variables=["temperature"], levels=[150, 500])
    write_split_files(tmp_path, "temperature", s, hours=10, levels=[500, 850, 1000])
    with pytest.raises(DataError, match=r"temperature_2010_5\.625deg\.nc: levels \[150\] hPa"):
        wb.load(tmp_path, s)


# ------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("change, key", [
    ({"colour": 1}, "datasets.t2m.data.colour"),
    ({"T_in": None}, "datasets.t2m.data.T_in"),
    ({"variables": ["2m_temp"]}, "datasets.t2m.data.variables"),
    ({"years": {"train": [2015, 2010], "val": [2016, 2016], "test": [2017, 2018]}}, "datasets.t2m.data.years.train"),
    ({"years": {"train": [2010, 2015], "test": [2017, 2018]}}, "datasets.t2m.data.years.val"),
    ({"years": {"train": [1970, 2015], "val": [2016, 2016], "test": [2017, 2018]}}, "datasets.t2m.data.years.train"),
    ({"years": {"train": [2010, 2016], "val": [2016, 2016], "test": [2017, 2018]}}, "datasets.t2m.data.years.val"),
    ({"years": {"train": ["2010", 2015], "val": [2016, 2016], "test": [2017, 2018]}}, "datasets.t2m.data.years.train"),
    ({"step": 0}, "datasets.t2m.data.step"),
    ({"stride": {"train": 2, "dev": 1}}, "datasets.t2m.data.stride.dev"),
    ({"remote": "wb3"}, "datasets.t2m.data.remote"),
    ({"remote": "wb2", "step": 1}, "datasets.t2m.data.step"),
    ({"levels": [850, 850]}, "datasets.t2m.data.levels"),
])
def test_bad_settings_name_the_key(change, key):
    s = t2m()
    s.update(change)
    if change.get("T_in", 0) is None:
        del s["T_in"]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        wb.parse_settings(s)


def test_bad_sample_key(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.t2m\.sample\.hours"):
        wb.make_sample(tmp_path, t2m(), {"hours": 3}, 0)


# ------------------------------------------------------------------------------- WeatherBench 2
def write_wb2_store(path: Path) -> dict:
    """A local Zarr in the WeatherBench 2 ERA5 64x32 layout (long names, latitude/longitude,
    6-hourly, relative humidity as a fraction, latitude stored north to south here)."""
    rng = np.random.default_rng(5)
    times = np.arange(np.datetime64("2015-12-30T00", "ns"), np.datetime64("2017-01-03T00", "ns"),
                      np.timedelta64(6, "h"))
    levels = np.array([50, 150, 500, 850, 1000], np.int64)
    lat = np.linspace(87.1875, -87.1875, 32)
    lon = np.arange(64) * 5.625
    t2 = rng.normal(280, 5, (len(times), 64, 32)).astype(np.float32)
    rh = rng.uniform(0, 1, (len(times), len(levels), 64, 32)).astype(np.float32)
    xr.Dataset(
        {"2m_temperature": (("time", "longitude", "latitude"), t2),
         "relative_humidity": (("time", "level", "longitude", "latitude"), rh)},
        coords={"time": times, "level": levels, "latitude": lat, "longitude": lon},
    ).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return {"times": times, "t2m": t2, "r": rh}


def wb2_settings(store, **over):
    s = {"name": "w2", "variables": ["2m_temperature"], "remote": "wb2", "wb2_store": str(store),
         "years": {"train": [2016, 2016], "val": [2015, 2015], "test": [2017, 2017]},
         "T_in": 1, "T_out": 1, "step": 6}
    s.update(over)
    return s


def test_wb2_reader_against_local_zarr(tmp_path):
    store = tmp_path / "era5.zarr"
    ref = write_wb2_store(store)
    raw = tmp_path / "raw"
    res = wb.fetch(raw, wb2_settings(store, variables=["2m_temperature", "relative_humidity"]))
    assert len(res) == 6 and not any(r.cached for r in res)
    assert all(len(r.sha256) == 64 and r.size > 0 for r in res)
    p = wb.load(raw, wb2_settings(store, variables=["2m_temperature", "relative_humidity"]))
    assert p.channels == ["t2m", "r"]
    tr = p.splits["train"]
    in2016 = ref["times"].astype("datetime64[Y]").astype(int) + 1970 == 2016
    n = int(in2016.sum())
    assert tr.frames.shape == (n - 1, 2, 32, 64)  # OpenSTL drops the split's last step
    assert len(tr.starts) == n - 1 - 2
    x = np.asarray(tr.frames)
    # transposed to (lat, lon), south to north like WeatherBench 1; r from fraction to %, last level
    np.testing.assert_allclose(x[:, 0], ref["t2m"][in2016][:-1].transpose(0, 2, 1)[:, ::-1])
    np.testing.assert_allclose(x[:, 1], 100 * ref["r"][in2016][:-1, -1].transpose(0, 2, 1)[:, ::-1],
                               rtol=1e-6)
    # cached on a second fetch; a different level request rewrites
    assert all(r.cached for r in wb.fetch(raw, wb2_settings(store, variables=["2m_temperature", "relative_humidity"])))
    s = wb2_settings(store, variables=["relative_humidity"], levels=[150, 500])
    assert not any(r.cached for r in wb.fetch(raw, s))
    assert wb.load(raw, s).channels == ["r150", "r500"]


def test_wb2_errors(tmp_path, monkeypatch):
    store = tmp_path / "era5.zarr"
    write_wb2_store(store)
    with pytest.raises(DataError, match=r"era5\.zarr: variable 'total_cloud_cover' expected"):
        wb.fetch(tmp_path / "raw", wb2_settings(store, variables=["total_cloud_cover"]))
    with pytest.raises(DataError, match=r"era5\.zarr: no time steps in 2010"):
        wb.fetch(tmp_path / "raw", wb2_settings(store, years={"train": [2010, 2010], "val": [2016, 2016],
                                                               "test": [2017, 2017]}))
    monkeypatch.setitem(__import__("sys").modules, "gcsfs", None)
    with pytest.raises(DataError, match=r"pip install gcsfs"):
        wb.fetch(tmp_path / "raw", wb2_settings(wb.WB2_STORE))


def test_wb2_twin_is_six_hourly(tmp_path):
    s = wb2_settings("unused", years={"train": [2010, 2010], "val": [2016, 2016], "test": [2017, 2017]},
                     T_in=4, T_out=4)
    wb.make_sample(tmp_path, s, {"hours_per_year": 96}, 0)
    with xr.open_dataset(tmp_path / "2m_temperature" / "2m_temperature_2010_5.625deg.nc") as ds:
        assert ds.sizes["time"] == 16
    p = wb.load(tmp_path, s)
    assert p.splits["train"].frames.shape[0] == 15  # step 6 h = the files' own: only the last dropped
    assert len(p.splits["train"].starts) == 15 - 8


# ------------------------------------------------------------------------------- WeatherBench 1 fetch
@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("nested", [False, True])
def test_wb1_fetch_downloads_and_extracts(tmp_path, http_dir, nested):
    served, base = http_dir
    s = small(wb1_url=base + "/{var}_5.625deg.zip")
    made = tmp_path / "made"
    wb.make_sample(made, s, {"hours_per_year": 10}, 0)
    with zipfile.ZipFile(served / "2m_temperature_5.625deg.zip", "w") as zf:
        for f in sorted((made / "2m_temperature").iterdir()):
            zf.write(f, f"2m_temperature/{f.name}" if nested else f.name)
    raw = tmp_path / "raw"
    res = wb.fetch(raw, s)
    assert len(res) == 1 and not res[0].cached and res[0].url == base + "/2m_temperature_5.625deg.zip"
    assert sorted(p.name for p in (raw / "2m_temperature").iterdir()) == sorted(
        p.name for p in (made / "2m_temperature").iterdir())
    from pipeline.data.download import record_manifest

    record_manifest(res, raw / "manifest.json")
    p = wb.load(raw, s)
    assert p.attrs["manifest"]["files"]["2m_temperature_5.625deg.zip"]["sha256"] == res[0].sha256
    np.testing.assert_array_equal(np.asarray(p.splits["test"].frames),
                                  np.asarray(wb.load(made, s).splits["test"].frames))
    assert wb.fetch(raw, s)[0].cached


def test_wb1_fetch_zip_missing_years(tmp_path, http_dir):
    served, base = http_dir
    s = small(wb1_url=base + "/{var}_5.625deg.zip")
    made = tmp_path / "made"
    wb.make_sample(made, s, {"hours_per_year": 10}, 0)
    with zipfile.ZipFile(served / "2m_temperature_5.625deg.zip", "w") as zf:
        zf.write(made / "2m_temperature" / "2m_temperature_2010_5.625deg.nc", "2m_temperature_2010_5.625deg.nc")
    with pytest.raises(DataError, match=r"does not contain 2 needed file\(s\), first .*2016_5\.625deg\.nc"):
        wb.fetch(tmp_path / "raw", s)


# ------------------------------------------------------------------------------- WB-M as the public code
WBM_IDX = {"idx_in": [-17, -11, -5, 0], "idx_out": [1, 7, 13, 19]}


def _hourly(y0, y1):
    return np.arange(np.datetime64(f"{y0}-01-01T00", "h"), np.datetime64(f"{y1 + 1}-01-01T00", "h"))


def test_wbm_window_counts_equal_table9_from_the_time_axis_alone(params):
    s = dict(params["datasets"]["wbm"]["data"], name="wbm")
    cfg = wb.parse_settings(s)
    assert cfg.window_offsets() == [0, 6, 12, 17, 18, 24, 30, 36]
    counts = {split: len(wb.split_window_starts(_hourly(*getattr(cfg.years, split)), cfg, split)[1])
              for split in ("train", "test")}
    assert counts == {"train": 54_019, "test": 2_883}   # paper Table 9


def test_wbm_windows_read_the_public_offsets(tmp_path):
    from pipeline.data.store import write_store
    from pipeline.data.windows import WindowDataset

    s = {"name": "wbm", "variables": ["temperature"], "levels": [500],
         "years": {"train": [1979, 1979], "val": [2016, 2016], "test": [2017, 2017]},
         "T_in": 4, "T_out": 4, "step": 6, **WBM_IDX}
    wb.make_sample(tmp_path / "raw", s, {"hours_per_year": 252}, 0)
    p = wb.load(tmp_path / "raw", s)
    tr = p.splits["train"]
    # 252 h -> 42 frames 6 h apart after dropping the last hour; a window spans 37 frames: 42 - 37 starts
    assert tr.frames.shape[0] == 42 and list(tr.starts) == [0, 1, 2, 3, 4]
    ds = WindowDataset(write_store(p, tmp_path / "wbm.zarr"), "train")
    x, y = ds[2]
    assert x.shape[0] == 4 and y.shape[0] == 4
    hours = (tr.time[2 + np.array(ds._offsets)] - tr.time[2 + 17]) / np.timedelta64(1, "h")
    assert list(hours) == [-102, -66, -30, 0, 6, 42, 78, 114]
    assert ds.lead_hours() == [6.0, 42.0, 78.0, 114.0]  # the uneven leads the report's lead axis shows
    raw = np.asarray(tr.frames)[2 + np.array([0, 6, 12, 17, 18, 24, 30, 36])]
    np.testing.assert_allclose(ds.raw_window(2), raw)


def test_bad_window_indices_name_the_key():
    s = {"name": "wbm", "variables": ["temperature"], "levels": [500],
         "years": {"train": [1979, 1979], "val": [2016, 2016], "test": [2017, 2017]},
         "T_in": 4, "T_out": 4, "step": 6, "idx_in": [-17, -11, 0, -5], "idx_out": [1, 7, 13, 19]}
    with pytest.raises(ConfigError, match=r"datasets\.wbm\.data\.idx_in: expected 4 increasing"):
        wb.parse_settings(s)
    with pytest.raises(ConfigError, match=r"idx_out: expected targets after"):
        wb.parse_settings({**s, "idx_in": [-3, -2, -1, 0], "idx_out": [0, 1, 2, 3]})
