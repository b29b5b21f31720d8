"""The train stage's orchestration, called as stages/train.py calls it: the run lands in runs/<exp>
only once complete, with its DVC metrics file and no scratch folder left; a relaunch under torchrun
stops before any work (a shadowed override is the params stage's: tests/config/test_overrides.py)."""
import json
import os

import numpy as np
import pytest
import yaml

from pipeline.config.load import load_params
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError, DataError, ProjectError
from pipeline.training.reference_forecasts import reference_scores
from pipeline.data.store import write_store
from pipeline.training import checkpoint
from pipeline.training import train_stage
from tests.conftest import make_prepared


@pytest.fixture
def project(tiny_params, tmp_path, monkeypatch):
    """A working directory as DVC gives the stage: params.yaml and the t2m store under data/processed."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    write_store(make_prepared(), tmp_path / "data" / "processed" / "t2m.zarr")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_run_replaces_runs_exp_and_leaves_no_scratch(project, mlflow_uri):
    runs = project / "runs"
    stale = runs / ".t2m_simvp.tmp-0badf00d"  # what a killed replacement left
    stale.mkdir(parents=True)
    (runs / "t2m_simvp").mkdir()
    (runs / "t2m_simvp" / "result.json").write_text("{}")  # an earlier run's record

    summary = train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    result = json.loads((runs / "t2m_simvp" / "result.json").read_text())
    assert result["run_ids"] == summary["run_ids"] and result["metrics"] == summary["metrics"]
    assert (runs / "t2m_simvp" / "artifacts" / "best-seed0.pt").is_file()
    assert [p.name for p in runs.iterdir()] == ["t2m_simvp"]  # the resumable scratch and the stale one gone
    # the stage's DVC metric: its test scores and each reference's on the same windows
    metrics = json.loads((runs / "t2m_simvp" / "metrics.json").read_text())
    refs = reference_scores(project / "data" / "processed" / "t2m.zarr", ["mse"])
    assert metrics["test_mse"] == summary["metrics"]["test_mse"] and metrics == summary["stage_metrics"]
    assert set(refs) == {"persistence", "input_mean", "climatology"}
    for name, scores in refs.items():
        assert metrics[f"{name}_mse"] == pytest.approx(scores["test_mse"], rel=1e-12)
        assert metrics[f"skill_mse_{name}"] == pytest.approx(1 - metrics["test_mse"] / metrics[f"{name}_mse"])
        assert 0 <= metrics[f"leads_lost_{name}"] <= 2


def _previous_record(project):
    record = project / "runs" / "t2m_simvp" / "result.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"test_mse": 3.471}')  # a good earlier run's
    return record


def test_a_store_missing_a_test_chunk_fails_and_keeps_the_previous_record(project, mlflow_uri):
    record = _previous_record(project)
    (project / "data" / "processed" / "t2m.zarr" / "test" / "frames" / "c" / "0" / "0" / "0" / "0").unlink()
    with pytest.raises(DataError, match=r"t2m.zarr/test/frames/c/0/0/0/0: missing.*dvc repro -f preprocess_t2m"):
        train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    assert record.read_text() == '{"test_mse": 3.471}'
    assert not list((project / "runs").rglob("*.pt"))  # refused before any training


def test_nan_test_metrics_fail_and_keep_the_previous_record(project, mlflow_uri, monkeypatch):
    # a model whose test scores are NaN (stores refuse NaN frames, so as a diverged model's would be)
    from pipeline.training import fit

    tested = fit._test_best_model
    monkeypatch.setattr(fit, "_test_best_model", lambda *a: (lambda m, *rest: ({**m, "mse": float("nan")}, *rest))(
        *tested(*a)))
    record = _previous_record(project)
    with pytest.raises(DataError, match=r"t2m_simvp seed 0: test_mse is nan, expected a finite number"):
        train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    assert record.read_text() == '{"test_mse": 3.471}'
    resume = project / "runs" / ".t2m_simvp.tmp-resume" / "artifacts" / checkpoint.RESUME_DIR
    assert not list(resume.glob("resume-*.pt"))  # a rerun trains afresh


def test_a_finished_seed_with_nan_metrics_fails_and_leaves_no_scratch(project, mlflow_uri):
    """A seed recorded as finished before a kill is not tested again: the stage checks its metrics too."""
    record = _previous_record(project)
    cfg = resolve_run(load_params("params.yaml"), "t2m_simvp")
    work = project / "runs" / ".t2m_simvp.tmp-resume"
    done = checkpoint.Checkpoint.for_seed(work / "artifacts", cfg, 0, project / "data" / "processed" / "t2m.zarr")
    done.finish({"seed": 0, "run_id": "r0", "metrics": {"test_mse": float("nan"), "test_mae": 1.0}},
                {"mse": np.full((17, 2), np.nan, np.float32)})
    with pytest.raises(DataError, match=r"^t2m_simvp: test_mse is null, expected a finite number"):
        train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    assert record.read_text() == '{"test_mse": 3.471}'
    assert [p.name for p in (project / "runs").iterdir()] == ["t2m_simvp"]  # no scratch for a rerun to trip on


def test_a_relaunch_under_torchrun_reports_nothing(project, monkeypatch):
    calls = []

    def relaunch(devices, script, argv):
        calls.append((devices, script, argv))
        assert lock.read_text() == f"{os.getpid()}\n"  # the launching process holds the lock for its ranks
        return True

    lock = project / "runs" / ".t2m_svq.lock"
    monkeypatch.setattr(train_stage.distributed, "maybe_relaunch", relaunch)
    assert train_stage.run_train_stage("params.yaml", "t2m_svq", "stages/train.py", ["t2m_svq", "--params", "p"]) \
        is None
    assert calls == [(1, "stages/train.py", ["t2m_svq", "--params", "p"])]  # the stage script itself, its argv
    assert not list((project / "runs").iterdir())  # the lock released and removed, nothing written


def test_a_second_run_of_an_experiment_is_refused_in_one_line_while_one_runs(project, mlflow_uri):
    """Two runs of one experiment would share runs/.<exp>.tmp-resume; the second is refused before
    any work, and runs once the first has ended."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.core.test_outputs import hold_lock

    holder = hold_lock(project / "runs" / "t2m_simvp")
    try:
        with pytest.raises(ProjectError) as err:
            train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
        line = (f"experiment t2m_simvp is already running (pid {holder.pid}, holding runs/.t2m_simvp.lock); "
                f"wait for it to end, or stop it")
        assert str(err.value) == line
        cold = subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "t2m_simvp"], cwd=project,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
        assert (cold.returncode, cold.stderr) == (2, f"train: error: {line}\n")  # as DVC would show it
        assert [p.name for p in (project / "runs").iterdir()] == [".t2m_simvp.lock"]  # no scratch, no record
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    summary = train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    assert summary["run_ids"] and [p.name for p in (project / "runs").iterdir()] == ["t2m_simvp"]


def test_torchruns_ranks_do_not_take_the_lock(project, monkeypatch):
    """Under torchrun the launching process holds it already: a rank that tried would refuse its own run."""
    from tests.core.test_outputs import hold_lock

    trained = []
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(train_stage, "_train", lambda *args: trained.append(args[2]))
    holder = hold_lock(project / "runs" / "t2m_simvp")  # standing in for the launching process
    try:
        train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert trained == ["t2m_simvp"]


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_refused_naming_the_key_before_any_work(project, tiny_params, monkeypatch, device):
    tiny_params["datasets"]["t2m"].setdefault("train", {})["device"] = device
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    monkeypatch.setattr(train_stage.distributed.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train_stage, "run_experiment", lambda *a: pytest.fail("the run started"))
    with pytest.raises(ConfigError) as err:
        train_stage.run_train_stage("params.yaml", "t2m_simvp", "stages/train.py", ["t2m_simvp"])
    assert str(err.value) == (f"datasets.t2m.train.device: {device!r} needs a GPU, and torch sees none on this "
                              f"machine; expected auto or cpu")
    assert not (project / "runs").exists()
