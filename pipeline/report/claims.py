"""The directions the paper claims for a table, and how they are checked on the table's cells.

The claims are data: a ``claims:`` list under each table of ``paper.yaml``, beside the values they
speak of, so that a table and what it claims are reviewed together and the loader refuses a claim
that names a row, column or section the table lacks. A claim is a signed quantity (a % change,
mostly) computed from one or two cells, and the sign the paper says it has; it is checked on our
numbers and on the paper's alike, so a reading can say where the two agree.

A claim entry (:class:`ClaimSpec`)::

    kind        what is computed from the cells, base -> target:
                  change       % change from base to target, (target - base) / |base| * 100
                  difference   target - base, in the cells' own unit (points between two % rows)
                  value        the cell itself (a derived row: an increase, an average improvement)
                  improvement  a derived improvement cell (positive = better), negated for a
                               lower-is-better column so that it reads as the metric's change
                  best         % change from the best of the other measured rows to the best of
                               ``rows`` (best: the lowest for direction lower, else the highest)
    row, column, section        the cell(s), shared by base and target (no section: the first match)
    base, target                {row, column, section}: where each side differs from the shared cell
    direction   lower | higher: the sign the claim expects; better: the column's own direction
    each        row: repeat for every measured row not named by the claim (it fills ``row``);
                section: for every section (fills ``section``); cell: for every cell of ``row``,
                only ``columns`` if given (fills ``column`` and ``section``)
    claim       the sentence; {row}, {column} (its title), {section} and {verb} (lowers | raises,
                after the direction) are filled in
    summary     with ``each``: an uncounted line after the checks, with {ours_yes} of {ours_n}
                and {paper_yes} of {paper_n} checks that hold
    unit, show, counted         how a value is printed; whether the reading lists / counts the check

Whether our runs' direction is more than noise is for :mod:`pipeline.report.verdicts` to say:
every check here has an interval there (``reports/tables/claims.csv``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Literal

import pandas as pd
from pydantic import model_validator

from pipeline.core.schema import Settings

SIDES = ("ours", "paper")
CLAIM_FIELDS = ("row", "column", "section", "verb")
SUMMARY_FIELDS = ("ours_yes", "ours_n", "paper_yes", "paper_n")
_TWO_CELLS = ("change", "difference")


# -- the schema -----------------------------------------------------------------------------------
class CellSpec(Settings):
    row: str | None = None
    column: str | None = None
    section: str | None = None


class _Cells(Settings):
    """Two cells, base and target: the shared coordinates, overridden by each side's own."""

    row: str | None = None
    column: str | None = None
    section: str | None = None
    base: CellSpec | None = None
    target: CellSpec | None = None

    def cell(self, side: str, at: dict[str, str | None] | None = None) -> dict[str, str | None]:
        """``side`` (base | target)'s address; ``at``: the shared coordinates as a loop filled them."""
        at = dict(at if at is not None else {"row": self.row, "column": self.column, "section": self.section})
        own = getattr(self, side)
        if own is not None:
            at.update({k: v for k, v in own.model_dump().items() if v is not None})
        return at

    def names(self) -> dict[str, set[str]]:
        """The rows, columns and sections the entry names, to check them against its table."""
        cells = [self, *(c for c in (self.base, self.target) if c is not None)]
        return {what: {getattr(c, attr) for c in cells if getattr(c, attr) is not None}
                for what, attr in (("rows", "row"), ("columns", "column"), ("sections", "section"))}

    def _unresolved(self, keys: Sequence[str]) -> list[str]:
        """Of ``keys`` (row, column), those that a side's cell leaves unset."""
        if self.base is None and self.target is None:
            return [k for k in keys if getattr(self, k) is None]
        return [f"{side}.{k}" for side in ("base", "target") for k in keys if self.cell(side)[k] is None]


