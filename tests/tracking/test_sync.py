"""Runs logged offline (``train.tracking: offline``) reach the tracking server whole and once:
a tiny training logged on a "node" with no server, then synced to the PostgreSQL-backed MLflow
server (tests/tracking/test_tracking_server.py's fixtures), twice."""
from __future__ import annotations

import filecmp
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError
from pipeline.data.windows import WindowDataset
from pipeline.registry import register_best
from pipeline.tracking import mlflow_runs, sync
from pipeline.tracking.mlflow_runs import offline_uri
from pipeline.training.fit import run_experiment
from tests.tracking.test_tracking_server import mlflow_server, postgres  # noqa: F401  (fixtures)


def _offline_run(folder: Path, name: str, metrics: dict[str, list[float]]) -> str:
    with mlflow_runs.start_run(name, profile="sample", tags={"experiment": name}, params={"lr": 0.1, "hid": [8, 16]},
                               offline_dir=folder) as run:
        mlflow_runs.log_series(metrics)
        mlflow_runs.set_tags({"beats_persistence": "yes"})
    return run.info.run_id


def _running_run(folder: Path) -> str:
    """A run whose job is still logging (or died without a word): never closed."""
    client = MlflowClient(offline_uri(folder))
    exp = client.get_experiment_by_name(mlflow_runs.experiment_name("sample"))
    return client.create_run(exp.experiment_id, run_name="still-training").info.run_id


def test_offline_runs_sync_once_to_a_store(mlflow_uri, tmp_path):
    """Fast, on a SQLite target: histories with steps, a RUNNING run skipped, an interrupted copy redone."""
    offline = tmp_path / "node-scratch"
    first = _offline_run(offline, "a", {"lead_mse": [3.0, 2.0, 1.0]})
    _offline_run(offline, "b", {"lead_mse": [5.0]})
    running = _running_run(offline)
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the tracking store
    # the offline store keeps its artifacts beside it
    exp = MlflowClient(offline_uri(offline)).get_experiment_by_name("svq-sample")
    assert exp.artifact_location == (offline / "artifacts" / "svq-sample").as_uri()

    lines: list[str] = []
    counts = sync.sync(offline, mlflow_uri, say=lines.append)
    assert counts == {"copied": 2, "skipped": 1}
    assert sum(line.startswith("copied svq-sample/") for line in lines) == 2
    assert any(line.startswith("skipped") and running in line and "RUNNING" in line for line in lines)
    assert lines[-1].endswith("2 copied, 0 already there, 1 skipped")
    target = MlflowClient(mlflow_uri)
    (copy,) = target.search_runs([target.get_experiment_by_name("svq-sample").experiment_id],
                                 f"tags.`svq.synced_from` = '{first}'")
    hist = [(m.step, m.value) for m in target.get_metric_history(copy.info.run_id, "lead_mse")]
    assert hist == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert copy.data.params == {"lr": "0.1", "hid": "8,16"}
    # run records name the offline run: its id finds the copy, a target's own id itself
    assert sync.located(first, mlflow_uri) == copy.info.run_id
    assert sync.located(copy.info.run_id, mlflow_uri) == copy.info.run_id
    assert sync.located("0" * 32, mlflow_uri) == "0" * 32

    # an interrupted sync left a copy unfinished: the next one replaces it, and copies nothing twice
    target.set_terminated(copy.info.run_id, "RUNNING")
    lines.clear()
    counts = sync.sync(offline, mlflow_uri, say=lines.append)
    assert counts == {"copied": 1, "already there": 1, "skipped": 1}
    assert len(target.search_runs([copy.info.experiment_id])) == 2
    assert target.get_run(copy.info.run_id).info.lifecycle_stage == "deleted"
    assert sync.sync(offline, mlflow_uri, say=lines.append) == {"already there": 2, "skipped": 1}


def test_bad_source_or_target_is_one_line(tmp_path, mlflow_uri, capsys):
    assert sync.main(["--from", str(tmp_path / "nowhere"), "--to", mlflow_uri]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("sync: error: --from ") and "no offline store there" in err and "\n" not in err
    _offline_run(tmp_path / "off", "a", {"x": [1.0]})
    with pytest.raises(ConfigError, match="the offline store itself"):
        sync.sync(tmp_path / "off", offline_uri(tmp_path / "off"))


def test_default_source_is_train_offline_dir(tmp_path):
    (tmp_path / "params.yaml").write_text((Path(__file__).parents[2] / "params.yaml").read_text())
    assert sync.default_source(tmp_path / "params.yaml") == tmp_path / "mlruns-offline"


def _history(client, run) -> dict[str, list[tuple]]:
    return {k: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, k)]
            for k in run.data.metrics}


