"""Progress you can see: ``dvc repro`` with stage k of n, elapsed and estimated time left (each
training stage ends with its one-line summary, ``pipeline.training.summary_line``).

    python -m pipeline.repro.progress [dvc repro arguments]    # what `make repro` runs

DVC itself prints only "Running stage '<name>'". This wrapper first asks ``dvc repro --dry`` which
stages will run (n), then runs ``dvc repro`` and, at each stage start, prints where it is. The
estimate of the time left uses each stage's duration recorded by its last run
(``runs/<exp>/result.json`` ``elapsed_s``) where there is one, else the mean of the stages run so far.

    python -m pipeline.repro.progress --jobs 2               # what `make repro` runs: two stages at a time
    python -m pipeline.repro.progress --estimate --jobs 2    # the recorded durations of a whole repro, in 2 lanes

With ``--jobs N`` independent stages run N at a time, the way DVC documents for parallel stage
execution (several ``dvc repro`` processes in one workspace; each releases the repository lock
while its stage's command runs): N lanes, each running ``dvc --wait-for-lock repro --single-item
<stages...>`` batches of the stages whose inputs are ready (:class:`Scheduler`): the code digests
and the downloads first, a dataset's preprocessing once its download is done, its train and
reference stages once its store is, the report last. A batch is a share of the ready work
(fewer DVC start-ups), shrinking as the work left does so that the lanes end together. DVC itself
records every stage in dvc.lock, under its lock, as a sequential ``dvc repro`` would; each stage
claims an ``SVQ_JOBS`` slot (``pipeline.training.job_slots``: its share of the CPU threads or its own GPU).

Either way the stage commands run in children forked from a warm stage server
(``pipeline.repro.stage_server``) started for the duration, skipping each stage's interpreter start-up
and imports; ``--cold`` runs them without it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO

from pipeline.core import cpu_kernels
from pipeline.core.errors import exit_status
from pipeline.core.yamlfile import read_yaml
from pipeline.training.summary_line import fmt_duration

RUNNING = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
# DVC's chatter after every stage (the [progress] line says which stage runs; make repro's log keeps
# what the stages print): blank lines, the lock update, and its git and remote hints
CHATTER = re.compile(r"^(Running stage '[^']+':|Updating lock file '.*'|To track the changes with git, run:|"
                     r"To enable auto staging, run:|git add .*dvc\.lock.*|dvc config core\.autostage true|"
                     r"Use `dvc push` to send your updates to remote storage\.)?$")


def chatter(line: str) -> bool:
    """A line of DVC's own that ``make repro``'s log leaves out (errors and stage output are kept)."""
    return bool(CHATTER.match(line.strip()))


def planned_stages(dry_run_output: Iterable[str]) -> list[str]:
    """Stage names in the order ``dvc repro --dry`` says it would run them."""
    return [m.group(1) for line in dry_run_output if (m := RUNNING.match(line.strip()))]


def all_stages(dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    import yaml

    try:
        return list((yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}))
    except (OSError, yaml.YAMLError):
        return []


def recorded_duration(stage: str, runs_dir: Path = Path("runs")) -> float | None:
    if not stage.startswith("train_"):
        return None
    try:
        value = json.loads((runs_dir / stage[len("train_"):] / "result.json").read_text()).get("elapsed_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


class Tracker:
    """Stage k of n, elapsed, estimated time left, from the stage starts seen so far (with ``jobs``
    stages at a time the work left is shared among them)."""

    def __init__(self, plan: list[str], runs_dir: Path = Path("runs"), clock=time.monotonic, jobs: int = 1):
        self.plan, self.clock, self.t0, self.jobs = plan, clock, clock(), max(1, jobs)
        self.total = len(plan)  # the count shown never changes: a stage DVC skips counts as done
        self.skipped = 0
        self.recorded = {s: recorded_duration(s, runs_dir) for s in plan}
        self.started: list[tuple[str, float]] = []

    def start(self, stage: str) -> str:
        now = self.clock()
        self.started.append((stage, now))
        k = len(self.started) + self.skipped
        self.total = max(self.total, k)
        skipped = f" ({self.skipped} unchanged, skipped)" if self.skipped else ""
        return f"[progress] stage {k} of {self.total}{skipped}: {stage} | elapsed {fmt_duration(now - self.t0)}" \
               f" | {self._left(stage, now)}"

    def skip(self, stage: str) -> None:
        """A planned stage DVC found unchanged: no longer counted."""
        if stage in self.plan and stage not in {s for s, _ in self.started}:
            self.plan = [s for s in self.plan if s != stage]
            self.skipped += 1

    def _left(self, stage: str, now: float) -> str:
        done = [b - a for (_, a), (_, b) in zip(self.started, self.started[1:])]
        seen = {s for s, _ in self.started[:-1]}
        later = [s for s in self.plan if s not in seen] if stage in self.plan else []
        if not later:
            return "time left unknown"
        mean = sum(done) / len(done) if done else None
        est = [self.recorded.get(s) if self.recorded.get(s) is not None else mean for s in later]
        if any(e is None for e in est):
            return "time left unknown until a stage has finished"
        return f"~{fmt_duration(sum(est) / self.jobs)} left"


# -------------------------------------------------------------------------------- the stage graph
def _paths(entries: Any) -> list[str]:
    """dvc.yaml ``deps``/``outs`` entries (a path, or ``{path: options}``) as normalised paths."""
    out = []
    for e in entries or []:
        for p in (e if isinstance(e, dict) else [e]):
            out.append(os.path.normpath(str(p)))
    return out


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + os.sep) or b.startswith(a + os.sep)


def stage_graph(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, set[str]]:
    """Stage -> the stages whose outputs it reads (a dependency equal to, inside or above an output)."""
    import yaml

    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    outs = {name: _paths(s.get("outs")) + _paths(s.get("metrics")) + _paths(s.get("plots"))
            for name, s in stages.items()}
    return {name: {other for other, o in outs.items() if other != name
                   and any(_overlaps(d, p) for d in _paths(s.get("deps")) for p in o)}
            for name, s in stages.items()}


def _upstream(graph: dict[str, set[str]], stage: str) -> set[str]:
    seen, todo = set(), list(graph.get(stage, ()))
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(graph.get(s, ()))
    return seen


def phases(plan: list[str], graph: dict[str, set[str]]) -> tuple[list[str], list[str], list[str]]:
    """(before, parallel, after), what :func:`estimate` counts: ``before`` = what the train stages
    of ``plan`` need (code digests, data); ``parallel`` = the other planned stages whose planned
    inputs all come from ``before`` (trains, references: independent of each other); ``after`` =
    the rest (the report)."""
    planned = set(plan)
    before = set()
    for s in plan:
        if s.startswith("train_"):
            before |= _upstream(graph, s) & planned
    parallel = [s for s in plan if s not in before and (_upstream(graph, s) & planned) <= before]
    after = [s for s in plan if s not in before and s not in parallel]
    return [s for s in plan if s in before], parallel, after


def lanes(stages: list[str], jobs: int, duration: dict[str, float | None]) -> list[list[str]]:
    """``stages`` dealt to ``jobs`` lanes, longest first to the least loaded (recorded durations;
    a stage without one counts as the mean of the others)."""
    known = [d for d in duration.values() if d is not None]
    default = sum(known) / len(known) if known else 1.0
    cost = {s: duration.get(s) if duration.get(s) is not None else default for s in stages}
    out: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(stages))))]
    load = [0.0] * len(out)
    for s in sorted(stages, key=lambda s: -cost[s]):
        i = load.index(min(load))
        out[i].append(s)
        load[i] += cost[s]
    return out


def with_downstream(plan: list[str], graph: dict[str, set[str]], order: list[str]) -> list[str]:
    """``plan`` and every stage downstream of a planned one, upstream first (``order``, dvc.yaml's,
    among equals). A dry run cannot see that a stage's inputs change once an upstream stage runs
    (a code digest, a new store), so those are run too; DVC skips the ones that turn out unchanged."""
    down: dict[str, set[str]] = {}
    for stage, ups in graph.items():
        for u in ups:
            down.setdefault(u, set()).add(stage)
    todo, stack = set(plan), list(plan)
    while stack:
        for d in down.get(stack.pop(), ()):
            if d not in todo:
                todo.add(d)
                stack.append(d)
    rank: dict[str, int] = {}
    for s in [*order, *plan]:
        rank.setdefault(s, len(rank))
    ups = {s: graph.get(s, set()) & todo for s in todo}
    out: list[str] = []
    while len(out) < len(todo):  # topological, dvc.yaml order among the ready
        placed = set(out)
        ready = [s for s in todo if s not in placed and ups[s] <= placed]
        if not ready:
            raise ValueError(f"dvc.yaml: the stages {sorted(todo - placed)} depend on each other in a cycle")
        out.append(min(ready, key=lambda s: rank.get(s, len(rank))))
    return out


class Scheduler:
    """Which stages a free lane runs next: of the stages whose upstream stages (among ``todo``)
    are done, the ones that unblock most first, then the longest; as many as 1/``jobs`` of the
    ready work (at least one). Thread-safe through the caller's lock."""

    def __init__(self, todo: list[str], graph: dict[str, set[str]], jobs: int, cost: dict[str, float]):
        self.todo, self.jobs, self.cost = list(todo), max(1, jobs), cost
        members = set(todo)
        self.ups = {s: graph.get(s, set()) & members for s in todo}
        ancestors = {d: _upstream(self.ups, d) for d in self.todo}
        self.unblocks = {s: sum(s in a for a in ancestors.values()) for s in self.todo}
        self.done: set[str] = set()
        self.claimed: set[str] = set()

    def ready(self) -> list[str]:
        ready = [s for s in self.todo if s not in self.claimed and self.ups[s] <= self.done]
        return sorted(ready, key=lambda s: (-self.unblocks[s], -self.cost.get(s, 0.0)))

    def next_batch(self) -> list[str]:
        ready = self.ready()
        target = sum(self.cost.get(s, 0.0) for s in ready) / self.jobs
        batch, total = [], 0.0
        for s in ready:
            if batch and total >= target:
                break
            batch.append(s)
            total += self.cost.get(s, 0.0)
        self.claimed |= set(batch)
        return batch  # all ready: in the order of priority

    def finished(self, stages: Iterable[str]) -> None:
        self.done |= set(stages)

    def all_claimed(self) -> bool:
        return len(self.claimed) == len(self.todo)


