"""reports/README.md: every table as markdown beside the paper, each with a reading of the numbers.

A reading checks the directions the paper claims (does SVQ lower MSE vs SimVP? does noise hurt
less with SVQ?) on our numbers and on the paper's, and counts where they agree. Directions are
what a sample-profile run can speak to; its values are not comparable with the paper's.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.report.paper import PaperTable, load_paper
from pipeline.report.references import summary_line
from pipeline.report.tables import fmt_number

SIDES = ("ours", "paper")


@dataclass(frozen=True)
class Check:
    """One claimed direction: ``values[side]`` is a signed quantity (a % change, mostly) and the
    claim holds for a value when ``holds(value)``."""

    claim: str
    values: dict[str, float | None]
    holds: Callable[[float], bool]
    unit: str = "%"
    show: bool = True      # listed in the reading line
    counted: bool = True   # counted in "agree in k of n"; False for a summary line

    def verdict(self, side: str) -> bool | None:
        v = self.values.get(side)
        return None if v is None or not math.isfinite(v) else bool(self.holds(v))

    def agrees(self) -> bool | None:
        ours, paper = self.verdict("ours"), self.verdict("paper")
        return None if ours is None or paper is None else ours == paper

    def text(self) -> str:
        if not self.values:
            return self.claim
        parts = []
        for side in SIDES:
            verdict = self.verdict(side)
            if verdict is None:
                parts.append(f"{side} n/a")
            else:
                parts.append(f"{side} {'yes' if verdict else 'no'} ({_signed(self.values[side], self.unit)})")
        return f"{self.claim}: {', '.join(parts)}"


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
    paper, ours = _num(cell["paper"]), _num(cell["ours"])
    if cell["kind"] == "derived":
        recomputed = _num(cell["paper_recomputed"])
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
    rel = _num(cell["rel_diff_pct"])
    if rel is not None:
        text += f" ({rel:+.1f}%)"
    return text + _beats_mark(cell)


def _beats_mark(cell: Mapping) -> str:
    """⚠P / ⚠C after a cell whose run does not beat persistence / climatology on test MSE."""
    marks = [m for col, m in (("beats_persistence", "P"), ("beats_climatology", "C"))
             if cell.get(col) is not None and not pd.isna(cell.get(col)) and not bool(cell[col])]
    return f" ⚠{''.join(marks)}" if marks else ""


def _num(v) -> float | None:
    if v is None or pd.isna(v):
        return None
    return float(v)


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
        lines.append(f"| `{r['experiment']}` | {r['dataset']} | {fmt_number(_num(r['test_mse']))} | "
                     f"{fmt_number(_num(r['persistence_mse']))} | {fmt_number(_num(r['climatology_mse']))} | "
                     f"{marks[0]} | {marks[1]} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
def reading(number: int, df: pd.DataFrame) -> str:
    """One line: how many of the paper's directions our numbers reproduce, and each check."""
    checks = READINGS[number](df) if number in READINGS else []
    if df["ours"].notna().sum() == 0:
        return "Reading: no runs of this table yet."
    counted = [c for c in checks if c.counted]
    judged = [c for c in counted if c.agrees() is not None]
    agree = sum(bool(c.agrees()) for c in judged)
    # a check we cannot judge yet only counts as pending: listing it would drown the measured ones
    shown = [c.text() for c in checks if c.show and (not c.values or c.verdict("ours") is not None)]
    pending = len(counted) - len(judged)
    if not judged:
        return f"Reading: none of the paper's {pending} directions checked here is measurable with the runs so far."
    head = f"Reading: our numbers agree with the paper's direction in {agree} of {len(judged)} checks"
    if pending:
        head += f" ({pending} not measurable yet)"
    return head + (" — " + "; ".join(shown) if shown else "") + "."


