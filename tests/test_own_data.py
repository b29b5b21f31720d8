"""A user's own netCDF, declared only in params, trained through the same pipeline."""
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.config.load import validate_params
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError, DataError
from pipeline.data import prepare
from pipeline.data.store import read_meta
from pipeline.training.fit import run_experiment


def _write_netcdf(path, hours=96, gap=False):
    time = pd.date_range("2020-01-01", periods=hours, freq="h")
    if gap:
        time = time.delete(40)
    lat, lon = np.linspace(-60, 60, 16), np.linspace(0, 337.5, 16)
    t = np.arange(len(time))[:, None, None]
    field = 280 + 10 * np.cos(np.deg2rad(lat))[None, :, None] + 3 * np.sin(2 * np.pi * t / 24) \
        + np.random.default_rng(0).normal(0, 0.5, (len(time), 16, 16))
    xr.Dataset({"temp": (("time", "lat", "lon"), field.astype("f4"))},
               coords={"time": time, "lat": lat, "lon": lon}).to_netcdf(path)


@pytest.fixture
def own_params(tiny_params, tmp_path):
    nc = tmp_path / "mine.nc"
    _write_netcdf(nc)
    p = tiny_params
    p["data"]["root"] = str(tmp_path / "data")
    p["datasets"]["mine"] = {
        "source": "custom", "raw": "remote", "title": "my reanalysis", "metrics": ["mse", "mae", "rmse"],
        "data": {"path": str(nc), "variables": ["temp"], "T_in": 4, "T_out": 4,
                 "splits": {"train": ["2020-01-01", "2020-01-02"], "val": ["2020-01-03", "2020-01-03"],
                            "test": ["2020-01-04", "2020-01-04"]}},
    }
    p["experiments"] = {"mine_simvp": {"dataset": "mine", "tables": [], "set": {}},
                        "mine_svq": {"dataset": "mine", "tables": [], "set": {"model.quantizer": "svq"}}}
    validate_params(p)
    return p


def test_own_netcdf_trains_every_model_without_code_change(own_params, tmp_path, mlflow_uri):
    prepare.download(own_params, "mine")
    store = prepare.preprocess(own_params, "mine")
    for name in own_params["experiments"]:
        summary = run_experiment(resolve_run(own_params, name), store, tmp_path / name)
        assert np.isfinite(summary["metrics"]["test_mse"])


def test_own_data_with_a_gap_names_the_file(own_params, tmp_path):
    nc = tmp_path / "gappy.nc"
    _write_netcdf(nc, gap=True)
    own_params["datasets"]["mine"]["data"]["path"] = str(nc)
    prepare.download(own_params, "mine")
    with pytest.raises(DataError, match="gappy.nc"):
        prepare.preprocess(own_params, "mine")
    assert not (tmp_path / "data" / "processed" / "mine.zarr").exists()


# ---------------------------------------------------------------- climate files as they come
def _climate(times, shape=(37, 49), var="tas"):
    """A field on a North-America-like lat/lon box, cftime (or numpy) dates, units as CF files."""
    lat, lon = np.linspace(15, 75, shape[0]), np.linspace(190, 310, shape[1])
    t = np.arange(len(times))[:, None, None]
    field = 270 + 15 * np.cos(np.deg2rad(lat))[None, :, None] + 2 * np.sin(2 * np.pi * t / 12) \
        + np.random.default_rng(1).normal(0, 0.3, (len(times), *shape))
    return xr.Dataset({var: (("time", "lat", "lon"), field.astype("f4"), {"units": "K"})},
                      coords={"time": times, "lat": lat, "lon": lon})


def _cftime_axis(start, periods, freq, calendar):
    return xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True)


def _layouts(tmp_path):
    """The three layouts of the issue: annual 360-day netCDF on a 37 x 49 grid, monthly noleap
    netCDF with mid-month stamps, and a Zarr store (standard calendar, annual, 365/366-day steps)."""
    annual = tmp_path / "tas_Ayr_360day.nc"
    _climate(_cftime_axis("1850-07-01", 60, "YS-JUL", "360_day")).to_netcdf(annual)
    import cftime

    mid = [cftime.datetime(1990 + i // 12, i % 12 + 1, 15 if i % 12 == 1 else 16, 0 if i % 12 == 1 else 12,
                           calendar="noleap") for i in range(72)]
    monthly = tmp_path / "tas_Amon_noleap.nc"
    _climate(xr.CFTimeIndex(mid), shape=(20, 30)).to_netcdf(monthly)
    store = tmp_path / "tas_annual.zarr"
    _climate(pd.date_range("1950-01-01", periods=60, freq="YS"), shape=(18, 27)).to_zarr(store)
    return {
        "annual_360day": (annual, {"train": ["1850", "1889"], "val": ["1890", "1899"], "test": ["1900", "1909"]}),
        "monthly_noleap": (monthly, {"train": ["1990-01", "1993-12"], "val": ["1994-01", "1994-12"],
                                     "test": ["1995-01", "1995-12"]}),
        "zarr_annual": (store, {"train": ["1950", "1989"], "val": ["1990", "1999"], "test": ["2000", "2009"]}),
    }


