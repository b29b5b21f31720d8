"""MLflow: the one place that opens runs, logs, tags and stores artifacts.

The tracking store is ``mlflow.db`` (SQLite) at the repository root, addressed by an absolute
URI so that DVC's temporary experiment workspaces (``.dvc/tmp/exps/...``) log into the same
store as the main workspace. With ``train.tracking: offline`` a run logs instead to a SQLite
store in a folder of its own (``offline_uri``), for nodes with no network path to the server;
``pipeline.tracking.sync`` copies those runs to the server later. Tags say which experiment,
dataset, profile and paper tables a run feeds, which git commit it ran from and which DVC
experiment, if any, launched it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from pipeline.core.paths import repo_root

TAG_PREFIX = "svq."
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


# the offline store of the run being logged (start_run's offline_dir), else None
_offline: Path | None = None


def tracking_uri() -> str:
    """Inside a run logged offline its store (``offline_uri``); else ``SVQ_TRACKING_URI``
    (tests), else the standard ``MLFLOW_TRACKING_URI`` (e.g. a shared server,
    http://host:5000), else ``mlflow.db`` at the repository root."""
    if _offline is not None:
        return offline_uri(_offline)
    uri = os.environ.get("SVQ_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def offline_uri(folder: str | Path) -> str:
    """The offline store in ``folder``: ``mlflow.db`` (SQLite: no server, no network), its
    experiments' artifacts under ``artifacts/``."""
    return f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


def offline_artifacts(folder: str | Path) -> str:
    return (Path(folder).resolve() / "artifacts").as_uri()


def _remote(uri: str) -> bool:
    return uri.split(":", 1)[0] in ("http", "https", "databricks")


def _main_rank() -> bool:
    """Under torchrun only rank 0 talks to MLflow (the launcher exports RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def experiment_name(profile: str) -> str:
    return f"svq-{profile}"


@contextmanager
def store_lock() -> Iterator[None]:
    """Held while a process first touches the store: MLflow creates a fresh store's tables on
    first use, and concurrent creators race (most of them crash) unless they take turns."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        lock = Path(uri[len("sqlite:///"):] + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
    else:
        lock = Path(tempfile.gettempdir()) / f"svq-mlflow-{hashlib.sha1(uri.encode()).hexdigest()[:12]}.lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_experiment(name: str) -> str:
    """Create the MLflow experiment once (artifacts beside the database) and return its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    with store_lock():
        exp_id = _ensure_experiment(mlflow, name)
        mark_dead_runs(exp_id)
    return exp_id


def _ensure_experiment(mlflow, name: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        if EXPERIMENT_KIND_TAG not in exp.tags:  # a store from before the tag
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    try:  # the kind tag marks it as model training (MLflow's model-training view), not GenAI
        return mlflow.create_experiment(name, artifact_location=artifact_location(name, tracking_uri()),
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:  # created meanwhile by a concurrent stage
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def artifact_location(name: str, uri: str) -> str | None:
    """Where experiment ``name`` of the store at ``uri`` keeps its artifacts: beside an offline
    store, else ``SVQ_ARTIFACT_ROOT`` or ``mlartifacts/`` at the repository root; None for a
    tracking server, which picks its own (--artifacts-destination): a local path chosen here would
    be another machine's disk."""
    if _offline is not None and uri == offline_uri(_offline):
        artifacts = offline_artifacts(_offline)
    else:
        artifacts = os.environ.get("SVQ_ARTIFACT_ROOT")
        if artifacts is None and not _remote(uri):
            artifacts = (repo_root() / "mlartifacts").as_uri()
    return None if artifacts is None else f"{artifacts}/{name}"


def process_tag() -> str:
    """host:pid:start-time of this process, so a later process can tell whether it still runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def mark_dead_runs(exp_id: str) -> list[str]:
    """Runs still RUNNING whose process (on this host) is gone were killed: say so in the store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri())
    dead = []
    for run in client.search_runs([exp_id], "attributes.status = 'RUNNING'", max_results=10_000):
        owner = run.data.tags.get(f"{TAG_PREFIX}process", "")
        host, _, rest = owner.partition(":")
        pid, _, started = rest.partition(":")
        if host == socket.gethostname() and pid.isdigit() and _start_time(int(pid)) != started:
            client.set_terminated(run.info.run_id, "KILLED")
            dead.append(run.info.run_id)
    return dead


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when it does not exist); a reused
    pid has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc: existence is all we can tell
        except ProcessLookupError:
            return ""
        except PermissionError:
            pass
        return "alive"
    return stat.rsplit(")", 1)[1].split()[19]


