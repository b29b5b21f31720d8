"""Reference forecasts on tiny stores whose scores can be worked out by hand."""
import json

import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.data.prepared import Prepared, Split, window_starts
from pipeline.data.store import write_store
from pipeline.training.reference_forecasts import default_references, reference_scores, run_references

T_IN, T_OUT = 2, 2


def _weather(tmp_path, train, test, times=None, offsets=None):
    """A physical-unit (z-scored) store; val is a copy of test."""
    splits = {}
    span = (offsets[-1] + 1) if offsets else T_IN + T_OUT
    for name, frames in (("train", train), ("val", test), ("test", test)):
        t = None if times is None else times[name]
        splits[name] = Split(frames=np.asarray(frames, np.float32), starts=np.arange(len(frames) - span + 1),
                             time=t)
    prepared = Prepared(splits=splits, channels=["t2m"], T_in=T_IN, T_out=T_OUT, step=1, scaling="zscore",
                        metric_space="physical", offsets=offsets)
    return write_store(prepared, tmp_path / "w.zarr")


def test_constant_test_frames_persistence_is_exact_and_climatology_is_the_train_mean(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(280, 5, (2, 1, 1, 4, 6))
    c = rng.normal(280, 5, (1, 1, 4, 6))
    train = np.concatenate([a, b] * 10)      # per-pixel train mean (a + b) / 2
    test = np.repeat(c, 12, axis=0)          # constant in time
    store = _weather(tmp_path, train, test)
    assert default_references(store) == ("persistence", "input_mean", "climatology")
    got = reference_scores(store, ["mse", "mae", "rmse"])
    assert got["persistence"]["test_mse"] == pytest.approx(0.0, abs=1e-9)
    assert got["input_mean"]["test_mse"] == pytest.approx(0.0, abs=1e-9)
    err = ((a + b) / 2 - c)[0].astype(np.float64)
    assert got["climatology"]["test_mse"] == pytest.approx(np.mean(err ** 2), rel=1e-4)
    assert got["climatology"]["test_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-4)
    assert got["climatology"]["test_rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-4)


@pytest.mark.parametrize("offsets", [None, [0, 5, 6, 13]])  # WB-M style uneven windows too
def test_hourly_climatology_follows_the_hour_of_day(tmp_path, offsets):
    """Frames equal their hour of day: the hourly climatology is exact, the all-hours mean is not,
    and persistence errs by one hour per lead step (two at the day's wrap-around)."""
    start = np.datetime64("2017-01-01T00")
    times = {s: start + np.arange(n).astype("timedelta64[h]") for s, n in (("train", 48), ("val", 30), ("test", 30))}
    field = lambda t: (t.astype("datetime64[h]").astype(np.int64) % 24).astype(np.float32)[:, None, None, None] \
        * np.ones((1, 1, 3, 5), np.float32)  # noqa: E731
    store = _weather(tmp_path, field(times["train"]), field(times["test"]), times, offsets)
    assert default_references(store) == ("persistence", "input_mean", "climatology", "climatology_hour")
    got = reference_scores(store, ["mse"])
    assert got["climatology_hour"]["test_mse"] == pytest.approx(0.0, abs=1e-8)
    hours = np.arange(30) % 24
    offs = np.asarray(offsets or range(T_IN + T_OUT))
    starts = np.arange(30 - offs[-1])
    targets = hours[starts[:, None] + offs[T_IN:]]
    assert got["climatology"]["test_mse"] == pytest.approx(np.mean((targets - 11.5) ** 2), rel=1e-5)
    last = hours[starts + offs[T_IN - 1]][:, None]
    assert got["persistence"]["test_mse"] == pytest.approx(np.mean((targets - last) ** 2), rel=1e-5)
    mean = hours[starts[:, None] + offs[:T_IN]].mean(axis=1, keepdims=True)
    assert got["input_mean"]["test_mse"] == pytest.approx(np.mean((targets - mean) ** 2), rel=1e-5)


def test_video_gets_copy_last_frame_scored_as_per_frame_sums(tmp_path):
    n = 12
    frames = (np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 4, 4), np.uint8))
    splits = {s: Split(frames=frames, starts=window_starts(n, T_IN, T_OUT)) for s in ("train", "val", "test")}
    store = write_store(Prepared(splits=splits, channels=["gray"], T_in=T_IN, T_out=T_OUT, step=1, scaling="fixed",
                                 metric_space="model", offset=[0.0], scale=[255.0]), tmp_path / "v.zarr")
    assert default_references(store) == ("persistence", "input_mean")
    got = reference_scores(store, ["mse", "mae"])
    # the last input frame is 1 and 2 steps behind the targets; 16 pixels per frame summed
    assert got["persistence"]["test_mse"] == pytest.approx(16 * (1 + 4) / 2 / 255 ** 2, rel=1e-5)
    assert got["persistence"]["test_mae"] == pytest.approx(16 * (1 + 2) / 2 / 255, rel=1e-5)
    # the mean of the two inputs is 1.5 and 2.5 steps behind
    assert got["input_mean"]["test_mse"] == pytest.approx(16 * (1.5 ** 2 + 2.5 ** 2) / 2 / 255 ** 2, rel=1e-5)


def test_climatology_hour_without_timestamps_is_refused(tmp_path):
    store = _weather(tmp_path, np.arange(20, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2)),
                     np.ones((10, 1, 2, 2)))
    with pytest.raises(DataError, match="climatology_hour needs sub-daily timestamps"):
        reference_scores(store, ["mse"], references=["climatology_hour"])
    with pytest.raises(DataError, match="unknown reference"):
        reference_scores(store, ["mse"], references=["oracle"])