# -------------------------------------------------------------------------------- running
def _argv(dvc: str | list[str]) -> list[str]:
    """The command that runs DVC: a path to its executable, or an argv (``python -m ...``)."""
    return [dvc] if isinstance(dvc, str) else list(dvc)


def plan_of(args: list[str], dvc: str | list[str]) -> list[str]:
    dry = subprocess.run([*_argv(dvc), "repro", "--dry", *args], capture_output=True, text=True)
    plan = planned_stages(dry.stdout.splitlines())
    if dry.returncode != 0:
        # On a fresh checkout the dry run stops at the first stage whose inputs an earlier stage
        # has yet to write; every stage of dvc.yaml is then a fair plan.
        plan = all_stages() or plan
    return plan


def estimate(plan: list[str], jobs: int, graph: dict[str, set[str]], runs_dir: Path = Path("runs")) -> str:
    """What the recorded durations (train stages' ``elapsed_s``, their time inside the training
    code) say the parallel step of a repro takes, sequentially and in ``jobs`` lanes."""
    _, parallel, _ = phases(plan, graph)
    durations = {s: recorded_duration(s, runs_dir) for s in parallel}
    known = [d for d in durations.values() if d is not None]
    mean = sum(known) / len(known) if known else 0.0
    lane_list = lanes(parallel, jobs, durations)
    cost = lambda s: durations[s] if durations[s] is not None else mean  # noqa: E731
    span = max((sum(cost(s) for s in lane) for lane in lane_list), default=0.0)
    return (f"[progress] {len(parallel)} independent stage(s), {len(known)} with a recorded duration "
            f"(the others counted at their mean, {fmt_duration(mean)}): {fmt_duration(sum(map(cost, parallel)))} "
            f"one at a time, {fmt_duration(span)} in {len(lane_list)} lane(s); start-up, DVC and the "
            f"other stages come on top")