class ClaimSpec(_Cells):
    kind: Literal["change", "difference", "value", "improvement", "best"]
    claim: str
    direction: Literal["lower", "higher", "better"]
    each: Literal["row", "section", "cell"] | None = None
    columns: list[str] | None = None
    rows: list[str] | None = None
    summary: str | None = None
    unit: str = "%"
    show: bool = True
    counted: bool = True

    @model_validator(mode="after")
    def _complete(self) -> "ClaimSpec":
        name = f"claim {self.claim!r}"
        two = self.base is not None or self.target is not None
        if self.kind in _TWO_CELLS and not two:
            raise ValueError(f"{name}: a claim of kind {self.kind!r} compares two cells: it needs base or target "
                             "(where a cell differs from the shared one)")
        if self.kind not in _TWO_CELLS and two:
            raise ValueError(f"{name}: a claim of kind {self.kind!r} reads one cell: base and target do not apply")
        if (self.kind == "best") != (self.rows is not None):
            raise ValueError(f"{name}: 'rows' (the claimed group) goes with kind 'best', and only there")
        if self.each == "cell" and (self.row is None or self.column is not None or self.section is not None):
            raise ValueError(f"{name}: each: cell repeats over the cells of 'row': it needs row, no column or section")
        if self.each in ("row", "section") and getattr(self, self.each) is not None:
            raise ValueError(f"{name}: each: {self.each} fills {self.each!r}: do not set it")
        if self.columns is not None and self.each != "cell":
            raise ValueError(f"{name}: 'columns' only selects the cells of each: cell")
        if self.summary is not None and self.each is None:
            raise ValueError(f"{name}: a summary tallies the checks of a claim with 'each'")
        filled = {"row": {"row"}, "cell": {"column"}}.get(self.each or "", set()) | (
            {"row"} if self.kind == "best" else set())
        unresolved = self._unresolved([k for k in ("row", "column") if k not in filled])
        if unresolved:
            raise ValueError(f"{name}: no {', '.join(unresolved)} for the cell(s) it reads")
        _placeholders(self.claim, CLAIM_FIELDS, name)
        if self.summary is not None:
            _placeholders(self.summary, SUMMARY_FIELDS, f"{name}: summary")
        return self

    def names(self) -> dict[str, set[str]]:
        named = super().names()
        named["rows"] |= set(self.rows or ())
        named["columns"] |= set(self.columns or ())
        return named


def _placeholders(text: str, allowed: Sequence[str], name: str) -> None:
    try:
        fields = [f for _, f, _, _ in Formatter().parse(text) if f is not None]
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    unknown = [f for f in fields if f not in allowed]
    if unknown:
        raise ValueError(f"{name}: unknown placeholder(s) {unknown}; expected some of {list(allowed)}")


# -- the evaluation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One claimed direction: ``values[side]`` is a signed quantity, and the claim holds for a
    value whose sign is ``direction``'s (lower: negative, higher: positive)."""

    claim: str
    values: dict[str, float | None]
    direction: str
    unit: str = "%"
    show: bool = True      # listed in the reading line
    counted: bool = True   # counted in "agree in k of n"; False for a summary line

    def holds(self, v: float) -> bool:
        return v < 0 if self.direction == "lower" else v > 0

    def verdict(self, side: str) -> bool | None:
        v = self.values.get(side)
        return None if v is None or not math.isfinite(v) else bool(self.holds(v))

    def agrees(self) -> bool | None:
        ours, paper = self.verdict("ours"), self.verdict("paper")
        return None if ours is None or paper is None else ours == paper


def evaluate(claims: Iterable[ClaimSpec], df: pd.DataFrame) -> list[Check]:
    """The checks of ``claims`` on one table's cells (:func:`pipeline.report.tables.build_table`)."""
    cells = _Table(df)
    out: list[Check] = []
    for spec in claims:
        checks = [_check(spec, cells, at) for at in _instances(spec, cells)]
        out += checks
        if spec.summary is not None:
            out.append(_summary(spec.summary, checks))
    return out