def test_stage_record_and_mlflow_runs(tiny_params, tiny_store, tmp_path, mlflow_uri):
    import mlflow

    record = run_references(tiny_params, "t2m", tiny_store, tmp_path / "reference_t2m")
    on_disk = json.loads((tmp_path / "reference_t2m" / "result.json").read_text())
    assert on_disk == record
    assert record["experiment"] == "reference_t2m" and record["kind"] == "reference"
    assert set(record["references"]) == {"persistence", "input_mean", "climatology"}  # the tiny store has no timestamps
    assert record["tables"] == sorted({t for e in tiny_params["experiments"].values() for t in e["tables"]})
    assert record["windows_test"] == 17
    direct = reference_scores(tiny_store, tiny_params["datasets"]["t2m"]["metrics"])
    client = mlflow.MlflowClient(mlflow_uri)
    for ref, entry in record["references"].items():
        assert entry["metrics"] == pytest.approx(direct[ref])
        run = client.get_run(entry["run_id"])
        tags = run.data.tags
        assert (tags["svq.kind"], tags["svq.seed"], tags["svq.dataset"], tags["svq.reference"]) == \
            ("reference", "none", "t2m", ref)
        assert tags["svq.experiment"] == "reference_t2m" and tags["svq.profile"] == "sample"
        assert run.data.metrics["test_mse"] == pytest.approx(entry["metrics"]["test_mse"])
    assert not list((tmp_path / "reference_t2m").glob(".*tmp"))


def test_reference_runs_log_offline_with_their_datasets_trainings(tiny_params, tiny_store, tmp_path, mlflow_uri):
    import mlflow

    from pipeline.tracking.mlflow_runs import offline_uri

    tiny_params["train"].update(tracking="offline", offline_dir=str(tmp_path / "offline"))
    record = run_references(tiny_params, "t2m", tiny_store, tmp_path / "reference_t2m")
    client = mlflow.MlflowClient(offline_uri(tmp_path / "offline"))
    for entry in record["references"].values():
        assert client.get_run(entry["run_id"]).data.tags["svq.kind"] == "reference"
    assert not (tmp_path / "mlflow.db").exists()  # the tracking store (the server's stand-in) untouched


def test_monthly_means_stamped_mid_month_get_no_hourly_climatology(tmp_path):
    months = np.arange("1990-01", "1993-01", dtype="datetime64[M]")
    mid = months.astype("datetime64[h]") + ((months + 1).astype("datetime64[h]") - months.astype("datetime64[h]")) // 2
    assert np.unique(mid.astype(np.int64) % 24).size > 1  # 00:00 and 12:00 stamps
    times = {"train": mid[:20], "val": mid[20:28], "test": mid[28:36]}
    frames = {k: np.random.default_rng(0).normal(280, 3, (len(v), 1, 2, 2)) for k, v in times.items()}
    store = _weather(tmp_path, frames["train"], frames["test"][:8], {"train": times["train"], "val": times["test"],
                                                                     "test": times["test"]})
    assert default_references(store) == ("persistence", "input_mean", "climatology")
