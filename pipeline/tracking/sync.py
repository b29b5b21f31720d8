"""Copy the runs logged offline (``train.tracking: offline``) to the tracking server, once.

Every finished, failed or killed run of the offline store is copied whole: its experiment (found
or created by name), run name, start and end time, status, params, every metric's full history
(values, steps, timestamps), tags, artifacts, logged models (files and the LoggedModel's name,
params and tags, relinked to the copy) and dataset inputs. The copy carries the tag
``svq.synced_from = <offline run id>``: a run already copied is left alone, so the command can
be re-run after every batch of jobs. A run still RUNNING offline is skipped (its job may still
be logging); a copy interrupted halfway is deleted and made again on the next sync.

    python -m pipeline.tracking.sync                      # train.offline_dir -> MLFLOW_TRACKING_URI (else mlflow.db)
    python -m pipeline.tracking.sync --from /scratch/me/mlruns-offline --to http://tracking-host:5000

Run one sync at a time per target: two at once could both copy the same run.
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config.train import TrainSettings
from pipeline.core.errors import ConfigError, exit_status
from pipeline.core.paths import repo_root
from pipeline.core.schema import parse
from pipeline.core.yamlfile import read_yaml
from pipeline.tracking.mlflow_runs import TAG_PREFIX, artifact_location, offline_uri, tracking_uri

SYNCED_FROM = f"{TAG_PREFIX}synced_from"
PAGE = 1000          # runs per search page
PARAMS_PER_BATCH = 100   # MLflow's limits per log_batch call
METRICS_PER_BATCH = 1000
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # two bars per run: noise beside our line


def default_source(params_file: Path | None = None) -> Path:
    """``train.offline_dir`` of params.yaml, relative ones below the repository root."""
    params_file = params_file or repo_root() / "params.yaml"
    train = read_yaml(params_file).get("train")
    return parse(TrainSettings, train, f"{params_file}: train").offline_folder(params_file.parent)


def sync(source: str | Path, target: str, say: Callable[[str], None] = print) -> Counter:
    """Copy every run of the offline store in folder ``source`` to the store or server at
    ``target``; one line per run through ``say``; returns the count per outcome (copied,
    already there, skipped)."""
    from mlflow import MlflowClient

    source = Path(source)
    if not (source / "mlflow.db").is_file():
        raise ConfigError(f"--from {source}: no offline store there (expected {source / 'mlflow.db'}, "
                          f"written by runs with train.tracking: offline)")
    src_uri = offline_uri(source)
    if target == src_uri:
        raise ConfigError(f"--to {target}: that is the offline store itself; expected the tracking server's URI")
    src, dst = MlflowClient(src_uri), MlflowClient(target)
    counts: Counter = Counter()
    for exp in src.search_experiments():
        target_exp = None
        for run in _all_runs(src, exp.experiment_id):
            rid, label = run.info.run_id, f"{exp.name}/{run.info.run_name} ({run.info.run_id})"
            if run.info.status == "RUNNING":
                say(f"skipped {label}: still RUNNING offline (its job may still be logging; sync again once it ends)")
                counts["skipped"] += 1
                continue
            target_exp = target_exp or _target_experiment(dst, exp, target)
            copies = dst.search_runs([target_exp], f"tags.`{SYNCED_FROM}` = '{rid}'", max_results=PAGE)
            done = [c for c in copies if c.info.status != "RUNNING"]
            if done:
                say(f"already there {label}: run {done[0].info.run_id}")
                counts["already there"] += 1
                continue
            for half in copies:  # a copy that an interrupted sync left unfinished
                dst.delete_run(half.info.run_id)
            copy = _copy_run(src, dst, run, target_exp)
            say(f"copied {label}: run {copy}")
            counts["copied"] += 1
    say(f"sync {source} -> {target}: {counts['copied']} copied, {counts['already there']} already there, "
        f"{counts['skipped']} skipped")
    return counts


def located(run_id: str, uri: str | None = None) -> str:
    """The id under which run ``run_id`` is in the store at ``uri`` (default: ``tracking_uri()``):
    itself, or the copy a sync made of it (run records name the offline run); unchanged if neither."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri or tracking_uri())
    try:
        return client.get_run(run_id).info.run_id
    except MlflowException:
        pass
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    copies = client.search_runs(exp_ids, f"tags.`{SYNCED_FROM}` = '{run_id}'", max_results=1) if exp_ids else []
    return copies[0].info.run_id if copies else run_id


