from pathlib import Path

from pipeline.core import paths
from pipeline.tracking import mlflow_runs


def test_repo_root_from_a_dvc_temporary_workspace(tmp_path):
    (tmp_path / "params.yaml").write_text("{}")
    (tmp_path / "pipeline").mkdir()
    tmp_exp = tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12" / "stages"
    tmp_exp.mkdir(parents=True)
    assert paths.repo_root(tmp_exp) == tmp_path
    assert paths.repo_root(tmp_path / "pipeline") == tmp_path


def test_tracking_uri_is_absolute_and_overridable(monkeypatch):
    monkeypatch.delenv("SVQ_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = mlflow_runs.tracking_uri()
    assert uri.startswith("sqlite:////") and uri.endswith("/mlflow.db")
    assert Path(uri[len("sqlite:///"):]).parent == paths.repo_root()
    monkeypatch.setenv("SVQ_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert mlflow_runs.tracking_uri() == "sqlite:////elsewhere/x.db"


def test_runs_are_tagged_with_commit_and_dvc_experiment(mlflow_uri, monkeypatch):
    import mlflow

    monkeypatch.setenv("DVC_EXP_NAME", "exp-1234")
    with mlflow_runs.start_run("x/seed0", profile="sample", tags={"experiment": "x", "tables": "1,3"},
                            params={"svq.codebook_size": 6000, "seeds": [0, 1]}) as run:
        mlflow_runs.log_metrics({"test_mse": 1.5})
    got = mlflow.MlflowClient(mlflow_uri).get_run(run.info.run_id)
    assert got.data.tags["svq.dvc_experiment"] == "exp-1234"
    assert got.data.tags["svq.tables"] == "1,3"
    assert len(got.data.tags["svq.git_commit"]) == 40
    assert got.data.params == {"svq.codebook_size": "6000", "seeds": "0,1"}
    assert got.data.metrics["test_mse"] == 1.5


def test_series_logged_per_step_in_batches(mlflow_uri):
    import mlflow

    with mlflow_runs.start_run("x/seed0", profile="sample", tags={}, params={}) as run:
        mlflow_runs.log_series({"lead_rmse": [1.0, float("nan"), 3.0], "many": [float(i) for i in range(1200)]})
    client = mlflow.MlflowClient(mlflow_uri)
    rmse = client.get_metric_history(run.info.run_id, "lead_rmse")
    assert sorted((m.step, m.value) for m in rmse) == [(1, 1.0), (3, 3.0)]  # the NaN left out
    assert len(client.get_metric_history(run.info.run_id, "many")) == 1200  # past MLflow's 1000 per batch


def _first_run(uri: str, artifacts: str, i: int) -> str:
    import os

    os.environ.update(SVQ_TRACKING_URI=uri, SVQ_ARTIFACT_ROOT=artifacts)
    with mlflow_runs.start_run(f"concurrent/{i}", profile="sample", tags={"i": i}, params={"i": i}) as run:
        mlflow_runs.log_metrics({"x": float(i)}, step=1)
        return run.info.run_id


def test_concurrent_first_runs_on_a_fresh_store_all_land(tmp_path):
    """8 stages starting at once on a store that does not exist yet: MLflow creates its tables on
    first use, and without the store lock most of them crashed racing to do it."""
    import multiprocessing as mp

    import mlflow

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = mp.get_context("forkserver")  # fresh children that do not inherit torch's threads
    ctx.set_forkserver_preload(["mlflow", "pipeline.tracking.mlflow_runs"])
    with ctx.Pool(8) as pool:
        ids = pool.starmap(_first_run, [(uri, (tmp_path / "art").as_uri(), i) for i in range(8)])
    assert len(set(ids)) == 8
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("svq-sample").experiment_id])
    assert sorted(r.data.metrics["x"] for r in runs) == [float(i) for i in range(8)]
    assert {r.info.status for r in runs} == {"FINISHED"}
