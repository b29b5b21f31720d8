"""The batch script of one experiment's training job: what ``sbatch`` runs on the cluster.

The job runs the experiment's DVC train stage command (``sh stages/python stages/train.py <exp>``)
in the shared checkout, so the job trains exactly what ``dvc repro train_<exp>`` would; ``collect``
later records the outputs in ``dvc.lock``. Resumption is the stage's own: it checkpoints every
epoch in ``runs/.<exp>.tmp-resume`` and a rerun continues from there. The script adds the Slurm
side: ``--signal=B:USR1@<s>`` asks Slurm to warn the batch shell ``s`` seconds before the time
limit, and the shell then requeues its own job (``scontrol requeue``), which stops the training
(at most the current epoch is lost) and starts it again later from the last checkpoint, as often
as the run needs. A job requeued by an administrator or a pre-emption resumes the same way.

Several nodes: ``srun`` starts one ``torchrun`` per node, and they meet through torchrun's c10d
rendezvous on the first node of the allocation (gloo on CPU, NCCL on GPUs). The ranks train one
run: DDP averages the gradients, rank 0 alone writes ``runs/<exp>`` and logs to MLflow.

When the training command ends (not when the job is requeued), the script writes its exit status
to ``.slurm/exit/<exp>.<jobid>``: ``collect`` reads it, so it works on clusters without Slurm's
accounting (``sacct``).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ConfigError, shown

# [D-]HH:MM:SS, as sbatch --time takes it (the forms that need no guessing of what a bare number means)
TIME = re.compile(r"(?:(\d+)-)?(\d{1,2}):([0-5]\d):([0-5]\d)")
SLURM_DIR = Path(".slurm")       # job scripts, logs and exit codes, beside the checkout's runs/
RDZV_PORT_BASE = 29400           # + job id % 1000: jobs sharing a first node do not share a port
# Slurm sends the warning signal up to a minute late (its timer checks about once a minute)
MIN_WARNING_S = 90


def seconds(limit: str) -> int:
    """``--time`` as seconds; ConfigError for any other form."""
    m = TIME.fullmatch(limit)
    if not m:
        raise ConfigError(f"--time: {shown(limit)}; expected HH:MM:SS or D-HH:MM:SS (e.g. 06:00:00)")
    days, h, mi, s = (int(g or 0) for g in m.groups())
    total = ((days * 24 + h) * 60 + mi) * 60 + s
    if total <= 0:
        raise ConfigError(f"--time: {shown(limit)}; expected a time limit above zero")
    return total


def warning_seconds(limit_s: int, wanted: int) -> int:
    """Seconds before the limit at which the job is told to requeue: ``wanted``, but at most half
    the limit (a 10-minute job warned 5 minutes early would requeue forever before its first epoch)."""
    if wanted < MIN_WARNING_S:
        raise ConfigError(f"--requeue-before: {wanted}; expected at least {MIN_WARNING_S} seconds "
                          f"(Slurm sends the warning up to a minute late)")
    return min(wanted, limit_s // 2)


@dataclass(frozen=True)
class JobSpec:
    experiment: str
    root: Path                  # the shared checkout, absolute
    time: str = "06:00:00"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    partition: str | None = None
    account: str | None = None
    requeue_before: int = 300   # seconds before the time limit

    @property
    def job_name(self) -> str:
        return f"svq-{self.experiment}"

    def log_path(self, job_id: str = "%j") -> Path:
        return self.root / SLURM_DIR / "logs" / f"{self.experiment}-{job_id}.out"

    def exit_path(self, job_id: str) -> Path:
        return self.root / SLURM_DIR / "exit" / f"{self.experiment}.{job_id}"

    def script_path(self) -> Path:
        return self.root / SLURM_DIR / "scripts" / f"{self.experiment}.sbatch"


def train_command(spec: JobSpec) -> str:
    """The line that trains: the stage command alone (one process), torchrun on the node (several
    GPUs), or srun starting torchrun on every node (several nodes)."""
    stage = f"sh stages/python stages/train.py {shlex.quote(spec.experiment)}"
    per_node = max(spec.gpus_per_node, 1)
    if spec.nodes == 1 and per_node == 1:
        return stage
    if spec.nodes == 1:
        return (f"sh stages/python -m torch.distributed.run --standalone --nproc-per-node={per_node} "
                f"stages/train.py {shlex.quote(spec.experiment)}")
    return ("srun --nodes=\"$SLURM_JOB_NUM_NODES\" --ntasks-per-node=1 --kill-on-bad-exit=1 "
            + rendezvous_command(spec, '"$SVQ_RDZV_HOST"', '"$SVQ_RDZV_PORT"', '"$SLURM_JOB_ID"'))


def rendezvous_command(spec: JobSpec, host: str, port: str, run_id: str) -> str:
    """One node's torchrun, joining the others at ``host:port`` (c10d) under ``run_id``; the
    arguments are shell words (quoted values or variable references)."""
    return (f"sh stages/python -m torch.distributed.run --nnodes={spec.nodes} "
            f"--nproc-per-node={max(spec.gpus_per_node, 1)} --rdzv-backend=c10d "
            f"--rdzv-endpoint={host}:{port} --rdzv-id={run_id} "
            f"stages/train.py {shlex.quote(spec.experiment)}")


def render(spec: JobSpec) -> str:
    limit_s = seconds(spec.time)
    q = shlex.quote
    directives = [
        f"--job-name={spec.job_name}",
        f"--chdir={spec.root}",
        f"--output={spec.log_path()}",
        "--open-mode=append",             # a requeued job appends to the same log
        f"--nodes={spec.nodes}",
        "--ntasks-per-node=1",
        f"--time={spec.time}",
        f"--signal=B:USR1@{warning_seconds(limit_s, spec.requeue_before)}",
        "--requeue",
    ]
    if spec.gpus_per_node:
        directives.append(f"--gpus-per-node={spec.gpus_per_node}")
    if spec.cpus_per_task:
        directives.append(f"--cpus-per-task={spec.cpus_per_task}")
    if spec.partition:
        directives.append(f"--partition={spec.partition}")
    if spec.account:
        directives.append(f"--account={spec.account}")
    # sbatch reads #SBATCH lines literally (no shell): a value with a space or quote would split
    for d in directives:
        if any(c.isspace() or c in "'\"$`\\" for c in d):
            raise ConfigError(f"sbatch option {shown(d)}: expected no spaces, quotes, '$', '`' or '\\' "
                              f"(the checkout's path or a --partition/--account value)")
    exit_file = spec.exit_path("$SLURM_JOB_ID")
    lines = [
        "#!/bin/bash",
        f"# Written by `python -m pipeline.slurm submit`: trains {spec.experiment} (DVC stage "
        f"train_{spec.experiment}); collect with `python -m pipeline.slurm collect`.",
        *(f"#SBATCH {d}" for d in directives),
        "set -u",
        f"cd {q(str(spec.root))}",
        'echo "[svq] job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, start $(date -u +%FT%TZ),'
        ' restart ${SLURM_RESTART_COUNT:-0}"',
    ]
    if spec.nodes > 1:
        lines += [
            'SVQ_RDZV_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            f"SVQ_RDZV_PORT=$(( {RDZV_PORT_BASE} + SLURM_JOB_ID % 1000 ))",
        ]
    lines += [
        "# Near the time limit: requeue this job; the stage resumes from its last epoch checkpoint.",
        "on_warning() {",
        "    stopping=1",
        '    echo "[svq] time limit near: requeueing job $SLURM_JOB_ID"',
        '    scontrol requeue "$SLURM_JOB_ID"',
        "}",
        "trap on_warning USR1",
        "# Slurm stops a requeued or cancelled job with TERM: no exit file then, the job is not over",
        "trap 'stopping=1' TERM",
        "stopping=",
        f"{train_command(spec)} &",
        "child=$!",
        "# wait returns early when the trap runs; keep waiting until the training itself ends",
        'while wait "$child"; status=$?; kill -0 "$child" 2>/dev/null; do :; done',
        'if [ -n "$stopping" ]; then echo "[svq] stopped with status $status"; exit "$status"; fi',
        f'mkdir -p {q(str(exit_file.parent))}',
        f'echo "$status" > {_double_quoted(exit_file)}',
        'echo "[svq] training exited with status $status at $(date -u +%FT%TZ)"',
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def _double_quoted(path: Path) -> str:
    """``path`` in double quotes, so that ``$SLURM_JOB_ID`` expands (the root holds no quote, ``$``,
    backquote or backslash: checked with the directives)."""
    return f'"{path}"'
