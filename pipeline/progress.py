"""Progress you can see: ``dvc repro`` with stage k of n, elapsed and estimated time left, and the
one-line summary a training stage prints when it ends.

    python -m pipeline.progress [dvc repro arguments]    # what `make repro` runs

DVC itself prints only "Running stage '<name>'". This wrapper first asks ``dvc repro --dry`` which
stages will run (n), then runs ``dvc repro`` and, at each stage start, prints where it is. The
estimate of the time left uses each stage's duration recorded by its last run
(``runs/<exp>/result.json`` ``elapsed_s``) where there is one, else the mean of the stages run so far.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, TextIO

RUNNING = re.compile(r"^Running stage '([^']+)'")


def one_line_summary(result: dict[str, Any], elapsed_s: float) -> str:
    """``train_<exp> done in 1m02s: 1 seed, 2 epochs, test_mse 1.23 ± 0.01, test_mae ...``."""
    metrics, std = result.get("metrics") or {}, result.get("metrics_std") or {}
    seeds = result.get("seeds") or []
    parts = [f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"]
    epochs = metrics.get("epochs_run")
    if epochs is not None:
        parts.append(f"{epochs:g} epochs")
    for name in sorted(k for k in metrics if k.startswith("test_")):
        if metrics[name] is not None:
            sd = std.get(name)
            parts.append(f"{name} {metrics[name]:.4g}" + (f" ± {sd:.2g}" if sd and len(seeds) > 1 else ""))
    if metrics.get("best_val_loss") is not None:
        parts.append(f"best val_loss {metrics['best_val_loss']:.4g}")
    return f"train_{result.get('experiment', '?')} done in {fmt_duration(elapsed_s)}: {', '.join(parts)}"


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


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
    """Stage k of n, elapsed, estimated time left, from the stage starts seen so far."""

    def __init__(self, plan: list[str], runs_dir: Path = Path("runs"), clock=time.monotonic):
        self.plan, self.clock, self.t0 = plan, clock, clock()
        self.recorded = {s: recorded_duration(s, runs_dir) for s in plan}
        self.started: list[tuple[str, float]] = []

    def start(self, stage: str) -> str:
        now = self.clock()
        self.started.append((stage, now))
        k, n = len(self.started), max(len(self.plan), len(self.started))
        return f"[progress] stage {k} of {n}: {stage} | elapsed {fmt_duration(now - self.t0)}" \
               f" | {self._left(stage, now)}"

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
        return f"~{fmt_duration(sum(est))} left"


def run(args: list[str], out: TextIO = sys.stdout, dvc: str | None = None) -> int:
    dvc = dvc or str(Path(sys.executable).with_name("dvc"))
    dry = subprocess.run([dvc, "repro", "--dry", *args], capture_output=True, text=True)
    plan = planned_stages(dry.stdout.splitlines())
    if dry.returncode != 0:
        # On a fresh checkout the dry run stops at the first stage whose inputs an earlier stage
        # has yet to write; every stage of dvc.yaml is then a fair plan.
        plan = all_stages() or plan
    tracker = Tracker(plan)
    print(f"[progress] {len(tracker.plan)} stage(s) to run", file=out, flush=True)
    proc = subprocess.Popen([dvc, "repro", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = RUNNING.match(line.strip())
        if m:
            print(tracker.start(m.group(1)), file=out, flush=True)
        out.write(line)
        out.flush()
    rc = proc.wait()
    print(f"[progress] dvc repro {'finished' if rc == 0 else f'failed (exit {rc})'} after "
          f"{fmt_duration(time.monotonic() - tracker.t0)}", file=out, flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