def _all_runs(client, exp_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], max_results=PAGE, order_by=["attributes.start_time ASC"],
                                  page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _target_experiment(dst, exp, target: str) -> str:
    found = dst.get_experiment_by_name(exp.name)
    if found is not None:
        return found.experiment_id
    try:
        return dst.create_experiment(exp.name, artifact_location=artifact_location(exp.name, target),
                                     tags=dict(exp.tags))
    except Exception:  # created meanwhile by a training logging to the server
        found = dst.get_experiment_by_name(exp.name)
        if found is None:
            raise
        return found.experiment_id


def _copy_run(src, dst, run, exp_id: str) -> str:
    """The copy's run id. It is created RUNNING and gets the source's status last: a copy an
    interrupted sync leaves behind is recognisably unfinished."""
    from mlflow.entities import LoggedModelInput, LoggedModelOutput, Metric, Param

    rid = run.info.run_id
    tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.runName"} | {SYNCED_FROM: rid}
    new = dst.create_run(exp_id, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name).info.run_id
    with tempfile.TemporaryDirectory(prefix="svq-sync-") as tmp:
        # the models first: metrics logged while one was active name it
        outputs = run.outputs.model_outputs if run.outputs else []
        models = {o.model_id: _copy_model(src, dst, src.get_logged_model(o.model_id), exp_id, rid, new,
                                          Path(tmp) / o.model_id)
                  for o in outputs}
        params = [Param(k, v) for k, v in run.data.params.items()]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            dst.log_batch(new, params=params[i:i + PARAMS_PER_BATCH])
        metrics = [Metric(m.key, m.value, m.timestamp, m.step, model_id=models.get(m.model_id),
                          dataset_name=m.dataset_name, dataset_digest=m.dataset_digest)
                   for key in run.data.metrics for m in src.get_metric_history(rid, key)]
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            dst.log_batch(new, metrics=metrics[i:i + METRICS_PER_BATCH])
        inputs = run.inputs
        model_inputs = [LoggedModelInput(models[m.model_id]) for m in (inputs.model_inputs or [])
                        if m.model_id in models] if inputs else []
        if inputs and (inputs.dataset_inputs or model_inputs):
            dst.log_inputs(new, datasets=list(inputs.dataset_inputs or []), models=model_inputs or None)
        if outputs:
            dst.log_outputs(new, [LoggedModelOutput(models[o.model_id], o.step) for o in outputs])
        files = Path(tmp) / "run"
        files.mkdir()
        src.download_artifacts(rid, "", str(files))
        if any(p.is_file() for p in files.rglob("*")):
            dst.log_artifacts(new, str(files))
    dst.set_terminated(new, run.info.status, end_time=run.info.end_time)
    return new


def _copy_model(src, dst, model, exp_id: str, old_run: str, new_run: str, folder: Path) -> str:
    """The logged model's copy, linked to the copied run; returns its model id. Its files are
    copied as they are, but for the ids and location its MLmodel file records, which become the copy's."""
    import mlflow

    new = dst.create_logged_model(exp_id, name=model.name, source_run_id=new_run, tags=dict(model.tags or {}),
                                  params=dict(model.params or {}), model_type=model.model_type)
    folder.mkdir(parents=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=str(folder)))
    mlmodel = local / "MLmodel"
    if mlmodel.is_file():
        mlmodel.write_text(relinked_mlmodel(mlmodel.read_text(), model.model_id, new.model_id, old_run, new_run,
                                            new.artifact_location))
    dst.log_model_artifacts(new.model_id, str(local))
    status = str(getattr(model.status, "name", model.status))
    if status in ("READY", "FAILED"):
        dst.finalize_logged_model(new.model_id, status)
    return new.model_id


def relinked_mlmodel(text: str, old_model: str, new_model: str, old_run: str, new_run: str, location: str) -> str:
    """An MLmodel file's text naming the copy: its model id (``model_id``, ``model_uuid``), run and
    ``artifact_path``; every other line as it was."""
    text = re.sub(r"(?m)^artifact_path: .*$", lambda _: f"artifact_path: {location}", text)
    return text.replace(old_model, new_model).replace(old_run, new_run)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.tracking.sync", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", help="the offline store's folder (default: params.yaml train.offline_dir)")
    ap.add_argument("--to", dest="target",
                    help="the tracking server or store (default: MLFLOW_TRACKING_URI, else mlflow.db at the root)")
    args = ap.parse_args(argv)

    def run() -> int:
        sync(args.source or default_source(), args.target or tracking_uri())
        return 0

    return exit_status("sync", run)


if __name__ == "__main__":
    raise SystemExit(main())
