"""A user's own netCDF, declared only in params, trained through the same pipeline."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.config import resolve_run, validate_params
from pipeline.data import prepare
from pipeline.data.prepared import DataError
from pipeline.train import run_experiment


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