@pytest.mark.parametrize("layout", ["annual_360day", "monthly_noleap", "zarr_annual"])
def test_climate_files_train_as_they_come(own_params, tmp_path, mlflow_uri, layout):
    path, splits = _layouts(tmp_path)[layout]
    data = own_params["datasets"]["mine"]["data"]
    data.update(path=str(path), variables=["tas"], splits=splits, T_in=3, T_out=2)
    if layout == "annual_360day":
        data["box"] = {"lat": [20, 70], "lon": [-160, -60]}  # -160..-60 = 200..300 east
    validate_params(own_params)
    prepare.download(own_params, "mine")
    store = prepare.preprocess(own_params, "mine")
    meta = xr.open_zarr(store, group="test", consolidated=False)
    prov = read_meta(store)["provenance"]
    assert prov["calendar"] == {"annual_360day": "360_day", "monthly_noleap": "noleap",
                                "zarr_annual": "standard"}[layout]
    assert prov["time_step"]["train"] == ("1 month" if layout == "monthly_noleap" else "1 year")
    assert prov["units"] == ["K"] and meta.sizes["frame"] == (12 if layout == "monthly_noleap" else 10)
    exp = "mine_svq" if layout == "annual_360day" else "mine_simvp"  # SVQ once: seconds per test
    summary = run_experiment(resolve_run(own_params, exp), store, tmp_path / layout)
    assert np.isfinite(summary["metrics"]["test_mse"])
    if layout == "annual_360day":  # the box cut 37 x 49 to 31 x 41; N_S=6 pads it to 32 x 48
        grid = meta["frames"].shape[2:]
        assert grid == (31, 41) and len(prov["grid"]["lat"]) == 31
        assert min(prov["grid"]["lon"]) >= 200 and max(prov["grid"]["lon"]) <= 300
    # the field's scores: per lead, cos(lat)-weighted, with skill vs the references, in MLflow
    lead = json.loads((tmp_path / layout / "lead_scores-seed0.json").read_text())
    assert lead["weighting"] == "cos(lat)" and lead["lead"] == [1, 2]
    if layout == "annual_360day":  # the record carries the leads in hours: the report's lead axis
        assert lead["lead_hours"] == summary["runs"][0]["leads"]["lead_hours"] == [8640.0, 17280.0]
    assert set(lead["skill_rmse"]) == {"persistence", "input_mean", "climatology"}
    history = mlflow.tracking.MlflowClient(mlflow_uri).get_metric_history(summary["run_ids"][0], "lead_rmse_tas")
    assert sorted(m.step for m in history) == [1, 2]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        [row[0] for row in lead["scores"]["model"]["rmse"]])


def test_a_date_missing_from_the_calendar_names_the_setting(own_params, tmp_path):
    path, _ = _layouts(tmp_path)["monthly_noleap"]
    own_params["datasets"]["mine"]["data"].update(
        path=str(path), variables=["tas"],
        splits={"train": ["1990-01", "1993-12"], "val": ["1994-01", "1994-12"], "test": ["1995-01", "1996-02-29"]})
    prepare.download(own_params, "mine")
    with pytest.raises(ConfigError, match=r"^datasets.mine.data.splits.test: 1995-01 .. 1996-02-29 is not a "
                                          r"valid range in the file's noleap calendar"):
        prepare.preprocess(own_params, "mine")


def test_a_glob_mixing_calendars_names_both_files(own_params, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _climate(_cftime_axis("1850-07-01", 30, "YS-JUL", "360_day")).to_netcdf(folder / "tas_1850.nc")
    _climate(_cftime_axis("1880-07-01", 30, "YS-JUL", "noleap")).to_netcdf(folder / "tas_1880.nc")
    own_params["datasets"]["mine"]["data"].update(
        path=str(folder / "tas_*.nc"), variables=["tas"],
        splits={"train": ["1850", "1889"], "val": ["1890", "1899"], "test": ["1900", "1909"]}, T_in=3, T_out=2)
    prepare.download(own_params, "mine")
    with pytest.raises(DataError, match=r"tas_1880.nc: its dates are in the noleap calendar but those of "
                                        r".*tas_1850.nc in the 360_day calendar"):
        prepare.preprocess(own_params, "mine")
