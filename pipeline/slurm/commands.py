"""``submit``, ``status`` and ``collect``: the catalogue's train stages as Slurm jobs.

The checkout is shared between the login node and the compute nodes (as clusters share home and
project file systems). ``submit`` first brings every input of the named train stages up to date
here, with DVC (the code and params stages, each dataset's download and preprocess stages), then
submits one job per experiment; the job trains the stage's own command. ``collect`` records each
finished run in ``dvc.lock`` with ``dvc commit`` of its train stage, after checking that its
inputs are still the ones it trained on, so that ``dvc status`` is clean and ``dvc repro``
rebuilds only the report.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError, ProjectError, cut, shown
from pipeline.core.outputs import write_text_atomic
from pipeline.core.paths import check_name
from pipeline.core.yamlfile import read_yaml
from pipeline.slurm import ledger, scheduler
from pipeline.slurm.jobscript import JobSpec, render

ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


class JobFailed(ProjectError):
    """A collected job ended with an error; the message is its one line."""


def train_stage(experiment: str) -> str:
    return f"train_{experiment}"


def experiments_for(params: dict[str, Any], names: list[str], table: int | None) -> list[str]:
    """The named experiments, then those of ``--table``; each must be in the catalogue."""
    catalogue = params["experiments"]
    chosen = []
    for name in names:
        check_name("experiment", name)
        if name not in catalogue:
            raise ConfigError(f"experiment {shown(name)}: not in params.yaml's experiments; expected one of "
                              f"the catalogue's {len(catalogue)} (e.g. {next(iter(catalogue))})")
        chosen.append(name)
    if table is not None:
        in_table = [n for n, e in catalogue.items() if table in (e.get("tables") or ())]
        if not in_table:
            tables = sorted({t for e in catalogue.values() for t in (e.get("tables") or ())})
            raise ConfigError(f"--table {table}: no experiment of the catalogue is in it; expected one of {tables}")
        chosen += in_table
    if not chosen:
        raise ConfigError("no experiment named; expected experiment names or --table N")
    return list(dict.fromkeys(chosen))


def stage_inputs(root: Path, experiments: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each train stage's dependencies (dvc.yaml), and the stages that produce them."""
    stages = read_yaml(root / "dvc.yaml")["stages"]
    producers = {}
    for name, stage in stages.items():
        for out in stage.get("outs") or ():
            producers[next(iter(out)) if isinstance(out, dict) else out] = name
    deps, upstream = {}, []
    for exp in experiments:
        stage = stages.get(train_stage(exp))
        if stage is None:
            raise ConfigError(f"dvc.yaml: no stage {train_stage(exp)}; regenerate it: make dvc.yaml")
        deps[exp] = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps") or ()]
        for dep in deps[exp]:
            for out, producer in producers.items():
                if (dep == out or dep.startswith(out.rstrip("/") + "/")) and producer not in upstream:
                    upstream.append(producer)
    return deps, upstream


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The venv's DVC, in the checkout; its output passes through to the user."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SubmitOptions:
    time: str = "06:00:00"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    partition: str | None = None
    account: str | None = None
    requeue_before: int = 300


def submit(root: Path, params: dict[str, Any], experiments: list[str], opts: SubmitOptions,
           dry_run: bool = False, out=sys.stdout) -> dict[str, str]:
    """Submit one job per experiment; {experiment: job id} ({} with ``dry_run``, which prints the
    scripts and the DVC command instead)."""
    world = opts.nodes * max(opts.gpus_per_node, 1)
    specs = {}
    for exp in experiments:  # every setting checked before anything runs or is submitted
        cfg = resolve_run(params, exp)
        if cfg.train.batch_size % world:
            raise ConfigError(f"{cfg.key_of('train.batch_size')}: {cfg.train.batch_size} does not split evenly "
                              f"across {world} processes ({opts.nodes} node(s) x {max(opts.gpus_per_node, 1)}); "
                              f"expected a multiple of {world}")
        specs[exp] = JobSpec(exp, root, time=opts.time, nodes=opts.nodes, gpus_per_node=opts.gpus_per_node,
                             cpus_per_task=opts.cpus_per_task, partition=opts.partition,
                             account=opts.account, requeue_before=opts.requeue_before)
    scripts = {exp: render(spec) for exp, spec in specs.items()}
    entries = {} if dry_run else ledger.read(root)
    busy = [e for e in entries.values() if e.experiment in specs and not e.collected]
    states = scheduler.squeue([e.job_id for e in busy])
    for e in busy:
        if e.job_id in states and states[e.job_id].state in ACTIVE:
            raise ProjectError(f"{e.experiment}: job {e.job_id} is {states[e.job_id].state}; "
                               f"wait for it or cancel it (scancel {e.job_id}) before submitting it again")
    deps, upstream = stage_inputs(root, experiments)
    prepare = ["repro", *upstream]
    if dry_run:
        print(f"# would first run: dvc {' '.join(prepare)}", file=out)
        for exp, text in scripts.items():
            print(f"# ---- {specs[exp].script_path().relative_to(root)}", file=out)
            out.write(text)
        return {}
    if dvc(root, *prepare).returncode:
        raise ProjectError(f"dvc {' '.join(prepare)}: failed (its error is above); nothing was submitted")
    submitted = {}
    for exp, spec in specs.items():
        write_text_atomic(spec.script_path(), scripts[exp])
        spec.log_path("x").parent.mkdir(parents=True, exist_ok=True)  # sbatch does not create it
        job_id = scheduler.sbatch(spec.script_path())
        entries[exp] = ledger.Entry(exp, job_id, _now(), str(spec.script_path().relative_to(root)),
                                    str(spec.log_path(job_id).relative_to(root)),
                                    {d: ledger.fingerprint(root / d) for d in deps[exp]})
        ledger.write(root, entries)  # after each job: a later failure keeps the record of those submitted
        submitted[exp] = job_id
        print(f"{exp}: job {job_id}, log {entries[exp].log}", file=out)
    ids = ",".join(submitted.values())
    print(f"follow them: python -m pipeline.slurm status   (or squeue -j {ids}); "
          f"when they are done: python -m pipeline.slurm collect", file=out)
    return submitted


