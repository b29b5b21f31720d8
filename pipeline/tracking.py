"""MLflow: the one place that opens runs, logs, tags and stores artifacts.

The tracking store is ``mlflow.db`` (SQLite) at the repository root, addressed by an absolute
URI so that DVC's temporary experiment workspaces (``.dvc/tmp/exps/...``) log into the same
store as the main workspace. Tags say which experiment, dataset, profile and paper tables a run
feeds, which git commit it ran from and which DVC experiment, if any, launched it.
"""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TAG_PREFIX = "svq."


def repo_root(start: Path | None = None) -> Path:
    """The project root, seen from the workspace or from a DVC temporary experiment copy."""
    here = (start or Path.cwd()).resolve()
    parts = here.parts
    if ".dvc" in parts:  # .dvc/tmp/exps/<tmp>/...: log next to the real repository
        return Path(*parts[: parts.index(".dvc")])
    for p in (here, *here.parents):
        if (p / "params.yaml").exists() and (p / "pipeline").is_dir():
            return p
    return here


def tracking_uri() -> str:
    uri = os.environ.get("SVQ_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def experiment_name(profile: str) -> str:
    return f"svq-{profile}"


def ensure_experiment(name: str) -> str:
    """Create the MLflow experiment once (artifacts beside the database) and return its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifacts = os.environ.get("SVQ_ARTIFACT_ROOT") or (repo_root() / "mlartifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=f"{artifacts}/{name}")
    except Exception:  # created meanwhile by a concurrent stage
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


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
def start_run(run_name: str, *, profile: str, tags: dict[str, Any], params: dict[str, Any]) -> Iterator[Any]:
    import mlflow

    exp_id = ensure_experiment(experiment_name(profile))
    all_tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items()}
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
        all_tags[f"{TAG_PREFIX}git_commit"] = commit
    if dvc_experiment():
        all_tags[f"{TAG_PREFIX}dvc_experiment"] = dvc_experiment()
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags) as run:
        # MLflow caps a param value at 6000 chars; ours are short scalars and lists
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        yield run


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_artifact(path: str | Path, subdir: str | None = None) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=subdir)


def _param(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)