def run_name(experiment: str, seed: int) -> str:
    """``<experiment>/seed<k>@<DVC experiment>`` (or ``@<commit>`` outside one): repeats and DVC
    experiments are told apart in MLflow's run list."""
    where = dvc_experiment() or (git_commit() or "")[:7] or "workspace"
    return f"{experiment}/seed{seed}@{where}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=repo_root(), check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def dvc_experiment() -> str | None:
    """DVC exports the experiment's name to the stage commands it runs."""
    return os.environ.get("DVC_EXP_NAME")


@contextmanager
def start_run(run_name: str, *, profile: str, tags: dict[str, Any], params: dict[str, Any],
              run_id: str | None = None, offline_dir: Path | None = None) -> Iterator[Any]:
    """A new run, or with ``run_id`` the continuation of a killed one (see pipeline.training.checkpoint).
    With ``offline_dir`` (``TrainSettings.offline_store``) the run and everything logged while it
    is open go to the offline store there."""
    global _offline

    if not _main_rank():
        yield SimpleNamespace(info=SimpleNamespace(run_id=""))
        return
    before, _offline = _offline, (None if offline_dir is None else Path(offline_dir).resolve())
    try:
        with _start_run(run_name, profile=profile, tags=tags, params=params, run_id=run_id) as run:
            yield run
    finally:
        _offline = before
        if offline_dir is not None:  # MLflow's own default store back to what tracking_uri() names
            import mlflow

            mlflow.set_tracking_uri(tracking_uri())


@contextmanager
def _start_run(run_name: str, *, profile: str, tags: dict[str, Any], params: dict[str, Any],
               run_id: str | None) -> Iterator[Any]:
    import mlflow

    exp_id = ensure_experiment(experiment_name(profile))
    all_tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items()}
    all_tags[f"{TAG_PREFIX}process"] = process_tag()
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
        all_tags[f"{TAG_PREFIX}git_commit"] = commit
    if dvc_experiment():
        all_tags[f"{TAG_PREFIX}dvc_experiment"] = dvc_experiment()
    if run_id is not None and not _run_exists(run_id):
        run_id = None  # the store was replaced since the checkpoint: start a new run
    if run_id is not None:
        with mlflow.start_run(run_id=run_id, tags=all_tags | {f"{TAG_PREFIX}resumed": "true"}) as run:
            yield run  # its params were logged when it started
        return
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags) as run:
        # MLflow caps a param value at 6000 chars; ours are short scalars and lists
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        yield run


def _run_exists(run_id: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(tracking_uri()).get_run(run_id)
    except MlflowException:
        return False
    return True


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    if not _main_rank():
        return
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: dict[str, Any]) -> None:
    if not _main_rank():
        return
    import mlflow

    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_series(series: dict[str, list[float]], first_step: int = 1) -> None:
    """Several metrics' values per step (the k-th value at step ``first_step + k``), non-finite
    ones left out, in as few store transactions as MLflow's batch limit allows: one call per value
    was ~2 s of every weather stage (72 per-lead scores)."""
    if not _main_rank():
        return
    import math
    import time

    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(name, float(v), now, step) for name, values in series.items()
               for step, v in enumerate(values, start=first_step) if math.isfinite(v)]
    run_id = mlflow.active_run().info.run_id
    client = mlflow.MlflowClient(tracking_uri())
    for i in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def log_artifact(path: str | Path, subdir: str | None = None) -> None:
    if not _main_rank():
        return
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=subdir)


def _param(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)