def _inputs(run) -> set[tuple]:
    return {(d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
             tuple(sorted((t.key, t.value) for t in d.tags))) for d in run.inputs.dataset_inputs}


def _model(client, run):
    (model,) = client.search_logged_models([run.info.experiment_id],
                                           filter_string=f"source_run_id = '{run.info.run_id}'")
    return model


def _same_files(a: Path, b: Path, but: tuple[str, ...] = ()) -> list[str]:
    """The relative paths of ``a``'s files, after checking ``b`` has exactly those, byte-identical."""
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for f in files:
        if f not in but:
            assert filecmp.cmp(a / f, b / f, shallow=False), f
    return files


def test_offline_training_lands_on_the_server_once(tiny_params, tiny_store, mlflow_uri, mlflow_server, tmp_path,
                                                   monkeypatch):
    offline = tmp_path / "node-scratch" / "mlruns"
    tiny_params["train"].update(tracking="offline", offline_dir=str(offline))
    summary = run_experiment(resolve_run(tiny_params, "t2m_svq"), tiny_store, tmp_path / "runs" / "t2m_svq")
    (run_id,) = summary["run_ids"]
    assert not (tmp_path / "mlflow.db").exists()  # the configured store (here: the server's stand-in) untouched
    running = _running_run(offline)

    monkeypatch.delenv("SVQ_ARTIFACT_ROOT")  # the sync runs where the server is reachable, as any client
    lines: list[str] = []
    assert sync.sync(offline, mlflow_server, say=lines.append) == {"copied": 1, "skipped": 1}
    assert any(running in line and line.startswith("skipped") for line in lines)

    src, dst = MlflowClient(offline_uri(offline)), MlflowClient(mlflow_server)
    exp = dst.get_experiment_by_name("svq-sample")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # the server's own store
    (copy,) = dst.search_runs([exp.experiment_id])
    run = src.get_run(run_id)
    assert copy.data.tags == run.data.tags | {"svq.synced_from": run_id}
    assert copy.data.params == run.data.params and len(run.data.params) > 20
    assert (copy.info.run_name, copy.info.status, copy.info.start_time, copy.info.end_time) == \
           (run.info.run_name, "FINISHED", run.info.start_time, run.info.end_time)
    history = _history(src, run)
    assert _history(dst, copy) == history and len(history["val_loss"]) >= 1 and len(history["lead_rmse_c0"]) == 2
    assert _inputs(copy) == _inputs(run) and len(_inputs(run)) == 3

    arts = _same_files(Path(src.download_artifacts(run_id, "", str(tmp_path / "a-src"))),
                       Path(dst.download_artifacts(copy.info.run_id, "", str(tmp_path / "a-dst"))))
    assert {"config-seed0.yaml", "best-seed0.pt", "forecast-seed0.npz"} <= set(arts)

    model, copied = _model(src, run), _model(dst, copy)
    assert (copied.name, copied.params, copied.tags, str(copied.status)) == \
           (model.name, model.params, model.tags, str(model.status))
    assert [o.model_id for o in copy.outputs.model_outputs] == [copied.model_id]
    m_src = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location,
                                                     dst_path=str(tmp_path / "m-src")))
    mlflow.set_tracking_uri(mlflow_server)
    m_dst = Path(mlflow.artifacts.download_artifacts(artifact_uri=copied.artifact_location,
                                                     dst_path=str(tmp_path / "m-dst")))
    assert "forecaster_model.py" in "".join(_same_files(m_src, m_dst, but=("MLmodel",)))
    mlmodel = (m_dst / "MLmodel").read_text()
    assert f"model_id: {copied.model_id}" in mlmodel and f"run_id: {copy.info.run_id}" in mlmodel
    assert model.model_id not in mlmodel and run_id not in mlmodel
    # the copy forecasts as the offline model does, found by its run as a user would
    ds = WindowDataset(tiny_store, "test")
    x = np.stack([ds[i][0].numpy() for i in range(2)])
    y = mlflow.pyfunc.load_model(model.artifact_location).predict(x)
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(f"runs:/{copy.info.run_id}/t2m_svq-seed0").predict(x), y)

    # the run record names the offline run; registering the best model finds its copy on the server
    monkeypatch.setenv("SVQ_TRACKING_URI", mlflow_server)
    best, version = register_best(tiny_params, 1, runs_dir=tmp_path / "runs")
    assert best["run_id"] == version.run_id == copy.info.run_id

    lines.clear()
    assert sync.sync(offline, mlflow_server, say=lines.append) == {"already there": 1, "skipped": 1}
    assert any(line.startswith("already there") and copy.info.run_id in line for line in lines)
    assert len(dst.search_runs([exp.experiment_id])) == 1
    assert len(dst.search_logged_models([exp.experiment_id])) == 1
