"""The batch script: valid bash, the train stage's own command, requeue before the limit, values quoted."""
import subprocess
from pathlib import Path

import pytest

from pipeline.core.errors import ConfigError
from pipeline.slurm.jobscript import JobSpec, rendezvous_command, render, seconds, train_command, warning_seconds


def _bash_syntax_ok(text: str, tmp_path: Path) -> None:
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_one_node_runs_the_stage_command_and_requeues_before_the_limit(tmp_path):
    spec = JobSpec("t2m_svq", Path("/shared/svq"), time="06:00:00", partition="gpu", account="proj1")
    text = render(spec)
    _bash_syntax_ok(text, tmp_path)
    directives = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("#SBATCH ")]
    assert {"--time=06:00:00", "--signal=B:USR1@300", "--requeue", "--open-mode=append", "--nodes=1",
            "--partition=gpu", "--account=proj1", "--chdir=/shared/svq",
            "--output=/shared/svq/.slurm/logs/t2m_svq-%j.out"} <= set(directives)
    assert "sh stages/python stages/train.py t2m_svq &" in text
    assert 'scontrol requeue "$SLURM_JOB_ID"' in text and "trap on_warning USR1" in text
    assert 'echo "$status" > "/shared/svq/.slurm/exit/t2m_svq.$SLURM_JOB_ID"' in text
    assert not any(d.startswith("--gpus") for d in directives)


def test_several_nodes_meet_through_a_c10d_rendezvous_on_the_first(tmp_path):
    text = render(JobSpec("kth_svq", Path("/shared/svq"), nodes=2, gpus_per_node=4))
    _bash_syntax_ok(text, tmp_path)
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=4" in text
    assert 'SVQ_RDZV_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)' in text
    line = next(x for x in text.splitlines() if x.startswith("srun "))
    assert "--ntasks-per-node=1" in line and "--nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d" in line
    assert '--rdzv-endpoint="$SVQ_RDZV_HOST":"$SVQ_RDZV_PORT"' in line and line.endswith("kth_svq &")
    one_node = train_command(JobSpec("kth_svq", Path("/x"), gpus_per_node=4))
    assert "--standalone --nproc-per-node=4" in one_node and "srun" not in one_node


def test_a_rendezvous_command_quotes_what_it_is_given():
    cmd = rendezvous_command(JobSpec("t2m_svq", Path("/x"), nodes=2), "127.0.0.1", "29999", "'run 1'")
    assert "--rdzv-endpoint=127.0.0.1:29999 --rdzv-id='run 1'" in cmd


@pytest.mark.parametrize("limit, expected", [("06:00:00", 21600), ("1-00:00:00", 86400), ("0:10:00", 600)])
def test_time_limits(limit, expected):
    assert seconds(limit) == expected


@pytest.mark.parametrize("limit", ["1h", "60", "00:00:00", "12:60:00", "06:00:00; rm -rf /"])
def test_other_time_limits_are_refused_naming_the_option(limit):
    with pytest.raises(ConfigError, match="^--time: "):
        seconds(limit)


def test_the_warning_comes_at_most_halfway_and_not_too_late():
    assert warning_seconds(600, 300) == 300 and warning_seconds(240, 300) == 120
    with pytest.raises(ConfigError, match="--requeue-before: 30; expected at least 90"):
        warning_seconds(3600, 30)


@pytest.mark.parametrize("field, value", [("partition", "gpu --account=other"), ("account", "a'b"),
                                          ("partition", "$(reboot)"), ("root", Path("/my project"))])
def test_values_that_would_split_or_expand_in_the_script_are_refused(field, value):
    spec = JobSpec(**{"experiment": "t2m_svq", "root": Path("/shared"), field: value})
    with pytest.raises(ConfigError, match="^sbatch option ['\"]--"):
        render(spec)
