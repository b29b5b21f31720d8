"""python -m pipeline.forecast: a trained run's forecasts on new files, labelled, equal to the model's."""
import copy
import json
import re
import shutil

import cftime
import numpy as np
import pytest
import torch
import xarray as xr

from conftest import make_prepared
from pipeline.config.load import validate_params
from pipeline.config.run_config import resolve_run
from pipeline.data import prepare
from pipeline.data.store import write_store
from pipeline.data.windows import WindowDataset
from pipeline.forecast import load_run, main
from pipeline.training.fit import run_experiment


def _annual_360(path, years=60, var="tas", shape=(37, 49), nan_at=None, drop=None):
    time = xr.date_range("1850-07-01", periods=years, freq="YS-JUL", calendar="360_day", use_cftime=True)
    lat, lon = np.linspace(15, 75, shape[0]), np.linspace(190, 310, shape[1])
    t = np.arange(years)[:, None, None]
    f = 270 + 15 * np.cos(np.deg2rad(lat))[None, :, None] + 2 * np.sin(t / 3) \
        + np.random.default_rng(2).normal(0, 0.3, (years, *shape))
    if nan_at is not None:
        f[nan_at, 10, 10] = np.nan  # inside the run's box
    ds = xr.Dataset({var: (("time", "lat", "lon"), f.astype("f4"), {"units": "K"})},
                    coords={"time": time, "lat": lat, "lon": lon})
    (ds if drop is None else ds.drop_isel(time=drop)).to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def trained(params, tmp_path_factory):
    """A SimVP run on an annual 360-day file with a lat/lon box, laid out as the train stage leaves
    it; trained once for the module's tests (each only reads it)."""
    tmp_path = tmp_path_factory.mktemp("forecast")
    mp = pytest.MonkeyPatch()
    mp.setenv("SVQ_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mp.setenv("SVQ_ARTIFACT_ROOT", (tmp_path / "mlartifacts").as_uri())
    nc = _annual_360(tmp_path / "tas_Ayr.nc")
    p = copy.deepcopy(params)
    p["profiles"]["sample"]["train"].update(epochs=1, max_steps_per_epoch=2, max_eval_batches=1)
    p["data"]["root"] = str(tmp_path / "data")
    p["datasets"]["na"] = {
        "source": "custom", "raw": "remote", "metrics": ["mse", "mae"],
        "data": {"path": str(nc), "variables": ["tas"], "T_in": 3, "T_out": 2,
                 "box": {"lat": [20, 70], "lon": [-160, -60]},
                 "splits": {"train": ["1850", "1889"], "val": ["1890", "1899"], "test": ["1900", "1909"]}}}
    p["experiments"] = {"na_simvp": {"dataset": "na", "tables": [], "set": {}}}
    validate_params(p)
    prepare.download(p, "na")
    store = prepare.preprocess(p, "na")
    runs = tmp_path / "runs"
    summary = run_experiment(resolve_run(p, "na_simvp"), store, runs / "na_simvp" / "artifacts")
    shutil.copy(runs / "na_simvp" / "artifacts" / "result.json", runs / "na_simvp" / "result.json")
    yield {"nc": nc, "store": store, "runs": runs, "run_id": summary["run_ids"][0], "tmp": tmp_path}
    mp.undo()


def _model_forecasts(store, run):
    """The model's forecasts of every test window, in physical units, keyed by init time."""
    test = WindowDataset(store, "test")
    times = xr.open_zarr(store, group="test", consolidated=False)["time"].values
    out = {}
    for i in range(len(test)):
        x, _ = test[i]
        with torch.no_grad():
            pred, _ = run.model.forecast(x[None], test.T_out)
        out[times[test.starts[i] + test.T_in - 1]] = test.to_metric_space(pred[0].numpy())
    return out


def test_forecast_by_run_id_writes_labelled_netcdf_equal_to_the_model(trained, capsys):
    out = trained["tmp"] / "fc.nc"
    assert main(["--run", trained["run_id"], "--input", str(trained["nc"]), "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    ds = xr.open_dataset(out, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert ds["tas"].dims == ("init_time", "lead_time", "lat", "lon") and ds["tas"].attrs["units"] == "K"
    assert ds.sizes["lat"] == 31 and ds.sizes["lon"] == 41  # the run's box, applied again
    assert ds.sizes["init_time"] == 60 - 2 and ds["lead_time"].values.tolist() == [12, 24]
    assert ds["lead_time"].attrs["units"] == "months" and ds.attrs["time_step"] == "1 year"
    assert ds["init_time"].values[0] == cftime.Datetime360Day(1852, 7, 1)
    assert ds.attrs["run_id"] == trained["run_id"] and ds.attrs["experiment"] == "na_simvp"
    run = load_run(trained["run_id"], runs_dir=trained["runs"])
    expected = _model_forecasts(trained["store"], run)
    assert len(expected) == 10 - 4
    for init, pred in expected.items():
        np.testing.assert_allclose(ds["tas"].sel(init_time=init).values, pred[:, 0], rtol=1e-5, atol=1e-3)


def test_forecast_by_experiment_at_init_dates_to_zarr(trained):
    out = trained["tmp"] / "fc.zarr"  # xarray writes Zarr v3 here
    rc = main(["--run", "na_simvp", "--runs-dir", str(trained["runs"]), "--input", str(trained["nc"]),
               "--output", str(out), "--init", "1905-03-10", "1855"])
    assert rc == 0
    ds = xr.open_zarr(out, consolidated=False, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert [t.year for t in ds["init_time"].values] == [1904, 1854]  # last frame at or before each date
    assert ds.attrs["seed"] == 0 and ds.attrs["grid_padding"] == "31x41 -> 32x42 (reflect)"  # N_S 2: even sizes


@pytest.mark.parametrize("case, message", [
    ("variable", r"tas_other\.nc: variable 'tas' \(datasets.na.data.variables\) expected, found \['pr'\]"),
    ("grid", r"grid is 11 x 41, but the run was trained on 31 x 41"),
    ("early", r"--init 1851: fewer than the 3 time steps \(3 frames\) the model needs end at or before it"),
    ("nan", r"NaN in the input frame at 1855-07-01"),
    ("run", r"--run nope: neither an MLflow run id nor a trained experiment"),
    ("gap", r"the 3 frames up to 1881-07-01T00:00:00 span a gap or an irregular step"),
])
def test_bad_inputs_are_one_line(trained, capsys, case, message):
    nc, args = trained["nc"], []
    if case == "variable":
        nc = _annual_360(trained["tmp"] / "tas_other.nc", var="pr")
    elif case == "grid":
        nc = _annual_360(trained["tmp"] / "small.nc", shape=(13, 49))
    elif case == "early":
        args = ["--init", "1851"]
    elif case == "gap":
        nc, args = _annual_360(trained["tmp"] / "gap.nc", drop=30), ["--init", "1882"]  # 1880 is missing
    elif case == "nan":
        nc = _annual_360(trained["tmp"] / "holes.nc", nan_at=5)
    run = "nope" if case == "run" else "na_simvp"
    rc = main(["--run", run, "--runs-dir", str(trained["runs"]), "--input", str(nc),
               "--output", str(trained["tmp"] / "x.nc"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert re.search(message, err), err
    assert not (trained["tmp"] / "x.nc").exists()


def test_windows_across_a_gap_are_left_out(trained):
    nc = _annual_360(trained["tmp"] / "gap2.nc", drop=30)
    out = trained["tmp"] / "gap.nc"
    assert main(["--run", "na_simvp", "--runs-dir", str(trained["runs"]), "--input", str(nc), "--output", str(out)]) == 0
    ds = xr.open_dataset(out, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    years = [t.year for t in ds["init_time"].values]
    assert len(years) == 59 - 2 - 2 and 1881 not in years and 1882 not in years and 1883 in years


def test_video_arrays_from_a_store(tiny_params, tmp_path, mlflow_uri):
    """Video-like frames (uint8, fixed scaling, no lat/lon): forecast from the store's test split."""
    store = write_store(make_prepared(scaling="fixed", dtype=np.uint8, shape=(1, 16, 16), T_in=2, T_out=2),
                        tmp_path / "frames.zarr")
    cfg = resolve_run(tiny_params, "t2m_simvp")
    summary = run_experiment(cfg, store, tmp_path / "runs" / "t2m_simvp" / "artifacts")
    out = tmp_path / "video.nc"
    assert main(["--run", summary["run_ids"][0], "--input", str(store), "--output", str(out)]) == 0
    ds = xr.open_dataset(out)
    assert ds["c0"].dims == ("init_time", "lead_time", "y", "x") and ds["lead_time"].values.tolist() == [1, 2]
    test = WindowDataset(store, "test")
    run = load_run(summary["run_ids"][0])
    x, _ = test[0]
    with torch.no_grad():
        pred = run.model.forecast(x[None], 2)[0][0].numpy() * 255.0
    # window 0 starts at frame 0: its init frame, T_in - 1, is the first init
    np.testing.assert_allclose(ds["c0"].isel(init_time=0).values, pred[:, 0], rtol=1e-5, atol=1e-3)
    assert ds.sizes["init_time"] == len(test)  # the store's own windows
    json.dumps(dict(ds.attrs), default=str)


class _Payload:
    """What a crafted checkpoint carries: unpickling it would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copy, (__file__, str(self.marker)))


def test_a_crafted_checkpoint_runs_nothing(trained, capsys):
    runs = trained["tmp"] / "crafted_runs"
    shutil.copytree(trained["runs"] / "na_simvp", runs / "na_simvp")
    ckpt = runs / "na_simvp" / "artifacts" / "best-seed0.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    marker = trained["tmp"] / "ran.txt"
    state["data"] = _Payload(marker)
    torch.save(state, ckpt)
    rc = main(["--run", "na_simvp", "--runs-dir", str(runs), "--input", str(trained["nc"]),
               "--output", str(trained["tmp"] / "crafted.nc")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "holds objects other than tensors and plain values; refused" in err
    assert not marker.exists() and not (trained["tmp"] / "crafted.nc").exists()
