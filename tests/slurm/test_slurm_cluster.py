"""A real single-node Slurm cluster on 127.0.0.1 (munged, slurmctld, slurmd from Debian's slurm-wlm,
started here as root): `python -m pipeline.slurm submit t2m_simvp t2m_svq` on a copy of this checkout,
one job requeued by `scontrol requeue` and the other by its own near-the-limit signal, both resume
from their epoch checkpoints to the committed records' exact test metrics, and `collect` leaves
`dvc status` clean. Then the same train stage on two "nodes" (two torchrun agents on localhost,
gloo, c10d rendezvous) as the job script starts them. Skipped, with the reason, where Slurm is not
installed or cannot start (.ci/run installs it)."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, copy_checkout
from pipeline.slurm.jobscript import JobSpec, rendezvous_command

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])  # daemons: sbin, maybe not on PATH


def _which(name: str) -> str | None:
    return shutil.which(name, path=SBIN)
COMPARED = ("test_mse", "test_mae", "test_rmse", "best_val_loss")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """SLURM_CONF of a one-node cluster running on this machine; stopped afterwards."""
    missing = [d for d in DAEMONS if _which(d) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("slurmd starts jobs as their user and must run as root")
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool"):
        (d / sub).mkdir()
    (d / "munge").chmod(0o700)
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = d / "munge" / "munge.sock"
    subprocess.run([_which("munged"), "--force", f"--key-file={key}", f"--socket={sock}", f"--pid-file={d}/munged.pid",
                    f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"], check=True, capture_output=True)
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=svqtest", f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={sock}", f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool",
        f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
        f"SlurmctldLogFile={d}/slurmctld.log", f"SlurmdLogFile={d}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SwitchType=switch/none",
        "MpiDefault=none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "ReturnToService=2", "JobRequeue=1", "KillWait=5", "MinJobAge=600",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=1000 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4", ""]))
    env = dict(os.environ, SLURM_CONF=str(conf))
    try:
        for daemon in ([_which("slurmctld"), "-c", "-f", str(conf)], [_which("slurmd"), "-f", str(conf)]):
            res = subprocess.run(daemon, env=env, capture_output=True, text=True)
            if res.returncode:
                pytest.skip(f"{Path(daemon[0]).name} did not start: {res.stderr.strip()[-300:]}")

        def idle():
            res = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            return res.returncode == 0 and res.stdout.strip() == "idle"
        try:
            _wait(idle, 30, "the node to come up")
        except AssertionError:
            logs = " | ".join((d / f).read_text()[-300:] for f in ("slurmctld.log", "slurmd.log") if (d / f).exists())
            pytest.skip(f"the Slurm node did not come up in 30 s: {logs}")
        yield env
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            try:
                os.kill(int((d / pid_file).read_text()), 15)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                pass


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A copy of this checkout with the t2m store built (the sample profile's twin)."""
    repo, env = copy_checkout(tmp_path_factory.mktemp("ws") / "repo")
    subprocess.run([sys.executable, "-m", "dvc", "repro", "preprocess_t2m"], cwd=repo, env=env, check=True,
                   capture_output=True, timeout=600)
    return repo, env


def _logs(repo: Path) -> str:
    """Every job log and Slurm's view, for a failure message."""
    logs = sorted((repo / ".slurm" / "logs").glob("*.out"))
    return "\n".join(f"---- {p.name}\n{p.read_text()}" for p in logs)


def _metrics(path: Path) -> dict[str, float]:
    metrics = json.loads(path.read_text())["metrics"]
    return {k: metrics[k] for k in COMPARED}


def _resume_file(repo: Path, exp: str):
    found = list((repo / "runs").glob(f".{exp}.tmp-resume/**/resume-seed0.pt"))
    return found[0] if found else None