@dataclass(frozen=True)
class Row:
    entry: ledger.Entry
    state: str          # Slurm's state, or from the exit file: COMPLETED / FAILED
    elapsed: str
    progress: str       # the last progress line of the job's log, or the error


def _exit_status(root: Path, entry: ledger.Entry) -> int | None:
    path = JobSpec(entry.experiment, root).exit_path(entry.job_id)
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _log_lines(root: Path, entry: ledger.Entry) -> list[str]:
    try:
        return (root / entry.log).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def error_line(lines: list[str]) -> str:
    """The line that says why a job failed: the stage's one-line error, else the last line of a
    traceback or of the log."""
    text = [line.strip() for line in lines if line.strip() and not line.startswith("[svq]")]
    for line in reversed(text):
        if ": error: " in line:
            return line
    for line in reversed(text):
        if "Error" in line or "error" in line:
            return line
    return text[-1] if text else "(the log is empty)"


def progress_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if " epoch " in line or line.startswith("train_") or line.startswith("[svq]"):
            return line.strip()
    return ""


def rows(root: Path, entries: dict[str, ledger.Entry]) -> list[Row]:
    ids = [e.job_id for e in entries.values()]
    queued = scheduler.squeue(ids)
    accounted = scheduler.sacct([i for i in ids if i not in queued or queued[i].state not in ACTIVE])
    result = []
    for e in entries.values():
        lines = _log_lines(root, e)
        known = queued.get(e.job_id) or accounted.get(e.job_id)
        status = _exit_status(root, e)
        if known is not None and known.state in ACTIVE:
            state, elapsed = known.state, known.elapsed
        elif status is not None:
            state, elapsed = ("COMPLETED" if status == 0 else f"FAILED (exit {status})"), known.elapsed if known else ""
        elif known is not None:  # ended without its script finishing: cancelled, timed out, node failure
            state, elapsed = known.state, known.elapsed
        else:
            state, elapsed = "UNKNOWN (Slurm no longer lists it and it left no exit file: cancelled or lost)", ""
        detail = error_line(lines) if state.startswith(("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF"))\
            else progress_line(lines)
        result.append(Row(e, state, elapsed, cut(detail, 300)))
    return result


def status(root: Path, out=sys.stdout) -> list[Row]:
    entries = ledger.read(root)
    if not entries:
        print("no jobs submitted from this checkout (python -m pipeline.slurm submit EXPERIMENT...)", file=out)
        return []
    table = rows(root, entries)
    width = max(len(r.entry.experiment) for r in table)
    for r in table:
        done = " collected" if r.entry.collected else ""
        print(f"{r.entry.experiment:<{width}}  job {r.entry.job_id:>7}  {r.state}{done}"
              f"{'  ' + r.elapsed if r.elapsed else ''}  {r.progress}", file=out)
    return table


def collect(root: Path, wait: float | None = None, poll_s: float = 5.0, out=sys.stdout) -> int:
    """Record every finished, uncollected run in dvc.lock; 0 when none failed. ``wait``: seconds to
    wait for the running ones first (None: do not wait)."""
    entries = ledger.read(root)
    pending = {n: e for n, e in entries.items() if not e.collected}
    if not pending:
        print("nothing to collect: every submitted job is collected (python -m pipeline.slurm status)", file=out)
        return 0
    deadline = time.monotonic() + (wait or 0)
    while True:
        table = rows(root, pending)
        running = [r for r in table if r.state in ACTIVE]
        if not running or wait is None or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    done, failed = [], []
    for r in table:
        name = r.entry.experiment
        if r.state == "COMPLETED":
            moved = ledger.changed_deps(root, r.entry)
            if moved:
                failed.append(name)
                print(f"{name}: job {r.entry.job_id} trained on inputs that changed since it was submitted "
                      f"({', '.join(moved)}); not recorded: submit it again", file=out)
            else:
                done.append(name)
        elif r in running:
            print(f"{name}: job {r.entry.job_id} {r.state}; collect again when it ends", file=out)
        else:
            failed.append(name)
            print(f"{name}: job {r.entry.job_id} {r.state}: {r.progress}", file=out)
    if done:
        res = dvc(root, "commit", "--force", *(train_stage(n) for n in done))
        if res.returncode:
            raise ProjectError(f"dvc commit of {', '.join(done)}: failed (its error is above)")
        for name in done:
            entries[name].collected = True
            print(f"{name}: job {entries[name].job_id} recorded in dvc.lock (runs/{name})", file=out)
        ledger.write(root, entries)
        print("next: dvc repro (rebuilds the report from the collected runs)", file=out)
    return 1 if failed else 0
