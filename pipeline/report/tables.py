"""The paper's tables rebuilt from our runs, beside the paper's values.

Every builder returns a tidy DataFrame, one row per table cell (:data:`COLUMNS`): ours (mean over
seeds, std, "mean ± std" text), the paper's value and the relative difference. Cells of rows the
paper copied from OpenSTL (``kind == "reported"``) carry the paper's value only. Derived rows
(Improvement, Average improvement, % increase over η=0) are recomputed from OUR numbers and,
with the same formula, from the paper's (``paper_recomputed``), next to what the paper prints
(``paper``). A cell whose run is absent is empty (NaN), so partial catalogues still render.

Reference forecasts (``kind == "reference"``: persistence, the input mean, climatology;
copy-last-frame for video) are rows appended to every section whose columns they can fill, scored
on the same test windows; each measured cell says whether its run's test MSE beats them
(``beats_persistence``, ``beats_input_mean``, ``beats_climatology``; see :mod:`pipeline.report.beats`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.report.beats import beats, reference_mse
from pipeline.report.paper import Column, PaperTable, Row, Section, load_paper
from pipeline.report.results import ExperimentResult

COLUMNS = ["profile", "table", "section", "row", "kind", "experiment", "column", "column_title",
           "metric", "better", "ours", "ours_std", "n_seeds", "ours_text", "paper",
           "paper_recomputed", "rel_diff_pct", "beats_persistence", "beats_input_mean", "beats_climatology", "note",
           "paper_version", "software"]

Records = Mapping[str, ExperimentResult] | Iterable[ExperimentResult]
References = Mapping[str, Mapping[str, Mapping]]  # dataset -> reference -> {label, metrics}
REFERENCE_ORDER = ("persistence", "input_mean", "climatology", "climatology_hour")


def fmt_number(v: float | None, digits: int = 5) -> str:
    """Compact, fixed-width-ish number text; empty for a missing value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) >= 10 ** digits:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def ours_text(mean: float | None, std: float | None, n_seeds: int) -> str:
    """"mean" for one seed, "mean ± std" for several; empty when not measured."""
    text = fmt_number(mean)
    if text and n_seeds > 1 and std is not None and math.isfinite(std):
        text += f" ± {fmt_number(std, 2)}"
    return text


def relative_diff_pct(ours: float | None, ref: float | None) -> float | None:
    """(ours - ref) / |ref| in %."""
    if ours is None or ref is None or ref == 0 or not (math.isfinite(ours) and math.isfinite(ref)):
        return None
    return (ours - ref) / abs(ref) * 100.0


def improvement_pct(base: float | None, best_of: Iterable[float | None], better: str) -> float | None:
    """How much the best candidate improves on ``base``, in % of base; positive = better."""
    cands = [c for c in best_of if c is not None and math.isfinite(c)]
    if base is None or not cands or base == 0 or not math.isfinite(base):
        return None
    if better == "lower":
        return (base - min(cands)) / abs(base) * 100.0
    return (max(cands) - base) / abs(base) * 100.0


def increase_pct(base: float | None, target: float | None) -> float | None:
    """(target - base) / |base| in %."""
    return relative_diff_pct(target, base)


