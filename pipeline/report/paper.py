"""The paper's reference values (``paper.yaml`` beside this file), loaded and checked.

``load_paper()`` returns ``{table number: PaperTable}``; each table has sections of columns and
rows, rows in the paper's order, each row's ``values`` keyed by column key, and the directions the
paper claims for it (:mod:`pipeline.report.claims`).
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from pipeline.core.errors import ConfigError
from pipeline.core.schema import Settings, parse
from pipeline.core.yamlfile import read_yaml
from pipeline.report.claims import ClaimSpec

PAPER_YAML = Path(__file__).with_name("paper.yaml")
TABLE_NUMBERS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    metric: tuple[str, ...]     # MLflow metric names, first available wins
    better: str                 # lower | higher
    group: str = ""
    scale: float = 1.0
    source: str = "main"
    measured: bool = True
    paper_mean_of: tuple[str, ...] = ()
    note: str = ""

    @property
    def title(self) -> str:
        return f"{self.group} {self.label}".strip()


@dataclass(frozen=True)
class Row:
    label: str
    values: dict[str, float | None]           # column key -> the paper's value
    kind: str                                 # measured | reported | derived
    experiments: dict[str, str] = field(default_factory=dict)  # column source -> experiment
    derived: str = ""
    args: dict[str, Any] = field(default_factory=dict)         # the derived row's settings
    note: str = ""


@dataclass(frozen=True)
class Section:
    name: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)


@dataclass(frozen=True)
class PaperTable:
    number: int
    title: str
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()
    claims: tuple[ClaimSpec, ...] = ()
    version: str = ""           # the paper version its values were transcribed from

    def experiments(self) -> list[str]:
        """Catalogue experiments this table reads, in order of appearance."""
        seen: dict[str, None] = {}
        for s in self.sections:
            for r in s.rows:
                for e in r.experiments.values():
                    seen.setdefault(e, None)
        return list(seen)


def load_paper(path: str | Path | None = None) -> dict[int, PaperTable]:
    """Parse and validate the reference values; the default file is cached."""
    if path is None:
        return copy.deepcopy(_load_default())
    return _parse(Path(path))


@functools.lru_cache(maxsize=1)
def _load_default() -> dict[int, PaperTable]:
    return _parse(PAPER_YAML)


# -- the file's schema (field meanings: the comment at the top of paper.yaml) --------------------
class ColumnSpec(Settings):
    key: str
    label: str
    metric: str | list[str]
    better: Literal["lower", "higher"] = "lower"
    group: str = ""
    scale: float = 1.0
    source: str = "main"
    measured: bool = True
    paper_mean_of: list[str] = []
    note: str = ""


_DERIVED_ARGS = {"improvement": ("baseline", "candidates"), "increase": ("base", "target"),
                 "average_improvement": ("pairs",)}


class RowSpec(Settings):
    label: str
    values: list[float | None]
    note: str = ""
    # exactly one of the four kinds
    reported: bool = False
    experiment: str | None = None
    experiments: dict[str, str] | None = None
    derived: Literal["improvement", "increase", "average_improvement"] | None = None
    # a derived row's settings
    baseline: str | None = None
    candidates: list[str] | None = None
    base: str | None = None
    target: str | None = None
    pairs: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "RowSpec":
        kinds = [k for k in ("reported", "experiment", "experiments", "derived") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(f"row {self.label!r}: expected exactly one of reported, experiment, "
                             f"experiments, derived; got {kinds or 'none'}")
        if self.derived:
            missing = [k for k in _DERIVED_ARGS[self.derived] if getattr(self, k) is None]
            if missing:
                raise ValueError(f"row {self.label!r}: a derived row of kind {self.derived!r} needs {missing}")
        return self


class SectionSpec(Settings):
    name: str = ""
    columns: list[ColumnSpec]
    rows: list[RowSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> "SectionSpec":
        keys = [c.key for c in self.columns]
        labels = [r.label for r in self.rows]
        for what, names in (("column keys", keys), ("row labels", labels)):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} must be unique within a section, got {names}")
        if not keys:
            raise ValueError("no columns")
        for c in self.columns:
            if not set(c.paper_mean_of) <= set(keys):
                raise ValueError(f"column {c.key!r}: paper_mean_of names unknown columns {c.paper_mean_of}")
        for r in self.rows:
            if len(r.values) != len(keys):
                raise ValueError(f"row {r.label!r}: 'values' must list one value per column "
                                 f"({len(keys)}), got {len(r.values)}")
            refs = [r.baseline, *(r.candidates or ()), r.base, r.target]
            unknown = [x for x in refs if x is not None and x not in labels]
            if unknown:
                raise ValueError(f"derived row {r.label!r} refers to unknown rows {unknown}")
            for pair in (r.pairs or {}).items():
                if not set(pair) <= set(keys):
                    raise ValueError(f"derived row {r.label!r}: pairs name unknown columns {pair}")
        return self


class TableSpec(Settings):
    title: str
    sections: list[SectionSpec]
    notes: list[str] = []
    claims: list[ClaimSpec] = []

    @model_validator(mode="after")
    def _named_once(self) -> "TableSpec":
        names = [s.name for s in self.sections]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"expected a non-empty list of sections with unique names, got {names}")
        return self

    @model_validator(mode="after")
    def _claims_name_the_table(self) -> "TableSpec":
        """A claim naming a row the table lacks would read "not measurable" for ever: refuse it."""
        known = {"rows": {r.label for s in self.sections for r in s.rows},
                 "columns": {c.key for s in self.sections for c in s.columns},
                 "sections": {s.name for s in self.sections}}
        for i, entry in enumerate(self.claims):
            for what, named in entry.names().items():
                unknown = sorted(named - known[what])
                if unknown:
                    raise ValueError(f"claims.{i} names unknown {what} {unknown}")
        return self


class PaperSpec(Settings):
    version: str
    tables: dict[int, TableSpec]

    @model_validator(mode="after")
    def _every_table(self) -> "PaperSpec":
        missing = [n for n in TABLE_NUMBERS if n not in self.tables]
        if missing:
            raise ValueError(f"tables {missing} are missing; expected {list(TABLE_NUMBERS)}")
        return self


def _parse(path: Path) -> dict[int, PaperTable]:
    if not path.exists():
        raise ConfigError(f"{path}: the paper's reference values file is missing")
    spec = parse(PaperSpec, read_yaml(path, aliases=True) or {}, str(path), origin=lambda key: f"{path}: {key}")
    return {n: PaperTable(n, t.title, tuple(_section(s) for s in t.sections), tuple(t.notes), tuple(t.claims),
                          spec.version)
            for n, t in spec.tables.items()}


def _section(spec: SectionSpec) -> Section:
    columns = tuple(Column(key=c.key, label=c.label, metric=(c.metric,) if isinstance(c.metric, str)
                           else tuple(c.metric), better=c.better, group=c.group, scale=c.scale,
                           source=c.source, measured=c.measured, paper_mean_of=tuple(c.paper_mean_of),
                           note=c.note) for c in spec.columns)
    return Section(spec.name, columns, tuple(_row(r, columns) for r in spec.rows))


def _row(spec: RowSpec, columns: tuple[Column, ...]) -> Row:
    vals = dict(zip((c.key for c in columns), spec.values))
    if spec.reported:
        return Row(spec.label, vals, "reported", note=spec.note)
    if spec.experiment:
        sources = {c.source for c in columns if c.measured}
        return Row(spec.label, vals, "measured", {s: spec.experiment for s in sources}, note=spec.note)
    if spec.experiments:
        return Row(spec.label, vals, "measured", dict(spec.experiments), note=spec.note)
    assert spec.derived is not None
    return Row(spec.label, vals, "derived", derived=spec.derived,
               args={k: getattr(spec, k) for k in _DERIVED_ARGS[spec.derived]}, note=spec.note)


def _derived_refs(row: Row) -> list[str]:
    a = row.args
    if row.derived == "improvement":
        return [a["baseline"], *a["candidates"]]
    if row.derived == "increase":
        return [a["base"], a["target"]]
    return []


__all__ = ["PAPER_YAML", "TABLE_NUMBERS", "Column", "Row", "Section", "PaperTable", "load_paper"]
