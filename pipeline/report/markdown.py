"""reports/README.md: every table as markdown beside the paper, each with a reading of the numbers.

A reading lists the claims the paper makes with the table (does SVQ lower MSE vs SimVP? does noise
hurt less with SVQ?), each tested on our runs with a 95 % interval and a verdict
(:mod:`pipeline.report.verdicts`, ``claims.csv``), beside the paper's own effect. The claims are
data in paper.yaml; this module only writes them out.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from pipeline.report.beats import summary_line
from pipeline.report.claims import cell_number
from pipeline.report.paper import PaperTable, load_paper
from pipeline.report.tables import fmt_number
from pipeline.report.verdicts import verdict_counts


# --------------------------------------------------------------------------------------------
def render_table(df: pd.DataFrame, table: PaperTable, *, relative: bool = True) -> str:
    """Markdown of one table: a grid per section, cells 'ours / paper (relative difference)'; the
    difference only where ``relative`` (the paper profile: on the twins it means nothing)."""
    lines = []
    for section in table.sections:
        sub = df[df["section"] == section.name]
        if section.name:
            lines.append(f"**{section.name}**\n")
        header = ["Model"] + [f"{c.title} {'↓' if c.better == 'lower' else '↑'}" for c in section.columns]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        cells = {(r, c): cell for r, c, cell in zip(sub["row"], sub["column"], sub.to_dict("records"))}
        for row in section.rows:
            label = row.label + (" †" if row.kind == "reported" else "")
            if row.kind == "derived":
                label = f"*{label}*"
            texts = [_cell_text(cells.get((row.label, c.key)), relative) for c in section.columns]
            lines.append("| " + " | ".join([label] + texts) + " |")
        refs = sub[sub["kind"] == "reference"]
        for label in dict.fromkeys(refs["row"]):
            texts = [_cell_text(cells.get((label, c.key))) for c in section.columns]
            lines.append("| " + " | ".join([f"{label} ◇"] + texts) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell_text(cell: Mapping | None, relative: bool = True) -> str:
    if cell is None:
        return ""
    paper, ours = cell_number(cell["paper"]), cell_number(cell["ours"])
    if cell["kind"] == "derived":
        recomputed = cell_number(cell["paper_recomputed"])
        if ours is None and paper is None and recomputed is None:
            return ""
        text = f"{_signed(ours)} / {_signed(paper) if paper is not None else '–'}"
        if recomputed is not None and (paper is None or abs(recomputed - paper) > 0.1):
            text += f" [{_signed(recomputed)}]"
        return text
    if cell["kind"] == "reported":
        return f"– / {fmt_number(paper)}" if paper is not None else ""
    if cell["kind"] == "reference":
        return cell["ours_text"]
    text = f"{cell['ours_text'] or '–'} / {fmt_number(paper) if paper is not None else '–'}"
    rel = cell_number(cell["rel_diff_pct"]) if relative else None
    if rel is not None:
        text += f" ({rel:+.1f}%)"
    return text + _beats_mark(cell)


def _beats_mark(cell: Mapping) -> str:
    """⚠P / ⚠I / ⚠C after a cell whose run does not beat persistence / the input mean / climatology on test MSE."""
    marks = [m for col, m in (("beats_persistence", "P"), ("beats_input_mean", "I"), ("beats_climatology", "C"))
             if cell.get(col) is not None and not pd.isna(cell.get(col)) and not bool(cell[col])]
    return f" ⚠{''.join(marks)}" if marks else ""


def _signed(v: float | None, unit: str = "%") -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:+.1f}{unit}"


def render_beats(df: pd.DataFrame) -> str:
    """Markdown of the per-run comparison with the references (✓ beats, ✗ does not, – unknown)."""
    if df.empty:
        return ""
    lines = ["| Run | Dataset | Test MSE | Persistence MSE | Input mean MSE | Climatology MSE | Beats persistence "
             "| Beats input mean | Beats climatology | Leads lost |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        marks = ["–" if v is None or pd.isna(v) else ("✓" if v else "✗")
                 for v in (r["beats_persistence"], r["beats_input_mean"], r["beats_climatology"])]
        mse = [fmt_number(cell_number(r[k])) for k in ("test_mse", "persistence_mse", "input_mean_mse", "climatology_mse")]
        lines.append(f"| `{r['experiment']}` | {r['dataset']} | {' | '.join(mse)} | {' | '.join(marks)} "
                     f"| {r['leads_lost'] or '–'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
def reading(number: int, df: pd.DataFrame, claims: pd.DataFrame | None = None) -> str:
    """The table's claims as tested on our runs (``claims``: :func:`pipeline.report.verdicts.claim_verdicts`'s
    rows, any tables): the verdict counts, then each claim with its effect, interval and the paper's."""
    if df["ours"].notna().sum() == 0:
        return "Reading: no runs of this table yet."
    mine = claims[claims["table"] == number] if claims is not None and len(claims) else None
    if mine is None or mine.empty:
        return "Reading: none of the paper's claims for this table is measurable with the runs so far."
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(mine).items() if n)
    return (f"Reading: {len(mine)} of the paper's claims tested (effect > 0 is the paper's direction; 95 % "
            f"interval): {counts} — " + "; ".join(_claim_text(r) for r in mine.to_dict("records")) + ".")


