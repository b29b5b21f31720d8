"""Read trained runs back from MLflow: one RunRecord per experiment, seeds aggregated.

The report reads the numbers MLflow shows (``mlflow.search_runs``: a metric's latest value), so
the tables and the MLflow UI always agree. Artifacts and metric histories come from the same store.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline import tracking
from pipeline.data.prepared import DataError

log = logging.getLogger(__name__)

TAG = tracking.TAG_PREFIX
_CHUNK = 200  # run ids per search: keeps the SQL IN list short


@dataclass(frozen=True)
class RunRecord:
    """One experiment: its seeds' runs, metric mean and (population) std over seeds."""

    experiment: str
    dataset: str
    profile: str
    tables: tuple[int, ...]
    n_seeds: int
    metrics: dict[str, float]
    metrics_std: dict[str, float]
    params: dict[str, str]
    run_ids: tuple[str, ...]
    seeds: tuple[int | None, ...] = field(default=())

    def metric(self, *names: str) -> tuple[float | None, float | None]:
        """(mean, std) of the first of ``names`` this record has; (None, None) if none."""
        for name in names:
            if name in self.metrics:
                return self.metrics[name], self.metrics_std.get(name)
        return None, None


def load_records(run_ids: Mapping[str, Sequence[str]] | Sequence[str],
                 tracking_uri: str | None = None) -> list[RunRecord]:
    """Fetch runs by id and aggregate the seeds of each experiment.

    ``run_ids``: ``{experiment: [run ids]}`` (as the runs' result.json files list them) or a flat
    list of ids, grouped by each run's ``svq.experiment`` tag. A missing id raises ``DataError``
    naming its experiment. Records come back in the order of the mapping (or of first appearance).
    """
    if isinstance(run_ids, Mapping):
        wanted = {exp: [str(r) for r in ids] for exp, ids in run_ids.items()}
        for exp, ids in wanted.items():
            if not ids:
                raise DataError(f"experiment {exp!r}: its result lists no MLflow run ids; "
                                f"re-run its stage (train@{exp})")
        flat = [r for ids in wanted.values() for r in ids]
    else:
        if isinstance(run_ids, str):
            raise DataError(f"load_records: expected a list of run ids or a mapping experiment -> "
                            f"run ids, got the string {run_ids!r}")
        wanted = None
        flat = [str(r) for r in run_ids]
    if not flat:
        return []
    uri = tracking_uri or tracking.tracking_uri()
    rows = _search(flat, uri)

    if wanted is None:
        missing = [r for r in flat if r not in rows]
        if missing:
            raise DataError(f"MLflow store {uri}: run id(s) {missing} not found (experiment unknown: "
                            f"no record of them); re-run the stages that produced them")
        wanted = {}
        for r in flat:
            wanted.setdefault(rows[r]["tags"].get(f"{TAG}experiment") or "", []).append(r)
    out = []
    for exp, ids in wanted.items():
        missing = [r for r in ids if r not in rows]
        if missing:
            raise DataError(f"experiment {exp!r}: MLflow run id(s) {missing} are not in the tracking "
                            f"store {uri}; the store was reset or moved since the run: re-run its stage "
                            f"(dvc repro -f train@{exp}, or python stages/train.py {exp})")
        out.append(_aggregate(exp, [rows[r] for r in ids]))
    return out


def metric_history(run_id: str, key: str, tracking_uri: str | None = None) -> list[tuple[int, float]]:
    """(step, value) of one metric of one run, ordered by step (per-epoch curves)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri or tracking.tracking_uri())
    hist = client.get_metric_history(run_id, key)
    return sorted((int(m.step), float(m.value)) for m in hist)


def download_artifact(run_id: str, name: str, dst: Path, tracking_uri: str | None = None) -> Path | None:
    """A run's artifact copied under ``dst``; None (logged) when the run has no such artifact."""
    import mlflow

    dst.mkdir(parents=True, exist_ok=True)
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(dst),
                                                   tracking_uri=tracking_uri or tracking.tracking_uri())
    except Exception as exc:  # mlflow raises several types (MlflowException, OSError) for "not there"
        log.info("run %s: no artifact %r (%s)", run_id, name, exc)
        return None
    return Path(path)


# --------------------------------------------------------------------------------------------
@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """mlflow.search_runs reads the global tracking URI: set it for the call only."""
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None: back to "not set", as mlflow's own helper does


def _search(ids: list[str], uri: str) -> dict[str, dict[str, Any]]:
    import mlflow

    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(ids))
    with _tracking(uri):
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i:i + _CHUNK]
            quoted = ", ".join(f"'{r}'" for r in chunk if "'" not in r)  # ids are hex: a quote is no id
            if not quoted:
                continue
            df = mlflow.search_runs(filter_string=f"attributes.run_id IN ({quoted})",
                                    search_all_experiments=True, max_results=len(chunk))
            for _, row in df.iterrows():
                entry: dict[str, Any] = {"run_id": str(row["run_id"]), "metrics": {}, "params": {}, "tags": {}}
                for col, value in row.items():
                    prefix, _, key = str(col).partition(".")
                    if prefix in ("metrics", "params", "tags") and key and _present(value):
                        entry[prefix][key] = float(value) if prefix == "metrics" else str(value)
                found[str(row["run_id"])] = entry
    return found


def _present(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _aggregate(experiment: str, runs: list[dict[str, Any]]) -> RunRecord:
    tags = [r["tags"] for r in runs]
    for t in tags:
        tagged = t.get(f"{TAG}experiment")
        if tagged and tagged != experiment:
            raise DataError(f"experiment {experiment!r}: its result lists a run of experiment "
                            f"{tagged!r}; re-run its stage (train@{experiment})")
    profiles = {t.get(f"{TAG}profile", "") for t in tags}
    if len(profiles) > 1:
        raise DataError(f"experiment {experiment!r}: its runs come from different profiles "
                        f"{sorted(profiles)}; re-run its stage")
    names = sorted({k for r in runs for k in r["metrics"]})
    mean, std = {}, {}
    for name in names:
        vals = np.array([r["metrics"][name] for r in runs if name in r["metrics"]], dtype=float)
        mean[name] = float(np.mean(vals))
        # population std, as result.json's metrics_std; 0 for a single seed
        std[name] = float(np.std(vals)) if np.all(np.isfinite(vals)) else math.nan
    params: dict[str, str] = {}
    for key in sorted({k for r in runs for k in r["params"]}):
        values = list(dict.fromkeys(r["params"].get(key, "") for r in runs))
        params[key] = values[0] if len(values) == 1 else ",".join(values)
    tables = tuple(int(x) for x in (tags[0].get(f"{TAG}tables") or "").split(",") if x.strip().isdigit())
    return RunRecord(
        experiment=experiment,
        dataset=tags[0].get(f"{TAG}dataset") or params.get("dataset", ""),
        profile=profiles.pop(),
        tables=tables,
        n_seeds=len(runs),
        metrics=mean,
        metrics_std=std,
        params=params,
        run_ids=tuple(_run_id(r) for r in runs),
        seeds=tuple(_seed(t) for t in tags),
    )


def _run_id(run: dict[str, Any]) -> str:
    return run["run_id"]


def _seed(tags: dict[str, str]) -> int | None:
    try:
        return int(tags[f"{TAG}seed"])
    except (KeyError, ValueError):
        return None


__all__ = ["RunRecord", "load_records", "metric_history", "download_artifact"]