def check_params(path: Path = Path("params.yaml")) -> None:
    """params.yaml read by the project's reader before DVC reads it: DVC expands YAML aliases
    itself (ten lines of nested aliases held it 100 s and 5 GB); the reader refuses any alias at
    once, with one line naming file and line. Its values are the stages' to check."""
    if path.exists():
        read_yaml(path)


def run(args: list[str], out: TextIO = sys.stdout, dvc: str | list[str] | None = None) -> int:
    return exit_status("progress", lambda: _run(args, out, dvc))


def _run(args: list[str], out: TextIO, dvc: str | list[str] | None) -> int:
    check_params()
    # DVC through lock_guard: dvc.lock written atomically, so a kill -9 never leaves it cut
    dvc = dvc or [sys.executable, "-m", "pipeline.repro.lock_guard"]
    if "--estimate" in args:
        args = [a for a in args if a != "--estimate"]
        jobs, _ = _jobs_arg(args)
        print(estimate(all_stages(), jobs, stage_graph()), file=out)
        return 0
    warm = "--cold" not in args
    args = [a for a in args if a != "--cold"]
    jobs, args = _jobs_arg(args)
    if jobs > 1:
        return run_parallel(jobs, out, dvc, warm)
    return run_sequential(args, out, dvc, warm)


@contextmanager
def _stage_env(warm: bool, plan: list[str]) -> Iterator[dict[str, str]]:
    """The stage commands' environment: with a warm stage server while there is work for it, and the
    portable CPU kernels (the server sets them for itself; this process's own environment is left alone)."""
    from pipeline.repro.stage_server import serving

    with serving(warm and bool(plan)) as served:
        yield cpu_kernels.portable(dict(os.environ, **served))


def run_sequential(args: list[str], out: TextIO, dvc: str | list[str], warm: bool = True) -> int:
    plan = plan_of(args, dvc)
    with _stage_env(warm, plan) as env:
        return _run_dvc_repro(args, out, dvc, env, plan)


