"""Resume: a run killed with SIGKILL mid-epoch continues from its last epoch checkpoint, in the
same MLflow run, and ends exactly where an uninterrupted run ends (CPU)."""
import json
import logging
import os
import runpy
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch
import yaml

from pipeline.config.run_config import resolve_run
from pipeline.data.store import write_store
from pipeline.training import checkpoint
from pipeline.training.fit import run_experiment
from pipeline.training.record_files import read_windows
from tests.conftest import ROOT, make_prepared

TIMING = {"fps_inference", "epoch_time_mean_s"}


def _project(tmp_path, tiny_params, epochs=4):
    # validated after epochs 2, 4, ...: a resumed run must also carry the epochs it did not validate
    tiny_params["profiles"]["sample"]["train"].update(epochs=epochs, max_steps_per_epoch=3, patience=10, val_every=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    write_store(make_prepared(), tmp_path / "data" / "processed" / "t2m.zarr")
    return tiny_params


def _stage_killed_at(tmp_path, step):
    env = dict(os.environ, OMP_NUM_THREADS="1", **{checkpoint.KILL_AT_STEP_ENV: str(step)})
    return subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "t2m_svq"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)


def _stage_in_process(monkeypatch, tmp_path):
    """The stage script itself, run in this interpreter (a second one would only re-import torch)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", "t2m_svq"])
    runpy.run_path(str(ROOT / "stages" / "train.py"), run_name="__main__")


def _untimed(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING}


def test_kill9_mid_epoch_resumes_to_the_uninterrupted_result(tiny_params, mlflow_uri, tmp_path, monkeypatch):
    params = _project(tmp_path, tiny_params)
    reference = run_experiment(resolve_run(params, "t2m_svq"), tmp_path / "data" / "processed" / "t2m.zarr",
                               tmp_path / "reference")

    previous = tmp_path / "runs" / "t2m_svq" / "result.json"  # what an earlier run left
    previous.parent.mkdir(parents=True)
    previous.write_text("{}")

    killed = _stage_killed_at(tmp_path, 5)  # a real SIGKILL at epoch 2, step 2 of 3
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert previous.read_text() == "{}"  # a killed run keeps the previous results
    work = tmp_path / "runs" / ".t2m_svq.tmp-resume" / "artifacts"
    saved = checkpoint.read_state(work / checkpoint.RESUME_DIR / "resume-seed0.pt")
    assert len(saved["progress"]["history"]) == 1
    run_id = saved["progress"]["run_id"]

    _stage_in_process(monkeypatch, tmp_path)
    result = json.loads((tmp_path / "runs" / "t2m_svq" / "result.json").read_text())
    assert result["run_ids"] == [run_id]  # the same MLflow run, continued
    assert _untimed(result["metrics"]) == _untimed(reference["metrics"])  # bit-identical
    assert ((tmp_path / "runs" / "t2m_svq" / "history.csv").read_text()
            == (tmp_path / "reference" / "history.csv").read_text())
    windows, expected = read_windows(tmp_path / "runs" / "t2m_svq"), read_windows(tmp_path / "reference")
    assert windows.keys() == expected.keys() == {0}
    for metric in expected[0]:
        np.testing.assert_array_equal(windows[0][metric], expected[0][metric], err_msg=metric)
    assert not (tmp_path / "runs" / ".t2m_svq.tmp-resume").exists()
    assert not (tmp_path / "runs" / "t2m_svq" / "artifacts" / checkpoint.RESUME_DIR).exists()

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["svq.resumed"] == "true"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [2, 4]


def test_a_checkpoint_with_flipped_bytes_is_not_resumed(tiny_params, mlflow_uri, tmp_path, monkeypatch, caplog):
    params = _project(tmp_path, tiny_params)
    cfg, store = resolve_run(params, "t2m_svq"), tmp_path / "data" / "processed" / "t2m.zarr"
    reference = run_experiment(cfg, store, tmp_path / "reference")

    steps = []

    def crash_at_step_5():  # in-process stand-in for the kill above: epoch 1's checkpoint is on disk
        steps.append(1)
        if len(steps) == 5:
            raise RuntimeError("crash")
    with monkeypatch.context() as m, pytest.raises(RuntimeError, match="crash"):
        m.setattr(checkpoint, "training_step_hook", crash_at_step_5)
        run_experiment(cfg, store, tmp_path / "out")
    path = tmp_path / "out" / checkpoint.RESUME_DIR / "resume-seed0.pt"
    crashed_run = checkpoint.read_state(path)["progress"]["run_id"]
    data = bytearray(path.read_bytes())
    mid = len(data) // 2  # the weights: torch.load would read them without complaint
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        result = run_experiment(cfg, store, tmp_path / "out")
    warned = [r.getMessage() for r in caplog.records if r.name == checkpoint.__name__]
    assert warned == [f"{path}: checksum mismatch: the checkpoint is corrupt; training from scratch"]
    assert result["run_ids"] != [crashed_run]  # not continued: a new MLflow run, from epoch 1
    assert _untimed(result["metrics"]) == _untimed(reference["metrics"])
    assert (tmp_path / "out" / "history.csv").read_text() == (tmp_path / "reference" / "history.csv").read_text()


def test_a_checkpoint_without_digest_is_not_resumed(tmp_path, caplog):
    ck = checkpoint.Checkpoint(tmp_path / "r.pt", "fp")
    torch.save({"fingerprint": "fp"}, ck.path)  # as written before checkpoints carried a digest
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        assert ck.load(None, None, None, None, None) is None
    assert "no checksum" in caplog.text and not ck.path.exists()


def test_completed_run_is_never_resumed(tiny_params, tiny_store, mlflow_uri, tmp_path):
    tiny_params["profiles"]["sample"]["train"].update(epochs=2)
    cfg = resolve_run(tiny_params, "t2m_simvp")
    first = run_experiment(cfg, tiny_store, tmp_path / "out")
    assert not (tmp_path / "out" / checkpoint.RESUME_DIR).exists()
    second = run_experiment(cfg, tiny_store, tmp_path / "out")
    assert second["run_ids"] != first["run_ids"]  # trained afresh, in a new run
    client = mlflow.MlflowClient(mlflow_uri)
    assert len(client.get_metric_history(second["run_ids"][0], "train_loss")) == 2


def test_a_finished_seed_keeps_its_windows(tiny_params, tiny_store, tmp_path):
    """A seed finished before a kill is not trained again: its result and per-window errors come back."""
    cfg = resolve_run(tiny_params, "t2m_simvp")
    ck = checkpoint.Checkpoint.for_seed(tmp_path, cfg, 0, tiny_store)
    windows = {"mse": np.arange(6, dtype=np.float32).reshape(3, 2), "mae": np.ones((3, 2), np.float32)}
    ck.finish({"seed": 0, "run_id": "r0", "metrics": {"test_mse": 2.5}}, windows)
    done = checkpoint.finished_seed(tmp_path, cfg, 0, tiny_store)
    assert done["run_id"] == "r0" and done["windows"].keys() == windows.keys()
    for metric, a in windows.items():
        np.testing.assert_array_equal(done["windows"][metric], a)
    assert checkpoint.finished_seed(tmp_path, resolve_run(tiny_params, "t2m_svq"), 0, tiny_store) is None
    ck.done_windows_path.unlink()  # finished by a version that kept no windows: trained again
    assert checkpoint.finished_seed(tmp_path, cfg, 0, tiny_store) is None


def test_checkpoint_of_other_settings_is_discarded(tiny_params, tiny_store, mlflow_uri, tmp_path):
    cfg = resolve_run(tiny_params, "t2m_simvp")
    other = resolve_run(tiny_params, "t2m_svq")
    ck = checkpoint.Checkpoint.for_seed(tmp_path, other, 0, tiny_store)
    checkpoint.write_state(ck.path, {"fingerprint": ck.fingerprint})
    mine = checkpoint.Checkpoint.for_seed(tmp_path, cfg, 0, tiny_store)
    assert mine.path == ck.path and mine.fingerprint != ck.fingerprint
    assert mine.load(None, None, None, None, None) is None and not ck.path.exists()


def test_dead_running_run_is_marked_killed(tiny_params, tiny_store, mlflow_uri, tmp_path):
    from pipeline.tracking import mlflow_runs

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{mlflow_runs.socket.gethostname()}:{child.stdout.strip()}:0"
    exp_id = mlflow_runs.ensure_experiment("svq-sample")
    client = mlflow.MlflowClient(mlflow_uri)
    ghost = client.create_run(exp_id, tags={"svq.process": dead}).info.run_id
    alive = client.create_run(exp_id, tags={"svq.process": mlflow_runs.process_tag()}).info.run_id
    mlflow_runs.ensure_experiment("svq-sample")
    assert client.get_run(ghost).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"
    client.set_terminated(alive)


def test_round_trip_restores_onecycle_adam_and_every_rng(tmp_path):
    """What a resume needs, for the per-step schedule too (the kill test above runs cosine)."""
    def build():
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        return model, opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)

    model, opt, sched = build()
    gen = torch.Generator().manual_seed(3)
    for _ in range(4):
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        sched.step()
    ck = checkpoint.Checkpoint(tmp_path / "r.pt", "fp")
    ck.save(checkpoint.Progress(best=0.5, history=[{"epoch": 1}], run_id="abc"), model, opt, sched, gen, None)
    expected = (torch.rand(2), torch.rand(2, generator=gen), sched.get_last_lr())

    torch.manual_seed(99)
    model2, opt2, sched2 = build()
    gen2 = torch.Generator()
    progress = ck.load(model2, opt2, sched2, gen2, None)
    assert progress.run_id == "abc" and progress.best == 0.5 and progress.epochs_done == 1
    assert torch.equal(model2.weight, model.weight)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    got = (torch.rand(2), torch.rand(2, generator=gen2), sched2.get_last_lr())
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1]) and got[2] == expected[2]