def test_jobs_requeued_mid_training_resume_to_the_same_metrics_and_collect_leaves_dvc_clean(slurm, workspace):
    repo, env = workspace
    env = dict(env, **slurm)

    def run(*args, timeout=600):
        res = subprocess.run([sys.executable, "-m", "pipeline.slurm", *args], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=timeout)
        return res.returncode, res.stdout + res.stderr

    rc, out = run("submit", "t2m_simvp", "t2m_svq", "--time", "00:30:00")
    assert rc == 0, out
    jobs = dict(re.findall(r"^(\w+): job (\d+), log ", out, re.M))
    assert set(jobs) == {"t2m_simvp", "t2m_svq"}, out
    # t2m_svq: an administrator's (or a pre-emption's) requeue; t2m_simvp: its own, on the signal
    # Slurm sends before the time limit (delivered now instead of 5 minutes before the 30)
    _wait(lambda: _resume_file(repo, "t2m_svq"), 300, "t2m_svq's first epoch checkpoint")
    subprocess.run(["scontrol", "requeue", jobs["t2m_svq"]], env=env, check=True)
    _wait(lambda: _resume_file(repo, "t2m_simvp"), 300, "t2m_simvp's first epoch checkpoint")
    subprocess.run(["scancel", "--batch", "--signal=USR1", jobs["t2m_simvp"]], env=env, check=True)
    for job in jobs.values():  # a requeued job waits about two minutes before it may start again
        _wait(lambda j=job: "BeginTime" in subprocess.run(["squeue", "-h", "-j", j, "-o", "%r"], env=env,
              capture_output=True, text=True).stdout, 60, f"job {job} to be requeued")
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env, check=True)

    rc, status = run("status")
    assert rc == 0 and "t2m_svq" in status and "t2m_simvp" in status, status
    rc, out = run("collect", "--wait", "540")
    assert rc == 0, f"{out}\n{run('status')[1]}\n{_logs(repo)}"
    assert f"t2m_svq: job {jobs['t2m_svq']} recorded in dvc.lock" in out

    for exp, job in jobs.items():
        log = (repo / ".slurm" / "logs" / f"{exp}-{job}.out").read_text()
        assert "restart 1" in log, _logs(repo)
        after = log.split("restart 1", 1)[1]
        assert f"{exp} seed 0 epoch 1/" not in after, f"{exp} started over instead of resuming:\n{log}"
        assert (repo / ".slurm" / "exit" / f"{exp}.{job}").read_text().strip() == "0", _logs(repo)
        assert _metrics(repo / "runs" / exp / "result.json") == _metrics(ROOT / "runs" / exp / "result.json"), exp
    assert "time limit near: requeueing" in (repo / ".slurm" / "logs" / f"t2m_simvp-{jobs['t2m_simvp']}.out").read_text()

    res = subprocess.run([sys.executable, "-m", "dvc", "status", "train_t2m_simvp", "train_t2m_svq"], cwd=repo,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Data and pipelines are up to date." in res.stdout, res.stdout + res.stderr
    rc, out = run("collect")
    assert rc == 0 and "nothing to collect" in out
    rc, status = run("status")
    assert status.count("COMPLETED collected") == 2, status


def test_two_nodes_train_one_run_through_the_rendezvous_the_job_script_uses(workspace, tmp_path):
    """Two torchrun agents, one process each, as srun starts them on two nodes (here both on
    127.0.0.1), meeting through c10d: the same run, to the bit, as two processes on one node
    (``train.devices: 2``'s standalone torchrun), and rank 0 alone writes and reports it."""
    repo, env = workspace
    exp = "t2m_convnext"  # a short run: one seed, 5 epochs of the t2m twin
    env = dict(env, SVQ_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")

    def train(commands: list[str]) -> dict[str, float]:
        agents = [subprocess.Popen(["bash", "-c", c], cwd=repo, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True) for c in commands]
        outs = [a.communicate(timeout=600)[0] for a in agents]
        assert [a.returncode for a in agents] == [0] * len(agents), "\n".join(outs)
        assert sum(f"train_{exp} done" in o for o in outs) == 1, "\n".join(outs)  # rank 0 alone reports
        return json.loads((repo / "runs" / exp / "result.json").read_text())["metrics"]

    one_node = train([f"sh stages/python -m torch.distributed.run --standalone --nproc-per-node=2 "
                      f"stages/train.py {exp}"])
    port = str(_free_port())
    two_nodes = train([rendezvous_command(JobSpec(exp, repo, nodes=2), "127.0.0.1", port, "svqtest")] * 2)
    assert {k: two_nodes[k] for k in COMPARED} == {k: one_node[k] for k in COMPARED}
