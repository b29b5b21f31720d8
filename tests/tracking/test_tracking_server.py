"""A shared MLflow tracking server backed by PostgreSQL, as several machines would use it: four
trainings log to it at once, and every run, parameter, metric and artifact arrives.

PostgreSQL comes from the `pgserver` wheel (a server in a Python package, installed by `make
install`), the MLflow server is this project's; both listen on this machine only (a Unix socket
and 127.0.0.1) and are stopped by the test.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, make_prepared
from pipeline.config.run_config import resolve_run
from pipeline.data.prepare import store_path
from pipeline.data.store import write_store
from pipeline.tracking import mlflow_runs

pgserver = pytest.importorskip("pgserver")

EXPERIMENTS = ("t2m_simvp", "t2m_svq", "t2m_svq_frozen", "t2m_svq_small")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    # a short path: the server's Unix socket lives in its data folder (sockets allow ~107 bytes)
    data = Path(tempfile.mkdtemp(prefix="svq-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "mlflow-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                             "--artifacts-destination", (tmp_path / "server-artifacts").as_uri(),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=_clean_env())
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"MLflow server did not start:\n{(tmp_path / 'mlflow-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVQ_", "MLFLOW_"))}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)} | extra


def test_four_trainings_log_to_a_postgres_backed_server(tiny_params, mlflow_server, tmp_path):
    import mlflow

    tiny_params["experiments"]["t2m_svq_small"] = {"dataset": "t2m", "tables": [],
                                                   "set": {"svq.codebook_size": 64}}
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    write_store(make_prepared(), store_path(tiny_params, "t2m", project))

    env = _clean_env(MLFLOW_TRACKING_URI=mlflow_server)  # the standard variable, as on any machine
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py"), name], cwd=project,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in EXPERIMENTS}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}:\n{err[-3000:]}"

    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("svq-sample")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # the server's store, not a client's disk
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["svq.experiment"] for r in runs) == sorted(EXPERIMENTS)
    for run in runs:
        name = run.data.tags["svq.experiment"]
        cfg = resolve_run(tiny_params, name)
        assert run.info.status == "FINISHED"
        for key, value in cfg.flat_params().items():
            assert run.data.params[key] == mlflow_runs._param(value), (name, key)
        assert {"train_loss", "val_loss", "test_mse", "test_mae", "params_total"} <= set(run.data.metrics), name
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1]
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config-seed0.yaml", "best-seed0.pt", "forecast-seed0.png", "forecast-seed0.npz"} <= arts, name
        local = project / "runs" / name / "artifacts" / "config-seed0.yaml"
        fetched = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="config-seed0.yaml",
                                                      dst_path=str(tmp_path / "fetched" / name),
                                                      tracking_uri=mlflow_server)
        assert Path(fetched).read_bytes() == local.read_bytes()