class _Table:
    """A table's cells indexed once: claims read them thousands of times (the intervals of
    :mod:`pipeline.report.verdicts` re-evaluate every claim as each cell moves)."""

    def __init__(self, df: pd.DataFrame):
        self.records = df.to_dict("records")
        self.at: dict[tuple[str, str], list[dict]] = {}
        for cell in self.records:
            self.at.setdefault((cell["row"], cell["column"]), []).append(cell)
        self.better = {c["column"]: str(c["better"]) for c in reversed(self.records)}
        self.titles = {c["column"]: str(c["column_title"]) for c in reversed(self.records)}

    def value(self, side: str, row: str | None, column: str | None, section: str | None = None) -> float | None:
        hits = [c for c in self.at.get((row, column), ()) if section is None or c["section"] == section]
        if not hits:
            return None
        cell = hits[0]
        if side == "ours":
            return cell_number(cell["ours"])
        printed = cell_number(cell["paper"])
        return printed if printed is not None else cell_number(cell["paper_recomputed"])

    def measured_rows(self) -> list[str]:
        return list(dict.fromkeys(c["row"] for c in self.records if c["kind"] == "measured"))


def _instances(spec: ClaimSpec, cells: _Table) -> list[dict[str, str | None]]:
    """The shared coordinates of each repetition of a claim (one, without ``each``)."""
    at = {"row": spec.row, "column": spec.column, "section": spec.section}
    if spec.each is None:
        return [at]
    if spec.each == "row":
        named = spec.names()["rows"]
        return [{**at, "row": r} for r in cells.measured_rows() if r not in named]
    if spec.each == "section":
        return [{**at, "section": s} for s in dict.fromkeys(c["section"] for c in cells.records)]
    return [{**at, "column": c["column"], "section": c["section"]} for c in cells.records
            if c["row"] == spec.row and (spec.columns is None or c["column"] in spec.columns)]


def _check(spec: ClaimSpec, cells: _Table, at: dict[str, str | None]) -> Check:
    base, target = spec.cell("base", at), spec.cell("target", at)
    direction = cells.better.get(target["column"], "lower") if spec.direction == "better" else spec.direction
    values = {side: _quantity(spec, cells, side, base, target, direction) for side in SIDES}
    text = spec.claim.format(row=at["row"] or "", column=cells.titles.get(at["column"], ""),
                             section=at["section"] or "", verb="lowers" if direction == "lower" else "raises")
    return Check(text, values, direction, spec.unit, spec.show, spec.counted)


def _quantity(spec: ClaimSpec, cells: _Table, side: str, base: dict, target: dict,
              direction: str) -> float | None:
    if spec.kind == "best":
        pick = min if direction == "lower" else max
        group = spec.rows or []
        rivals = [r for r in cells.measured_rows() if r not in group]
        return change(_best(cells, side, rivals, target, pick), _best(cells, side, group, target, pick))
    b = cells.value(side, target["row"], target["column"], target["section"])
    if spec.kind == "value":
        return b
    if spec.kind == "improvement":
        return None if b is None else (-b if cells.better.get(target["column"], "lower") == "lower" else b)
    a = cells.value(side, base["row"], base["column"], base["section"])
    if spec.kind == "change":
        return change(a, b)
    return None if a is None or b is None else b - a


def _best(cells: _Table, side: str, rows: Iterable[str], at: dict,
          pick: Callable[[list[float]], float]) -> float | None:
    vals = [cells.value(side, r, at["column"], at["section"]) for r in rows]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return pick(vals) if vals else None


def _summary(text: str, checks: Sequence[Check]) -> Check:
    counts = {}
    for side in SIDES:
        counts[f"{side}_yes"] = sum(bool(c.verdict(side)) for c in checks)
        counts[f"{side}_n"] = sum(c.verdict(side) is not None for c in checks)
    return Check(text.format(**counts), {}, "higher", counted=False)


def change(a: float | None, b: float | None) -> float | None:
    """% change from ``a`` to ``b``; None where either is missing or ``a`` is 0."""
    return None if a is None or b is None or a == 0 else (b - a) / abs(a) * 100.0


def cell_number(v) -> float | None:
    """A cell's number as a float; None for an empty cell (None or NaN)."""
    if v is None or pd.isna(v):
        return None
    return float(v)


def value(df: pd.DataFrame, side: str, row: str | None, column: str | None,
          section: str | None = None) -> float | None:
    """A cell's number: ours, or the paper's (printed, else recomputed for derived rows)."""
    return _Table(df).value(side, row, column, section)


__all__ = ["SIDES", "CellSpec", "ClaimSpec", "Check", "evaluate", "value", "change", "cell_number"]
