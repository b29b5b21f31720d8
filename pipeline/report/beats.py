"""Reference forecasts in the report: their records, and whether each trained run beats them.

The reference stages (``pipeline/training/reference_forecasts.py``) write ``runs/reference_<ds>/result.json``; the
report reads only those committed files. A trained run *beats* a reference when its test MSE is
strictly below the reference's on the same test windows. "Climatology" means the best of the
climatologies a dataset has (all-hours and, for hourly weather, by hour of day), so beating it is
beating every one of them. ``leads_lost`` names, per reference, the leads where the run does not
beat it (from the run's own record, ``pipeline.training.reference_comparison``).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.paths import reference_dir
from pipeline.report.results import ExperimentResult
from pipeline.training.record_files import RESULT, read_reference

log = logging.getLogger(__name__)

CLIMATOLOGIES = ("climatology", "climatology_hour")
LIST_AT_MOST = 8  # runs named in the summary line; the table lists all
COMPARED = ("persistence", "input_mean", "climatology")  # the report's columns, in this order
BEATS_COLUMNS = ["experiment", "dataset", "tables", "n_seeds", "test_mse",
                 *(f"{r}_mse" for r in COMPARED), *(f"beats_{r}" for r in COMPARED), "leads_lost"]


def read_references(datasets: Iterable[str], profile: str, runs_dir: Path | str) -> dict[str, dict[str, Any]]:
    """``runs/reference_<ds>/result.json`` of every dataset that has one, computed under ``profile``:
    dataset -> ``{reference: {"label", "run_id", "metrics"}}``."""
    out = {}
    for ds in datasets:
        ref_dir = reference_dir(ds, Path(runs_dir))
        record = read_reference(ref_dir)
        if record is None:
            continue
        if record.get("profile") != profile:
            log.warning("%s: computed under profile %r, the report is for %r: left out",
                        ref_dir / RESULT, record.get("profile"), profile)
            continue
        out[ds] = record["references"]
    return out


def reference_mse(refs: Mapping[str, Any] | None) -> dict[str, float | None]:
    """``{persistence, input_mean, climatology}`` -> test MSE of one dataset's references (the best
    climatology's); None where absent."""
    def mse(name):
        v = ((refs or {}).get(name) or {}).get("metrics", {}).get("test_mse")
        return float(v) if v is not None and math.isfinite(v) else None

    clim = [v for v in (mse(c) for c in CLIMATOLOGIES) if v is not None]
    return {"persistence": mse("persistence"), "input_mean": mse("input_mean"),
            "climatology": min(clim) if clim else None}


def beats(mse: float | None, reference: float | None) -> bool | None:
    """Whether ``mse`` is strictly below ``reference``; None when either is unknown."""
    if mse is None or reference is None or not math.isfinite(mse):
        return None
    return mse < reference


def beats_table(records: Mapping[str, ExperimentResult], references: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per trained run: its test MSE, the references' and whether it beats each."""
    rows = []
    for name, rec in records.items():
        mse = rec.metrics.get("test_mse")
        mse = float(mse) if mse is not None and math.isfinite(mse) else None
        ref = reference_mse(references.get(rec.dataset))
        rows.append({"experiment": name, "dataset": rec.dataset, "tables": ",".join(str(t) for t in rec.tables),
                     "n_seeds": rec.n_seeds, "test_mse": mse, **{f"{r}_mse": ref[r] for r in COMPARED},
                     **{f"beats_{r}": beats(mse, ref[r]) for r in COMPARED}, "leads_lost": leads_lost(rec)})
    df = pd.DataFrame(rows, columns=BEATS_COLUMNS)
    for r in COMPARED:
        df[f"beats_{r}"] = df[f"beats_{r}"].astype("boolean")
    return df


def leads_lost(rec: ExperimentResult) -> str:
    """``input mean: 1-2 of 4; persistence: 1 of 4``: the leads where the run does not beat a reference
    it beats on the whole split (a loss overall is the beats columns' to say); "" when none."""
    parts = []
    for name, c in sorted(rec.references.items()):
        lost, skill = c.get("leads_lost") or [], c.get("skill_mse")
        if lost and skill is not None and skill > 0:
            parts.append(f"{name.replace('_', ' ')}: {','.join(map(str, lost))} of {c.get('leads', '?')}")
    return "; ".join(parts)


def summary_line(df: pd.DataFrame) -> str:
    """"k of n trained runs beat persistence; m of n beat climatology" (n: runs that could be judged)."""
    parts = []
    for col, what in ((f"beats_{r}", r.replace("_", " ")) for r in COMPARED):
        judged = df[col].dropna()
        if len(judged):
            parts.append(f"{int(judged.sum())} of {len(judged)} trained runs beat {what} on test MSE")
    if not parts:
        return "No trained run could be compared with a reference forecast yet."
    failing = df.loc[df["beats_persistence"].fillna(True) == False, "experiment"].tolist()  # noqa: E712
    text = "; ".join(parts) + "."
    if failing:
        shown = ", ".join(f"`{e}`" for e in failing[:LIST_AT_MOST])
        more = f" and {len(failing) - LIST_AT_MOST} more (table below)" if len(failing) > LIST_AT_MOST else ""
        text += f" Not beating persistence: {shown}{more}."
    return text


__all__ = ["BEATS_COLUMNS", "COMPARED", "read_references", "reference_mse", "beats", "beats_table", "leads_lost",
           "summary_line"]