# The seeded comparisons (catalogue experiments with their own `seeds`): (row a, column a, row b,
# column b, what the difference means), read against the seed spread of both cells.
_T1 = ("SimVP (w/o VQ)", "SimVP+SVQ (Frozen)", "SimVP+SVQ (Learnable)")
SPREAD_PAIRS: dict[int, list[tuple[str, str, str, str, str]]] = {
    1: [(_T1[0], "t2m_mse", _T1[2], "t2m_mse", "t2m: SVQ learnable vs SimVP"),
        (_T1[0], "t2m_mse", _T1[1], "t2m_mse", "t2m: SVQ frozen vs SimVP"),
        (_T1[1], "t2m_mse", _T1[2], "t2m_mse", "t2m: learnable vs frozen codebook")],
    5: [(f"η={e}", "mse_wo", f"η={e}", "mse_w", f"η={e}: SVQ vs SimVP")
        for e in ("0", "10%", "20%", "30%", "40%", "50%")]
       + [("η=0", c, "η=50%", c, f"noise curve {who}: η=50% vs η=0")
          for c, who in (("mse_wo", "SimVP"), ("mse_w", "SVQ"))],
}


def seed_spread(number: int, df: pd.DataFrame) -> str | None:
    """Whether each seeded difference of a table exceeds the seed spread: |a - b| against
    std(a) + std(b) (population std over the seeds of each cell)."""
    parts = []
    for row_a, col_a, row_b, col_b, what in SPREAD_PAIRS.get(number, []):
        a, b = _seeded(df, row_a, col_a), _seeded(df, row_b, col_b)
        if a is None or b is None:
            continue
        (ma, sa, na), (mb, sb, nb) = a, b
        spread = sa + sb
        verdict = "exceeds" if abs(mb - ma) > spread else "is within"
        parts.append(f"{what}: {fmt_number(mb)} vs {fmt_number(ma)} MSE, difference {'+' if mb >= ma else '-'}{fmt_number(abs(mb - ma))} "
                     f"{verdict} the spread {fmt_number(spread)} ({min(na, nb)} seeds)")
    if not parts:
        return None
    return "Seed spread (difference vs std a + std b): " + "; ".join(parts) + "."


def _seeded(df: pd.DataFrame, row: str, column: str) -> tuple[float, float, int] | None:
    sub = df[(df["row"] == row) & (df["column"] == column)]
    if sub.empty:
        return None
    cell = sub.iloc[0]
    mean, std, n = _num(cell["ours"]), _num(cell.get("ours_std")), _num(cell.get("n_seeds"))
    if mean is None or std is None or n is None or n < 2:
        return None
    return mean, std, int(n)


def value(df: pd.DataFrame, side: str, row: str, column: str, section: str | None = None) -> float | None:
    """A cell's number: ours, or the paper's (printed, else recomputed for derived rows)."""
    sel = (df["row"] == row) & (df["column"] == column)
    if section is not None:
        sel &= df["section"] == section
    sub = df[sel]
    if sub.empty:
        return None
    cell = sub.iloc[0]
    if side == "ours":
        return _num(cell["ours"])
    printed = _num(cell["paper"])
    return printed if printed is not None else _num(cell["paper_recomputed"])


def _change(df, side, row_from, row_to, column, section=None) -> float | None:
    a, b = value(df, side, row_from, column, section), value(df, side, row_to, column, section)
    if a is None or b is None or a == 0:
        return None
    return (b - a) / abs(a) * 100.0


def _both(fn: Callable[[str], float | None]) -> dict[str, float | None]:
    return {side: fn(side) for side in SIDES}


def _lower(v: float) -> bool:
    return v < 0


def _higher(v: float) -> bool:
    return v > 0


def _improvement_checks(df: pd.DataFrame, row: str = "Improvement (%)",
                        columns: Sequence[str] | None = None) -> list[Check]:
    """From an Improvement row: SVQ (best variant) lowers a lower-is-better metric vs SimVP."""
    out = []
    sub = df[(df["row"] == row) & (df["kind"] == "derived")]
    for cell in sub.to_dict("records"):
        if columns is not None and cell["column"] not in columns:
            continue
        sign = -1.0 if cell["better"] == "lower" else 1.0
        verb = "lowers" if cell["better"] == "lower" else "raises"
        vals = _both(lambda side, c=cell: value(df, side, row, c["column"], c["section"]))
        vals = {k: (None if v is None else sign * v) for k, v in vals.items()}
        where = f" ({cell['section']})" if cell["section"] else ""
        out.append(Check(f"SVQ {verb} {cell['column_title']}{where} vs SimVP", vals,
                         _lower if sign < 0 else _higher))
    return out


