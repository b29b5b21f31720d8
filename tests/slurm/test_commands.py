"""submit / status / collect without a cluster: what they refuse before anything runs, the dry run on
the real catalogue, and how collect reads a job's exit file and log (Slurm's answers stubbed: the
real cluster is tests/slurm/test_slurm_cluster.py)."""
import subprocess
import sys
from dataclasses import replace
from io import StringIO
from pathlib import Path

import pytest

from conftest import ROOT
from pipeline.core.errors import ConfigError, ProjectError
from pipeline.slurm import commands, ledger, scheduler
from pipeline.slurm.scheduler import JobState


def test_dry_run_of_a_table_prints_one_script_per_experiment(params):
    args = ["submit", "--table", "4", "--partition", "gpu", "--gpus-per-node", "1", "--dry-run"]
    res = subprocess.run([sys.executable, "-m", "pipeline.slurm", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    table4 = [n for n, e in params["experiments"].items() if 4 in e.get("tables", ())]
    assert res.stdout.count("#!/bin/bash") == len(table4) > 8
    assert res.stdout.count("#SBATCH --gpus-per-node=1") == len(table4)
    first = res.stdout.splitlines()[0]
    assert first.startswith("# would first run: dvc repro ") and "preprocess_t2m" in first and "params" in first


def test_unknown_experiments_tables_and_batches_that_do_not_split_are_refused_first(params):
    with pytest.raises(ConfigError, match="experiment 'nope': not in params.yaml's experiments"):
        commands.experiments_for(params, ["nope"], None)
    with pytest.raises(ConfigError, match="--table 99: no experiment"):
        commands.experiments_for(params, [], 99)
    with pytest.raises(ConfigError, match="expected experiment names or --table N"):
        commands.experiments_for(params, [], None)
    with pytest.raises(ConfigError, match="does not split evenly across 3 processes"):
        commands.submit(ROOT, params, ["t2m_svq"], commands.SubmitOptions(nodes=3), dry_run=True, out=StringIO())


def test_a_missing_slurm_command_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(scheduler.SlurmError, match="^sbatch: not found on PATH"):
        scheduler.sbatch(tmp_path / "job.sbatch")


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A checkout with one submitted t2m_svq job (id 7) that Slurm no longer lists."""
    dep = tmp_path / "run_params" / "t2m_svq.yaml"
    dep.parent.mkdir()
    dep.write_text("lr: 0.005\n")
    entry = ledger.Entry("t2m_svq", "7", "2026-01-01T00:00:00Z", ".slurm/scripts/t2m_svq.sbatch",
                         ".slurm/logs/t2m_svq-7.out", {"run_params/t2m_svq.yaml": ledger.fingerprint(dep)})
    ledger.write(tmp_path, {"t2m_svq": entry})
    (tmp_path / ".slurm" / "logs").mkdir()
    states: dict[str, JobState] = {}
    monkeypatch.setattr(scheduler, "squeue", lambda ids: {i: states[i] for i in ids if i in states})
    monkeypatch.setattr(scheduler, "sacct", lambda ids: {})
    calls = []
    monkeypatch.setattr(commands, "dvc", lambda root, *args: calls.append(args) or subprocess.CompletedProcess(args, 0))
    return tmp_path, states, calls


def _finish(root: Path, status: int, log: str) -> None:
    (root / ".slurm" / "logs" / "t2m_svq-7.out").write_text(log)
    (root / ".slurm" / "exit").mkdir(exist_ok=True)
    (root / ".slurm" / "exit" / "t2m_svq.7").write_text(f"{status}\n")


def test_collect_records_a_finished_run_once(job):
    root, _, calls = job
    _finish(root, 0, "[svq] job 7 on n1\nt2m_svq seed 0 epoch 5/5: train_loss 0.05\n")
    out = StringIO()
    assert commands.collect(root, out=out) == 0
    assert calls == [("commit", "--force", "train_t2m_svq")]
    assert "t2m_svq: job 7 recorded in dvc.lock" in out.getvalue()
    assert ledger.read(root)["t2m_svq"].collected
    out = StringIO()
    assert commands.collect(root, out=out) == 0 and len(calls) == 1 and "nothing to collect" in out.getvalue()
    commands.status(root, out=out)
    assert "t2m_svq  job       7  COMPLETED collected" in out.getvalue()


def test_a_failed_job_is_shown_in_one_line_and_not_recorded(job):
    root, _, calls = job
    _finish(root, 2, "[svq] job 7 on n1\nTraceback (most recent call last):\n  File x\n"
                     "train: error: data/processed/t2m.zarr/test/frames/c/0/0/0/0: missing\n[svq] training exited\n")
    out = StringIO()
    assert commands.collect(root, out=out) == 1
    assert out.getvalue().strip() == ("t2m_svq: job 7 FAILED (exit 2): train: error: "
                                      "data/processed/t2m.zarr/test/frames/c/0/0/0/0: missing")
    assert calls == [] and not ledger.read(root)["t2m_svq"].collected


def test_a_run_whose_inputs_moved_since_submission_is_not_recorded(job):
    root, _, calls = job
    _finish(root, 0, "done\n")
    (root / "run_params" / "t2m_svq.yaml").write_text("lr: 0.01\n")  # a -S change after submitting
    out = StringIO()
    assert commands.collect(root, out=out) == 1
    assert "changed since it was submitted (run_params/t2m_svq.yaml); not recorded: submit it again" in out.getvalue()
    assert calls == []


def test_running_jobs_are_waited_for_or_left_for_later(job, params):
    root, states, calls = job
    states["7"] = JobState("7", "RUNNING", "1:02:03")
    out = StringIO()
    assert commands.collect(root, out=out) == 0 and calls == []
    assert "t2m_svq: job 7 RUNNING; collect again when it ends" in out.getvalue()
    with pytest.raises(ProjectError, match=r"t2m_svq: job 7 is RUNNING; .* \(scancel 7\)"):
        commands.submit(root, params, ["t2m_svq"], commands.SubmitOptions())
    states["7"] = replace(states["7"], state="COMPLETED")
    _finish(root, 0, "done\n")
    assert commands.collect(root, wait=30, poll_s=0.01, out=StringIO()) == 0 and calls
