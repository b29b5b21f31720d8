"""reports/README.md: every table as markdown beside the paper, each with a reading of the numbers.

A reading checks the directions the paper claims (does SVQ lower MSE vs SimVP? does noise hurt
less with SVQ?) on our numbers and on the paper's, and counts where they agree. Directions are
what a sample-profile run can speak to; its values are not comparable with the paper's. The claims
are data in paper.yaml, checked by :mod:`pipeline.report.claims`; this module only writes them out.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from pipeline.report.beats import summary_line
from pipeline.report.claims import SIDES, Check, cell_number, evaluate, seed_spreads
from pipeline.report.paper import PaperTable, load_paper
from pipeline.report.tables import fmt_number


# --------------------------------------------------------------------------------------------
def render_table(df: pd.DataFrame, table: PaperTable) -> str:
    """Markdown of one table: a grid per section, cells 'ours / paper (relative difference)'."""
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
            texts = [_cell_text(cells.get((row.label, c.key))) for c in section.columns]
            lines.append("| " + " | ".join([label] + texts) + " |")
        refs = sub[sub["kind"] == "reference"]
        for label in dict.fromkeys(refs["row"]):
            texts = [_cell_text(cells.get((label, c.key))) for c in section.columns]
            lines.append("| " + " | ".join([f"{label} ◇"] + texts) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell_text(cell: Mapping | None) -> str:
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
    rel = cell_number(cell["rel_diff_pct"])
    if rel is not None:
        text += f" ({rel:+.1f}%)"
    return text + _beats_mark(cell)


def _beats_mark(cell: Mapping) -> str:
    """⚠P / ⚠C after a cell whose run does not beat persistence / climatology on test MSE."""
    marks = [m for col, m in (("beats_persistence", "P"), ("beats_climatology", "C"))
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
    lines = ["| Run | Dataset | Test MSE | Persistence MSE | Climatology MSE | Beats persistence | Beats climatology |",
             "|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        marks = ["–" if v is None or pd.isna(v) else ("✓" if v else "✗")
                 for v in (r["beats_persistence"], r["beats_climatology"])]
        mse = [fmt_number(cell_number(r[k])) for k in ("test_mse", "persistence_mse", "climatology_mse")]
        lines.append(f"| `{r['experiment']}` | {r['dataset']} | {' | '.join(mse)} | {marks[0]} | {marks[1]} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
def reading(number: int, df: pd.DataFrame, table: PaperTable | None = None) -> str:
    """One line: how many of the paper's directions our numbers reproduce, and each check.
    ``table``: the paper's table ``number`` (default: from paper.yaml), whose claims are checked."""
    if df["ours"].notna().sum() == 0:
        return "Reading: no runs of this table yet."
    checks = evaluate(_paper_table(number, table).claims, df)
    counted = [c for c in checks if c.counted]
    judged = [c for c in counted if c.agrees() is not None]
    agree = sum(bool(c.agrees()) for c in judged)
    # a check we cannot judge yet only counts as pending: listing it would drown the measured ones
    shown = [_check_text(c) for c in checks if c.show and (not c.values or c.verdict("ours") is not None)]
    pending = len(counted) - len(judged)
    if not judged:
        return f"Reading: none of the paper's {pending} directions checked here is measurable with the runs so far."
    head = f"Reading: our numbers agree with the paper's direction in {agree} of {len(judged)} checks"
    if pending:
        head += f" ({pending} not measurable yet)"
    return head + (" — " + "; ".join(shown) if shown else "") + "."


def _check_text(check: Check) -> str:
    if not check.values:
        return check.claim
    parts = []
    for side in SIDES:
        verdict = check.verdict(side)
        if verdict is None:
            parts.append(f"{side} n/a")
        else:
            parts.append(f"{side} {'yes' if verdict else 'no'} ({_signed(check.values[side], check.unit)})")
    return f"{check.claim}: {', '.join(parts)}"


def seed_spread(number: int, df: pd.DataFrame, table: PaperTable | None = None) -> str | None:
    """Whether each seeded difference of a table exceeds the seed spread: |a - b| against
    std(a) + std(b) (population std over the seeds of each cell)."""
    parts = []
    for s in seed_spreads(_paper_table(number, table).seed_spread, df):
        ma, mb = s.base_mean, s.target_mean
        verdict = "exceeds" if s.exceeds else "is within"
        parts.append(f"{s.label}: {fmt_number(mb)} vs {fmt_number(ma)} MSE, difference {'+' if mb >= ma else '-'}"
                     f"{fmt_number(abs(mb - ma))} {verdict} the spread {fmt_number(s.spread)} ({s.n_seeds} seeds)")
    if not parts:
        return None
    return "Seed spread (difference vs std a + std b): " + "; ".join(parts) + "."


def _paper_table(number: int, table: PaperTable | None) -> PaperTable:
    if table is not None:
        return table
    return load_paper().get(number) or PaperTable(number, "", ())


# --------------------------------------------------------------------------------------------
SAMPLE_CAVEAT = ("On the `sample` profile the data are generated twins of the datasets and the models "
                 "are tiny and trained for a few epochs: the values are NOT comparable with the paper's. "
                 "Read the directions (does SVQ lower the error? does noise hurt less with SVQ?), not the values.")


def render_readme(tables: Mapping[int, pd.DataFrame], *, profile: str,
                  figures: Mapping[str, str] | None = None, missing: Sequence[str] = (),
                  n_experiments: int = 0, paper: Mapping[int, PaperTable] | None = None,
                  table_links: Mapping[int, str] | None = None, beats: pd.DataFrame | None = None,
                  beats_link: str | None = None, notes: Sequence[str] = ()) -> str:
    """The whole report. ``figures``: caption -> link (relative to the README); ``missing``:
    catalogue experiments without a finished run; ``table_links``: table -> CSV link; ``beats``:
    :func:`pipeline.report.beats.beats_table` (its CSV at ``beats_link``); ``notes``: lines
    about individual runs (a padded grid)."""
    paper = paper if paper is not None else load_paper()
    out = [
        "# SVQ reproduction: the paper's tables from our runs",
        "",
        f"Profile: **{profile}**. Built from the committed run records (runs/) of {n_experiments} experiment(s) "
        "(`python stages/report.py`); every table is also a CSV with one row per cell.",
        "",
    ]
    if profile != "paper":
        out += [f"> {SAMPLE_CAVEAT}", ""]
    out += [
        "Cells read **ours / paper (relative difference of ours from the paper)**; ours is the mean "
        "over seeds, \"mean ± std\" with several seeds (a difference smaller than the std is within "
        "seed noise); – marks a value not measured (yet). "
        "† rows are the paper's baselines copied from OpenSTL, not re-run. *Italic* rows are "
        "recomputed from the rows above: ours / the paper's printed value, and in [brackets] the same "
        "formula applied to the paper's own numbers where it does not give the printed value. "
        "◇ rows are reference forecasts computed on the same test windows (no training): persistence "
        "(the last input frame repeated; copy last frame on video) and the training split's per-pixel "
        "climatology. ⚠P / ⚠C after a cell: that run's test MSE does not beat persistence / "
        "climatology.",
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
        out += [reading(number, df, table), ""]
        spread = seed_spread(number, df, table)
        if spread:
            out += [spread, ""]
        out += [f"_Note: {note}_" for note in table.notes]
        if table.notes:
            out += [""]
        out += [render_table(df, table)]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["render_table", "render_beats", "reading", "seed_spread", "render_readme"]
