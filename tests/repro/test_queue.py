"""The README's `dvc queue start` works as written without an activated venv: DVC starts its
workers and each experiment as a process named `dvc` found on PATH (so the README puts the venv's
bin first), and the queued stage's `sh stages/python` finds the venv through DVC_ROOT."""
import os
import re
import shutil
import subprocess
import time

import yaml

from tests.conftest import ROOT
from tests.test_readme import readme_commands


def _queue_start_command() -> str:
    [cmd] = [c for c in readme_commands() if "dvc queue start" in c]
    return cmd


def test_the_readmes_queue_start_runs_a_queued_stage_without_an_activated_venv(tmp_path):
    repo = tmp_path / "repo"
    (repo / "stages").mkdir(parents=True)
    shutil.copy(ROOT / "stages" / "python", repo / "stages" / "python")
    (repo / ".venv").symlink_to(ROOT / ".venv")  # where a checkout has it (git-ignored, so not in the queued copy)
    (repo / ".gitignore").write_text(".venv\n")
    # fails (and so the experiment) unless stages/python picked a venv's interpreter
    (repo / "probe.py").write_text("import os, sys\nassert os.path.isfile(os.path.join(sys.prefix, 'pyvenv.cfg')), sys.prefix\n"
                                   "open('out.txt', 'w').write(sys.prefix)\n")
    (repo / "params.yaml").write_text("x: 1\n")
    stage = {"cmd": "sh stages/python probe.py", "params": ["x"], "outs": [{"out.txt": {"cache": False}}]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"probe": stage}}))
    bin_dir = str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SVQ_JOBS", "DVC_ROOT")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if os.path.realpath(p) != os.path.realpath(bin_dir))
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid")
    dvc = str(repo / ".venv" / "bin" / "dvc")

    def run(*cmd, shell=False):
        return subprocess.run(cmd[0] if shell else cmd, cwd=repo, env=env, shell=shell, capture_output=True,
                              text=True, timeout=120)

    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "probe"],
                [dvc, "exp", "run", "--queue", "-S", "x=2"]):
        assert run(*cmd).returncode == 0, cmd
    started = run(_queue_start_command(), shell=True)  # exactly as the README writes it, by sh
    assert started.returncode == 0 and "Traceback" not in started.stderr, started.stderr
    end = time.monotonic() + 180
    while True:
        status = run(dvc, "queue", "status").stdout
        if re.search(r"\b(Success|Failed)\b", status):
            break
        assert time.monotonic() < end, status
        time.sleep(1)
    task = status.splitlines()[1].split()[0]
    assert "Success" in status, (status, run(dvc, "queue", "logs", task).stdout)
