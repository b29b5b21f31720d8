"""``reports/tables/claims.csv``: every claim of the paper our runs can test, with a 95 % interval and a verdict.

The claims are paper.yaml's (:mod:`pipeline.report.claims`): each is a quantity computed from a
table's cells. Here each cell becomes a :class:`~pipeline.report.significance.Cell` (its run's
per-seed values and per-window errors), the quantity is recomputed through the same table builder
and claim code when a cell moves (so its gradient is exact to the formula the reading uses), and
:func:`~pipeline.report.significance.claim_intervals` gives the interval. ``effect`` is signed so
that > 0 is the paper's direction; the verdict is ``holds`` when the interval lies above 0,
``reversed`` below, else ``inconclusive``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from pipeline.report.claims import Check, evaluate
from pipeline.report.paper import PaperTable
from pipeline.report.results import ExperimentResult
from pipeline.report.significance import N_BOOT, VERDICTS, Cell, claim_intervals, seed_pool, verdict
from pipeline.report.tables import build_table, software_text

COLUMNS = ["table", "claim", "effect", "ci_low", "ci_high", "unit", "p_value", "n_seeds", "n_windows",
           "method", "verdict", "paper_effect", "paper_version", "software"]
# Counts of the model, not measurements: the same on every seed and machine
EXACT_METRICS = frozenset({"params_total", "params_trainable", "params_quantizer", "flops_per_sample",
                           "flops_per_sample_literal"})
# test metric -> (the per-window statistic in runs/<exp>/windows.npz, how the cell follows from its mean)
WINDOW_STATS = {"test_mse": ("mse", "identity"), "test_rmse": ("mse", "sqrt"), "test_mae": ("mae", "identity"),
                "test_ssim": ("ssim", "identity"), "test_psnr": ("psnr", "identity"),
                "test_lpips": ("lpips", "identity")}


def claim_verdicts(tables: Mapping[int, pd.DataFrame], records: Mapping[str, ExperimentResult],
                   paper: Mapping[int, PaperTable], *, profile: str,
                   experiment_datasets: Mapping[str, str] | None = None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """One row per testable claim (:data:`COLUMNS`), tables in order, claims in paper.yaml's order."""
    cells = _Cells(records)
    keys = {n: [k for k in (_cell_key(r, records) for r in df.to_dict("records")) if k is not None]
            for n, df in tables.items() if paper[n].claims}
    pool = seed_pool([c for ks in keys.values() for k in ks if (c := cells.get(k)) is not None])
    rows = []
    for number, table_keys in keys.items():
        table = paper[number]
        checks = [c for c in evaluate(table.claims, tables[number]) if c.values]
        used = [c for k in dict.fromkeys(table_keys) if (c := cells.get(k)) is not None]

        def theta(values: Mapping[tuple[str, str], float], number: int = number, table: PaperTable = table):
            moved: dict[str, dict[str, float]] = {}
            for (exp, metric), v in values.items():
                moved.setdefault(exp, {})[metric] = v
            recs = {e: replace(r, metrics=r.metrics | moved[e]) if e in moved else r for e, r in records.items()}
            df = build_table(number, recs, profile=profile, paper=paper, experiment_datasets=experiment_datasets)
            return [c.values["ours"] for c in evaluate(table.claims, df) if c.values]

        for check, iv in zip(checks, claim_intervals(theta, used, pool=pool, n_boot=n_boot, seed=number)):
            if iv is None:
                continue  # a cell it reads has no run yet
            sign = 1.0 if check.direction == "higher" else -1.0
            low, high = sorted((sign * iv.low, sign * iv.high))
            rows.append({"table": number, "claim": check.claim, "effect": sign * iv.estimate, "ci_low": low,
                         "ci_high": high, "unit": check.unit.strip(), "p_value": iv.p_value, "n_seeds": iv.n_seeds,
                         "n_windows": iv.n_windows, "method": iv.method, "verdict": verdict(low, high),
                         "paper_effect": _paper_effect(check, sign), "paper_version": table.version,
                         "software": _software(records, table)})
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    return {v: int((claims["verdict"] == v).sum()) for v in VERDICTS}


def _paper_effect(check: Check, sign: float) -> float | None:
    v = check.values.get("paper")
    return None if v is None or not math.isfinite(v) else sign * v


def _software(records: Mapping[str, ExperimentResult], table: PaperTable) -> str:
    """The library versions behind a table's runs (one line; several where runs differ)."""
    found = []
    for exp in table.experiments():
        rec = records.get(exp)
        if rec is not None and rec.software:
            text = software_text(rec)
            if text not in found:
                found.append(text)
    return "; ".join(found)


def _cell_key(cell: Mapping, records: Mapping[str, ExperimentResult]) -> tuple[str, str] | None:
    """(experiment, the record's metric) behind a measured cell; None for other cells or no run."""
    rec = records.get(cell["experiment"]) if cell["kind"] == "measured" else None
    if rec is None:
        return None
    for name in str(cell["metric"]).split("/"):
        if rec.metrics.get(name) is not None:
            return rec.experiment, name
    return None


class _Cells:
    """Each (experiment, metric)'s :class:`Cell`, built once (a run's windows.npz is read once)."""

    def __init__(self, records: Mapping[str, ExperimentResult]):
        self.records = records
        self._cells: dict[tuple[str, str], Cell | None] = {}
        self._windows: dict[str, dict] = {}

    def get(self, key: tuple[str, str]) -> Cell | None:
        if key not in self._cells:
            self._cells[key] = self._build(*key)
        return self._cells[key]

    def _build(self, exp: str, metric: str) -> Cell | None:
        rec = self.records[exp]
        seeds = [m.get(metric) for m in rec.seed_metrics] or [rec.metrics.get(metric)]
        if any(v is None or not math.isfinite(v) for v in seeds):
            return None
        return Cell((exp, metric), rec.dataset, np.asarray(seeds, dtype=float), windows=self._per_window(rec, metric),
                    transform=WINDOW_STATS.get(metric, ("", "identity"))[1], exact=metric in EXACT_METRICS)

    def _per_window(self, rec: ExperimentResult, metric: str) -> np.ndarray | None:
        """(seeds, windows): the metric's statistic per test window (mean over leads); None without."""
        if metric not in WINDOW_STATS or metric in EXACT_METRICS:
            return None
        if rec.experiment not in self._windows:
            self._windows[rec.experiment] = rec.windows()
        per_seed = self._windows[rec.experiment]
        stat = WINDOW_STATS[metric][0]
        seeds = [s for s in rec.seeds if s is not None]
        if not seeds or any(stat not in per_seed.get(s, {}) for s in seeds):
            return None
        return np.stack([np.asarray(per_seed[s][stat], dtype=np.float64).mean(axis=1) for s in seeds])


__all__ = ["COLUMNS", "EXACT_METRICS", "WINDOW_STATS", "claim_verdicts", "verdict_counts"]
