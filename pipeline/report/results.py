"""Each experiment's committed result (``runs/<exp>/``, written by ``pipeline.training.record_files``)
read into one ExperimentResult, seeds aggregated. The report reads nothing else, so it rebuilds
from a clone with no MLflow store; MLflow shows the same numbers (every record names its runs' ids).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import paths
from pipeline.training import record_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentResult:
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
    run_dir: Path | None = field(default=None, compare=False)
    leads: dict[str, list[float | None]] = field(default_factory=dict, compare=False)  # per-lead series, first seed
    seed_metrics: tuple[dict[str, float | None], ...] = field(default=(), compare=False)  # each seed's metrics
    software: dict[str, str | None] = field(default_factory=dict, compare=False)  # versions that produced it
    # reference -> {"mse", "skill_mse", "leads_lost", "leads"}: the seed mean against each reference forecast
    references: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    def metric(self, *names: str) -> tuple[float | None, float | None]:
        """(mean, std) of the first of ``names`` this record has; (None, None) if none."""
        for name in names:
            if self.metrics.get(name) is not None:
                return self.metrics[name], self.metrics_std.get(name)
        return None, None

    def history(self, column: str = "val_loss") -> dict[int, list[tuple[int, float]]]:
        """``column`` of the history (val_loss, train_loss, lr) per epoch, by seed."""
        return record_files.read_history(self.run_dir, column) if self.run_dir else {}

    def figure_data(self) -> dict[str, Any]:
        return record_files.read_figure_data(self.run_dir) if self.run_dir else {}

    def windows(self) -> dict[int, dict[str, Any]]:
        """Per seed, per metric: the (test windows, leads) errors (empty for an older record)."""
        return record_files.read_windows(self.run_dir) if self.run_dir else {}


def load_results(runs_dir: Path | str, experiments: Sequence[str], profile: str) -> dict[str, ExperimentResult]:
    """The record of every experiment in ``experiments`` that has a ``runs/<exp>/result.json``, for
    ``profile`` (records of another profile are left out, logged), in catalogue order."""
    out: dict[str, ExperimentResult] = {}
    for name in experiments:
        run_dir = paths.run_dir(name, Path(runs_dir))
        if not (run_dir / record_files.RESULT).exists():
            continue
        result = record_files.read(run_dir)
        if result["profile"] != profile:
            log.warning("%s: trained under profile %r, the report is for %r: left out",
                        run_dir / record_files.RESULT, result["profile"], profile)
            continue
        out[name] = from_result(result, run_dir)
    return out


def from_result(result: Mapping[str, Any], run_dir: Path | None = None) -> ExperimentResult:
    runs = result["runs"]
    return ExperimentResult(
        experiment=result["experiment"], dataset=result.get("dataset", ""), profile=result["profile"],
        tables=tuple(int(t) for t in result.get("tables") or ()), n_seeds=len(runs),
        metrics={k: v for k, v in result["metrics"].items() if v is not None},
        metrics_std={k: v for k, v in result["metrics_std"].items() if v is not None},
        params={k: _param(v) for k, v in result["params"].items()},
        run_ids=tuple(str(r.get("run_id", "")) for r in runs),
        seeds=tuple(r.get("seed") for r in runs), run_dir=run_dir, leads=dict(runs[0].get("leads") or {}),
        seed_metrics=tuple(dict(r.get("metrics") or {}) for r in runs), software=dict(result.get("software") or {}),
        references=dict(result.get("references") or {}))


def _param(v: Any) -> str:
    """Parameters as MLflow shows them (lists comma-joined), so both views read the same."""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


__all__ = ["ExperimentResult", "load_results", "from_result"]