def _read_t1(df):
    # WB-M: only the all-channel columns have runs behind them
    return _improvement_checks(df, columns=[c for c in df["column"].unique()
                                            if not c.startswith("wbm_") or c.startswith("wbm_all")])


def _read_t2(df):
    return _improvement_checks(df)


def _read_t3(df):
    rows = [r for r in df.loc[df["kind"] == "measured", "row"].unique()]
    checks = [Check(f"SVQ lowers MSE with {r}", _both(lambda s, r=r: _pair(df, s, r)), _lower, show=False)
              for r in rows]
    yes = {side: sum(bool(c.verdict(side)) for c in checks) for side in SIDES}
    n = {side: sum(c.verdict(side) is not None for c in checks) for side in SIDES}
    summary = Check(f"SVQ lowers MSE for ours {yes['ours']} of {n['ours']} translators run, paper "
                    f"{yes['paper']} of {n['paper']}", {}, _lower, counted=False)
    avg = Check("average MSE improvement is positive",
                _both(lambda s: value(df, s, "Average improvement (%)", "mse_w")), _higher)
    return checks + [summary, avg]


def _pair(df, side, row):
    """% change of MSE from without to with SVQ in one row of Table 3 / 5."""
    a, b = value(df, side, row, "mse_wo"), value(df, side, row, "mse_w")
    return None if a is None or b is None or a == 0 else (b - a) / abs(a) * 100.0


def _read_t4(df):
    base = "Baseline (SimVP w/o VQ)"
    rows = [r for r in df.loc[df["kind"] == "measured", "row"].unique() if r != base]
    return [Check(f"{r} lowers MSE vs SimVP", _both(lambda s, r=r: _change(df, s, base, r, "mse")), _lower)
            for r in rows]


def _read_t5(df):
    checks = []
    for eta in ("10%", "20%", "30%", "40%", "50%"):
        row = f"η={eta}: increase over η=0 (%)"

        def diff(side, row=row, col="mse"):
            w, wo = value(df, side, row, f"{col}_w"), value(df, side, row, f"{col}_wo")
            return None if w is None or wo is None else w - wo
        checks.append(Check(f"η={eta}: MSE rises less with SVQ than without", _both(diff), _lower, unit=" pt"))
    checks.append(Check("η=50% noise raises SimVP's MSE",
                        _both(lambda s: value(df, s, "η=50%: increase over η=0 (%)", "mse_wo")), _higher))
    return checks


def _read_t6(df):
    small, large = "projection 128, codebook 10", "projection 128, codebook 10000"
    checks = [Check(f"codebook 10 → 10000 lowers MSE ({sec})",
                    _both(lambda s, sec=sec: _change(df, s, small, large, "mse", sec)), _lower)
              for sec in ("Frozen", "Learnable")]
    checks.append(Check("learnable beats frozen at codebook 10000", _both(
        lambda s: _cross(df, s, ("Frozen", large), ("Learnable", large), "mse")), _lower))
    for alt in ("projection 1280 (Bucket-shape), codebook 1280", "None (One-layer), codebook 10000",
                "projection 128 (Post-ReLU), codebook 10000"):
        name = alt.split("(")[1].split(")")[0]
        checks.append(Check(f"the paper's structure beats {name}",
                            _both(lambda s, alt=alt: _change(df, s, alt, large, "mse", "Learnable")), _lower))
    return checks


def _cross(df, side, a, b, column):
    va, vb = value(df, side, a[1], column, a[0]), value(df, side, b[1], column, b[0])
    return None if va is None or vb is None or va == 0 else (vb - va) / abs(va) * 100.0