def _run_dvc_repro(args: list[str], out: TextIO, dvc: str | list[str], env: dict[str, str], plan: list[str]) -> int:
    tracker = Tracker(plan)
    print(f"[progress] {len(tracker.plan)} stage(s) to run", file=out, flush=True)
    proc = subprocess.Popen([*_argv(dvc), "repro", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = RUNNING.match(line.strip())
        if m:
            print(tracker.start(m.group(1)), file=out, flush=True)
        elif (skipped := SKIPPED.match(line.strip())):
            tracker.skip(skipped.group(1))
        if not chatter(line):
            out.write(line)
            out.flush()
    rc = proc.wait()
    print(f"[progress] dvc repro {'finished' if rc == 0 else f'failed (exit {rc})'} after "
          f"{fmt_duration(time.monotonic() - tracker.t0)}", file=out, flush=True)
    return rc


def _jobs_arg(args: list[str]) -> tuple[int, list[str]]:
    """``--jobs N`` / ``-j N`` out of the arguments; the rest go to ``dvc repro``."""
    rest, jobs, i = [], 1, 0
    while i < len(args):
        a = args[i]
        if a in ("--jobs", "-j") or a.startswith("--jobs="):
            value = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in a else 2
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"progress: --jobs: expected a positive integer, got {value!r}")
            jobs = int(value)
            continue
        rest.append(a)
        i += 1
    if jobs > 1 and rest:
        raise SystemExit(f"progress: --jobs runs the whole pipeline; it takes no dvc repro arguments "
                         f"(got {' '.join(rest)})")
    return jobs, rest


def run_parallel(jobs: int, out: TextIO, dvc: str | list[str], warm: bool = True) -> int:
    graph = stage_graph()
    todo = with_downstream(plan_of([], dvc), graph, all_stages())
    with _stage_env(warm, todo) as env:
        return _run_lanes(jobs, out, dvc, env, graph, todo)


def _run_lanes(jobs: int, out: TextIO, dvc: str | list[str], env: dict[str, str], graph: dict[str, set[str]],
               todo: list[str]) -> int:
    tracker = Tracker(todo, jobs=jobs)
    recorded = [d for d in tracker.recorded.values() if d is not None]
    default = sum(recorded) / len(recorded) if recorded else 1.0
    sched = Scheduler(todo, graph, jobs, {s: tracker.recorded.get(s) or default for s in todo})
    cond = threading.Condition()
    failed: list[int] = []
    running = [0]

    def emit(text: str) -> None:
        with cond:
            out.write(text if text.endswith("\n") else text + "\n")
            out.flush()

    print(f"[progress] {len(todo)} stage(s) to run, {jobs} at a time as their inputs are ready",
          file=out, flush=True)
    env = dict(env, SVQ_JOBS=str(jobs))  # each stage claims a slot: its share of threads / GPUs

    def run_batch(batch: list[str], prefix: str) -> int:
        proc = subprocess.Popen([*_argv(dvc), "--wait-for-lock", "repro", "--single-item", *batch], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            started, skipped = RUNNING.match(line.strip()), SKIPPED.match(line.strip())
            with cond:
                if started or skipped:
                    # DVC runs the batch in order and records a stage before it starts the next
                    stage = (started or skipped).group(1)
                    k = batch.index(stage) if stage in batch else 0
                    sched.finished(batch[:k + (1 if skipped else 0)])
                    if started:
                        out.write(tracker.start(stage) + "\n")
                    else:
                        tracker.skip(stage)
                    cond.notify_all()
                if not chatter(line):
                    out.write(prefix + line)
                    out.flush()
        return proc.wait()

    def lane(k: int) -> None:
        prefix = f"[{k + 1}] " if jobs > 1 else ""
        while True:
            with cond:
                while not failed and not sched.all_claimed() and not sched.ready():
                    if running[0] == 0:  # nothing running can make a stage ready
                        return
                    cond.wait()
                if failed or sched.all_claimed():
                    return
                batch = sched.next_batch()
                running[0] += 1
            rc = run_batch(batch, prefix)
            with cond:
                running[0] -= 1
                if rc == 0:
                    sched.finished(batch)
                else:
                    failed.append(rc)
                cond.notify_all()

    threads = [threading.Thread(target=lane, args=(k,)) for k in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = fmt_duration(time.monotonic() - tracker.t0)
    if failed:
        emit(f"[progress] dvc repro failed (exit {failed[0]}) after {elapsed}")
        return failed[0]
    left = [s for s in todo if s not in sched.done]
    if left:
        emit(f"[progress] dvc repro stopped after {elapsed}: {', '.join(left)} never had their inputs ready")
        return 1
    emit(f"[progress] dvc repro finished after {elapsed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