def _claim_text(row: Mapping) -> str:
    unit = "%" if row["unit"] == "%" else (f" {row['unit']}" if row["unit"] else "")
    effect = _signed(row["effect"], unit)
    low, high = cell_number(row["ci_low"]), cell_number(row["ci_high"])
    interval = f" [{_signed(low, '')}, {_signed(high, '')}]" if low is not None and high is not None else " (no interval)"
    paper = cell_number(row["paper_effect"])
    theirs = f", paper {_signed(paper, unit)}" if paper is not None else ""
    return f"{row['claim']}: **{row['verdict']}** {effect}{interval}{theirs}"


def verdict_line(claims: pd.DataFrame | None, link: str | None = None) -> str | None:
    """The report's opening count of verdicts over every tested claim."""
    if claims is None or claims.empty:
        return None
    counts = verdict_counts(claims)
    text = (f"**The paper's claims on these runs:** {len(claims)} tested: {counts['holds']} hold, "
            f"{counts['reversed']} reversed, {counts['inconclusive']} inconclusive (95 % intervals over "
            "training seeds and serially correlated test windows, paired between runs on the same windows")
    return text + (f"; [{link}]({link})" if link else "") + ")."


def _paper_table(number: int, table: PaperTable | None) -> PaperTable:
    if table is not None:
        return table
    return load_paper().get(number) or PaperTable(number, "", ())


# --------------------------------------------------------------------------------------------
SAMPLE_CAVEAT = ("On the `sample` profile the data are generated twins of the datasets and the models "
                 "are tiny and trained for a few epochs: the values are NOT comparable with the paper's, so "
                 "cells carry no relative difference. Read the claims' verdicts (does SVQ lower the error "
                 "beyond the noise of seeds and test windows?), not the values.")


def render_readme(tables: Mapping[int, pd.DataFrame], *, profile: str,
                  figures: Mapping[str, str] | None = None, missing: Sequence[str] = (),
                  n_experiments: int = 0, paper: Mapping[int, PaperTable] | None = None,
                  table_links: Mapping[int, str] | None = None, beats: pd.DataFrame | None = None,
                  beats_link: str | None = None, notes: Sequence[str] = (), claims: pd.DataFrame | None = None,
                  claims_link: str | None = None) -> str:
    """The whole report. ``figures``: caption -> link (relative to the README); ``missing``:
    catalogue experiments without a finished run; ``table_links``: table -> CSV link; ``beats``:
    :func:`pipeline.report.beats.beats_table` (its CSV at ``beats_link``); ``notes``: lines
    about individual runs (a padded grid); ``claims``: the tested claims (its CSV at ``claims_link``)."""
    paper = paper if paper is not None else load_paper()
    out = [
        "# SVQ reproduction: the paper's tables from our runs",
        "",
        f"Profile: **{profile}**. Built from the committed run records (runs/) of {n_experiments} experiment(s) "
        "(`python stages/report.py`); every table is also a CSV with one row per cell.",
        "",
    ]
    versions = sorted({t.version for t in paper.values() if t.version})
    if versions:
        out += [f"The paper's values: {'; '.join(versions)}.", ""]
    opening = verdict_line(claims, claims_link)
    if opening:
        out += [opening, ""]
    if profile != "paper":
        out += [f"> {SAMPLE_CAVEAT}", ""]
    cells = ("**ours / paper (relative difference of ours from the paper)**" if profile == "paper"
             else "**ours / paper**")
    out += [
        f"Cells read {cells}; ours is the mean over seeds, \"mean ± std\" with several seeds; – marks "
        "a value not measured (yet). "
        "† rows are the paper's baselines copied from OpenSTL, not re-run. *Italic* rows are "
        "recomputed from the rows above: ours / the paper's printed value, and in [brackets] the same "
        "formula applied to the paper's own numbers where it does not give the printed value. "
        "◇ rows are reference forecasts computed on the same test windows (no training): persistence "
        "(the last input frame repeated; copy last frame on video), the input mean (the mean of the input "
        "frames repeated) and the training split's per-pixel climatology. ⚠P / ⚠I / ⚠C after a cell: "
        "that run's test MSE does not beat persistence / the input mean / climatology.",
        "",
    ]
    if beats is not None:
        out += ["## Trained runs vs reference forecasts", "", summary_line(beats), ""]
        if beats_link:
            out += [f"CSV: [{beats_link}]({beats_link})", ""]
        out += [render_beats(beats), ""]
    if missing:
        out += [f"Not run yet ({len(missing)}): " + ", ".join(f"`{m}`" for m in missing), ""]
    out += [line for note in notes for line in (f"- {note}", "")]
    if figures:
        out += ["## Figures", ""]
        out += [f"- [{caption}]({link})" for caption, link in figures.items()]
        out += [""]
    for number, df in tables.items():
        table = paper[number]
        link = (table_links or {}).get(number)
        out += [f"## Table {number}: {table.title}", ""]
        if link:
            out += [f"CSV: [{link}]({link})", ""]
        out += [reading(number, df, claims), ""]
        out += [f"_Note: {note}_" for note in table.notes]
        if table.notes:
            out += [""]
        out += [render_table(df, table, relative=profile == "paper")]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["render_table", "render_beats", "reading", "verdict_line", "render_readme"]