def _read_t7(df):
    base = "SimVP (MSE loss)"
    return [
        Check("MAE loss alone lowers SimVP's MSE",
              _both(lambda s: _change(df, s, base, "SimVP (MAE loss)", "mse")), _lower),
        Check("SVQ with MSE loss lowers MSE vs SimVP",
              _both(lambda s: _change(df, s, base, "SimVP+SVQ (Learnable, MSE loss)", "mse")), _lower),
        Check("SVQ with MAE loss lowers MSE vs SVQ with MSE loss",
              _both(lambda s: _change(df, s, "SimVP+SVQ (Learnable, MSE loss)",
                                      "SimVP+SVQ (Learnable, MAE loss)", "mse")), _lower),
    ]


def _read_t8(df):
    checks = []
    for sec in df["section"].unique():
        checks.append(Check(f"a learnable codebook raises the weights' kurtosis ({sec})",
                            _both(lambda s, sec=sec: _change(df, s, "Frozen", "Learnable", "kurtosis", sec)),
                            _higher))
    return checks


def _read_t12(df):
    sub = df[df["row"] == "SVQ overhead (%)"]
    return [Check(f"SVQ adds {c['column_title']}", _both(lambda s, c=c: value(df, s, c["row"], c["column"])),
                  _higher) for c in sub.to_dict("records")]


def _read_t13(df):
    svq = ("SVQ (freeze)", "SVQ (Learnable)")
    others = [r for r in df.loc[df["kind"] == "measured", "row"].unique() if r not in svq]

    def best(side, column, rows, pick):
        vals = [value(df, side, r, column) for r in rows]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        return pick(vals) if vals else None

    def gap(side, column, pick):
        a, b = best(side, column, svq, pick), best(side, column, others, pick)
        return None if a is None or b is None or b == 0 else (a - b) / abs(b) * 100.0

    return [
        Check("SVQ has the lowest MSE at codebook 1024", _both(lambda s: gap(s, "mse", min)), _lower),
        Check("SVQ has the highest inference FPS", _both(lambda s: gap(s, "fps", max)), _higher),
        Check("SVQ (θ=3) uses more codes than VQ", _both(
            lambda s: _change(df, s, "VQ", "SVQ (Learnable)", "perplexity")), _higher),
    ]


def _read_t14(df):
    return _improvement_checks(df)


def _read_t15(df):
    none = "None (All learnable)"
    return [
        Check("freezing the codebook costs less MSE than freezing the MLP",
              _both(lambda s: _change(df, s, "Two-layer MLP projection", "Codebook", "mse")), _lower),
        Check("freezing the MLP raises MSE", _both(
            lambda s: _change(df, s, none, "Two-layer MLP projection", "mse")), _higher),
        Check("freezing both raises MSE most", _both(
            lambda s: _change(df, s, "Two-layer MLP projection", "Both", "mse")), _higher),
    ]


READINGS: dict[int, Callable[[pd.DataFrame], list[Check]]] = {
    1: _read_t1, 2: _read_t2, 3: _read_t3, 4: _read_t4, 5: _read_t5, 6: _read_t6, 7: _read_t7,
    8: _read_t8, 12: _read_t12, 13: _read_t13, 14: _read_t14, 15: _read_t15,
}


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
    :func:`pipeline.report.references.beats_table` (its CSV at ``beats_link``); ``notes``: lines
    about individual runs (a padded grid)."""
    paper = paper if paper is not None else load_paper()
    out = [
        "# SVQ reproduction: the paper's tables from our runs",
        "",
        f"Profile: **{profile}**. Built from the MLflow records of {n_experiments} experiment(s) "
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
        out += [reading(number, df), ""]
        spread = seed_spread(number, df)
        if spread:
            out += [spread, ""]
        out += [f"_Note: {note}_" for note in table.notes]
        if table.notes:
            out += [""]
        out += [render_table(df, table)]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["Check", "READINGS", "render_table", "render_beats", "reading", "render_readme", "value"]
