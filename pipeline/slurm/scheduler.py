"""Slurm's own commands, called with argument lists (never through a shell): ``sbatch`` to submit,
``squeue`` for jobs still known to the controller, ``sacct`` where the cluster keeps accounting.
A missing command or a refusal by Slurm becomes one line naming the command and Slurm's words."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ProjectError, cut

TIMEOUT_S = 60


class SlurmError(ProjectError):
    """A Slurm command is missing or refused the request; the message names it."""


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str            # PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, REQUEUED, ...
    elapsed: str = ""
    reason: str = ""
    exit_code: str = ""   # sacct's "status:signal"


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        raise SlurmError(f"{argv[0]}: not found on PATH; run this on a machine with Slurm's client "
                         f"commands (a login node), or use --dry-run to see the job scripts")
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]}: no answer from the Slurm controller in {TIMEOUT_S} s") from None
    if check and res.returncode:
        said = " ".join((res.stderr or res.stdout).split()) or f"exit status {res.returncode}"
        raise SlurmError(f"{argv[0]}: {cut(said, 500)}")
    return res


def sbatch(script: Path) -> str:
    """Submit ``script``; its job id."""
    out = _run(["sbatch", "--parsable", str(script)]).stdout.strip()
    job_id = out.split(";")[0]  # --parsable: "id" or "id;cluster"
    if not job_id.isdigit():
        raise SlurmError(f"sbatch: expected a job id, got {cut(out, 200)!r}")
    return job_id


def squeue(job_ids: list[str]) -> dict[str, JobState]:
    """Jobs the controller still knows (pending, running, requeued; finished ones for MinJobAge)."""
    if not job_ids:
        return {}
    # a finished job the controller forgot makes squeue -j fail: ask for all and filter
    res = _run(["squeue", "-h", "-o", "%i|%T|%M|%r", "--states=all"])
    wanted, found = set(job_ids), {}
    for line in res.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in wanted:
            found[parts[0]] = JobState(parts[0], parts[1], parts[2], parts[3])
    return found


def sacct(job_ids: list[str]) -> dict[str, JobState]:
    """Finished jobs from Slurm's accounting; {} where the cluster keeps none."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    res = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State,Elapsed,ExitCode", "-j", ",".join(job_ids)],
               check=False)
    if res.returncode:
        return {}  # "Slurm accounting storage is disabled": the exit files answer instead
    found = {}
    for line in res.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            found[parts[0]] = JobState(parts[0], parts[1].split()[0], parts[2], "", parts[3])
    return found