# --------------------------------------------------------------------------------------------
def build_table(number: int, records: Records, *, profile: str | None = None,
                paper: Mapping[int, PaperTable] | None = None, references: References | None = None,
                experiment_datasets: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Table ``number`` as a tidy frame of cells (see :data:`COLUMNS`), rows in the paper's order,
    then the reference forecasts' rows. ``references``: dataset -> its reference records;
    ``experiment_datasets``: experiment -> dataset (the catalogue's; else the records')."""
    paper = paper if paper is not None else load_paper()
    if number not in paper:
        raise KeyError(f"table {number}: not in the paper's reference values ({sorted(paper)})")
    recs = _by_experiment(records)
    profile = profile if profile is not None else _profile_of(recs)
    datasets = {e: r.dataset for e, r in recs.items()} | dict(experiment_datasets or {})
    cells: list[dict] = []
    for section in paper[number].sections:
        section_cells = _section_cells(number, section, recs, profile)
        for cell in section_cells:
            cell["paper_version"] = paper[number].version
        for cell in section_cells:
            rec = recs.get(cell["experiment"]) if cell["kind"] == "measured" else None
            if rec is not None and cell["ours"] is not None:
                ref = reference_mse((references or {}).get(rec.dataset))
                mse = rec.metrics.get("test_mse")
                cell.update({f"beats_{r}": beats(mse, v) for r, v in ref.items()})
        cells.extend(section_cells)
        cells.extend(_reference_cells(number, section, references or {}, datasets, profile))
    df = pd.DataFrame(cells, columns=COLUMNS)
    for col in ("ours", "ours_std", "paper", "paper_recomputed", "rel_diff_pct"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["n_seeds"] = df["n_seeds"].astype("Int64")
    for col in ("beats_persistence", "beats_input_mean", "beats_climatology"):
        df[col] = df[col].astype("boolean")
    return df


def _reference_cells(number: int, section: Section, references: References,
                     datasets: Mapping[str, str], profile: str) -> list[dict]:
    """One row per reference forecast of the datasets behind the section's columns; a row that
    fills no cell (e.g. parameter counts) is left out."""
    col_ds = {}
    for col in section.columns:
        if not col.measured:
            continue
        for row in section.rows:
            exp = row.experiments.get(col.source) if row.kind == "measured" else None
            if exp and datasets.get(exp) in references:
                col_ds[col.key] = datasets[exp]
                break
    cells = []
    for ref in REFERENCE_ORDER:
        have = [(col, references[col_ds[col.key]][ref]) for col in section.columns
                if col.key in col_ds and ref in references[col_ds[col.key]]]
        values = {col.key: _first_metric(entry["metrics"], col.metric) for col, entry in have}
        if not any(v is not None for v in values.values()):
            continue
        label = have[0][1].get("label") or ref
        for col in section.columns:
            cell = _cell(number, section, Row(label, {}, "reference"), col, profile)
            v = values.get(col.key)
            if v is not None:
                v *= col.scale
            cell.update(ours=v, ours_text=fmt_number(v), experiment=(
                f"reference_{col_ds[col.key]}" if col.key in col_ds else ""),
                note="reference forecast (no training) on the same test windows" if v is not None else "")
            cells.append(cell)
    return cells


def _first_metric(metrics: Mapping[str, float | None], names: Iterable[str]) -> float | None:
    for n in names:
        v = metrics.get(n)
        if v is not None and math.isfinite(v):
            return float(v)
    return None


def build_table1(records: Records, **kw) -> pd.DataFrame:
    """WeatherBench-S (t2m, r, uv10, tcc: <ds>_simvp / _svq_frozen / _svq) and WeatherBench-M.

    WB-M: the paper's per-variable cells keep the paper's numbers only; our single all-channel
    MSE/MAE sits in the 'All 12 channels' column against the mean of the paper's per-variable
    values (the all-channel per-pixel mean is exactly that mean: 3 levels per variable)."""
    return build_table(1, records, **kw)


def build_table2(records: Records, **kw) -> pd.DataFrame:
    """Human3.6M, KittiCaltech, KTH: MAE, SSIM, PSNR, LPIPS of SimVP and SimVP+SVQ."""
    return build_table(2, records, **kw)


def build_table3(records: Records, **kw) -> pd.DataFrame:
    """Twelve MetaFormer translators without / with SVQ; average improvement over translators."""
    return build_table(3, records, **kw)


def build_table4(records: Records, **kw) -> pd.DataFrame:
    """VQ comparators (lucidrains, SVQ-raw) and SVQ on t2m."""
    return build_table(4, records, **kw)


def build_table5(records: Records, **kw) -> pd.DataFrame:
    """Noise injection η = 0..50%, without / with SVQ, and the % increase over η=0."""
    return build_table(5, records, **kw)


def build_table6(records: Records, **kw) -> pd.DataFrame:
    """Codebook size x learnability, and the alternative SVQ structures."""
    return build_table(6, records, **kw)


def build_table7(records: Records, **kw) -> pd.DataFrame:
    """MSE / MAE loss, without / with SVQ."""
    return build_table(7, records, **kw)


def build_table8(records: Records, **kw) -> pd.DataFrame:
    """Codebook initialisation, frozen and learnable; kurtosis of the regression weights."""
    return build_table(8, records, **kw)


def build_table12(records: Records, **kw) -> pd.DataFrame:
    """Params (M) and FLOPS (G) of SimVP and SimVP+SVQ per dataset; ours FLOPS = MACs =
    flops_per_sample / 2, as the paper's fvcore counts; plus SVQ's overhead in %."""
    return build_table(12, records, **kw)


def build_table13(records: Records, **kw) -> pd.DataFrame:
    """Codebook 1024 for every method: MSE, perplexity (θ=3 / θ=2 for SVQ), FLOPS, FPS, time."""
    return build_table(13, records, **kw)


def build_table14(records: Records, **kw) -> pd.DataFrame:
    """TaxiBJ: MSE, MAE, SSIM, PSNR."""
    return build_table(14, records, **kw)


def build_table15(records: Records, **kw) -> pd.DataFrame:
    """Frozen modules: none, codebook, MLP projection, both (the paper's columns are our rows)."""
    return build_table(15, records, **kw)


TABLE_BUILDERS: dict[int, Callable[..., pd.DataFrame]] = {
    1: build_table1, 2: build_table2, 3: build_table3, 4: build_table4, 5: build_table5,
    6: build_table6, 7: build_table7, 8: build_table8, 12: build_table12, 13: build_table13,
    14: build_table14, 15: build_table15,
}


def build_all(records: Records, *, profile: str | None = None,
              paper: Mapping[int, PaperTable] | None = None, references: References | None = None,
              experiment_datasets: Mapping[str, str] | None = None) -> dict[int, pd.DataFrame]:
    paper = paper if paper is not None else load_paper()
    recs = _by_experiment(records)
    return {n: builder(recs, profile=profile, paper=paper, references=references,
                       experiment_datasets=experiment_datasets) for n, builder in TABLE_BUILDERS.items()}


# --------------------------------------------------------------------------------------------
def _by_experiment(records: Records) -> dict[str, ExperimentResult]:
    if isinstance(records, Mapping):
        return dict(records)
    return {r.experiment: r for r in records}


def _profile_of(recs: Mapping[str, ExperimentResult]) -> str:
    profiles = sorted({r.profile for r in recs.values()})
    return profiles[0] if len(profiles) == 1 else ",".join(profiles)


def _paper_value(row: Row, col: Column) -> tuple[float | None, bool]:
    """The paper's value of a cell and whether we computed it (paper_mean_of) rather than read it."""
    if col.paper_mean_of and row.kind != "derived":
        parts = [row.values.get(k) for k in col.paper_mean_of]
        if all(p is not None for p in parts):
            return float(np.mean(parts)), True
        return None, True
    return row.values.get(col.key), False


def _section_cells(number: int, section: Section, recs: Mapping[str, ExperimentResult], profile: str) -> list[dict]:
    ours: dict[tuple[str, str], float | None] = {}
    theirs: dict[tuple[str, str], float | None] = {}
    cells = []
    for row in section.rows:
        if row.kind == "derived":
            continue
        for col in section.columns:
            paper_v, computed = _paper_value(row, col)
            theirs[row.label, col.key] = paper_v
            cell = _cell(number, section, row, col, profile)
            cell["paper"] = paper_v
            notes = [col.note] if computed or row.kind == "measured" else []
            if row.kind == "measured":
                exp = row.experiments.get(col.source) if col.measured else None
                cell["experiment"] = exp or ""
                rec = recs.get(exp) if exp else None
                mean, std = rec.metric(*col.metric) if rec is not None else (None, None)
                if mean is not None:
                    mean *= col.scale
                    std = None if std is None else std * abs(col.scale)
                ours[row.label, col.key] = mean
                n = rec.n_seeds if rec is not None and mean is not None else None
                cell.update(ours=mean, ours_std=std, n_seeds=n, ours_text=ours_text(mean, std, n or 0),
                            rel_diff_pct=relative_diff_pct(mean, paper_v), software=software_text(rec))
                if exp is None:
                    notes.append("no run measures this column")
                elif rec is None:
                    notes.append(f"{exp}: not run")
                elif mean is None:
                    notes.append(f"{exp}: no {'/'.join(col.metric)} metric")
            notes.append(row.note)
            cell["note"] = "; ".join(n for n in notes if n)
            cells.append(cell)
    for row in section.rows:
        if row.kind != "derived":
            continue
        for col in section.columns:
            mine, recomputed, detail = _derived(section, row, col, ours, theirs)
            cell = _cell(number, section, row, col, profile)
            cell.update(ours=mine, paper=row.values.get(col.key), paper_recomputed=recomputed,
                        ours_text="" if mine is None else f"{mine:+.1f}%", note="; ".join(
                            n for n in (detail, row.note) if n))
            cells.append(cell)
    # keep the paper's row order (derived rows were deferred only to see every row first)
    order = {r.label: i for i, r in enumerate(section.rows)}
    cells.sort(key=lambda c: order[c["row"]])
    return cells


def _cell(number: int, section: Section, row: Row, col: Column, profile: str) -> dict:
    return {"profile": profile, "table": number, "section": section.name, "row": row.label,
            "kind": row.kind, "experiment": "", "column": col.key, "column_title": col.title,
            "metric": "/".join(col.metric), "better": col.better, "ours": None, "ours_std": None,
            "n_seeds": None, "ours_text": "", "paper": None, "paper_recomputed": None,
            "rel_diff_pct": None, "beats_persistence": None, "beats_input_mean": None, "beats_climatology": None,
            "note": "",
            "paper_version": "", "software": ""}


def software_text(rec: ExperimentResult | None) -> str:
    """The library versions a run was made with, e.g. ``python 3.11.2, torch 2.13.0+cpu, ...``."""
    return ", ".join(f"{k} {v}" for k, v in sorted((rec.software if rec else {}).items()) if v)


def _derived(section: Section, row: Row, col: Column, ours, theirs) -> tuple[float | None, float | None, str]:
    """(ours, paper recomputed, note) of a derived cell; both use the same formula."""
    a = row.args
    if row.derived == "improvement":
        def f(vals):
            return improvement_pct(vals.get((a["baseline"], col.key)),
                                   [vals.get((c, col.key)) for c in a["candidates"]], col.better)
        return f(ours), f(theirs), f"best of {', '.join(a['candidates'])} vs {a['baseline']}"
    if row.derived == "increase":
        def f(vals):
            return increase_pct(vals.get((a["base"], col.key)), vals.get((a["target"], col.key)))
        return f(ours), f(theirs), f"{a['target']} vs {a['base']}"
    # average_improvement: only the "with" columns of the pairs carry a value
    without = a["pairs"].get(col.key)
    if without is None:
        return None, None, ""
    rows = [r.label for r in section.rows if r.kind != "derived"]

    def f(vals):
        per_row = [improvement_pct(vals.get((r, without)), [vals.get((r, col.key))], col.better) for r in rows]
        per_row = [p for p in per_row if p is not None]
        return (float(np.mean(per_row)) if per_row else None), len(per_row)

    mine, n_mine = f(ours)
    recomputed, _ = f(theirs)
    return mine, recomputed, f"mean of per-row improvements over {n_mine} of {len(rows)} rows (ours)"


__all__ = ["COLUMNS", "TABLE_BUILDERS", "build_table", "build_all", "fmt_number", "ours_text",
           "relative_diff_pct", "improvement_pct", "increase_pct", "software_text"] + [
    f"build_table{n}" for n in TABLE_BUILDERS]
