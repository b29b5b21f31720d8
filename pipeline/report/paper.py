"""The paper's reference values (``paper.yaml`` beside this file), loaded and checked.

``load_paper()`` returns ``{table number: PaperTable}``; each table has sections of columns and
rows, rows in the paper's order, each row's ``values`` keyed by column key.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.yamlfile import read_yaml

PAPER_YAML = Path(__file__).with_name("paper.yaml")
TABLE_NUMBERS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15)
DERIVED_KINDS = ("improvement", "increase", "average_improvement")


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


def _parse(path: Path) -> dict[int, PaperTable]:
    if not path.exists():
        raise ConfigError(f"{path}: the paper's reference values file is missing")
    raw = read_yaml(path)
    tables = (raw or {}).get("tables")
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: expected a top-level 'tables' mapping")
    missing = [n for n in TABLE_NUMBERS if n not in tables]
    if missing:
        raise ConfigError(f"{path}: tables {missing} are missing; expected {list(TABLE_NUMBERS)}")
    return {int(n): _table(path, int(n), spec) for n, spec in tables.items()}


def _table(path: Path, n: int, spec: dict[str, Any]) -> PaperTable:
    where = f"{path}: tables.{n}"
    if not isinstance(spec, dict) or "title" not in spec or not spec.get("sections"):
        raise ConfigError(f"{where}: expected a mapping with 'title' and a non-empty 'sections' list")
    sections = tuple(_section(f"{where}.sections[{i}]", s) for i, s in enumerate(spec["sections"]))
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: section names must be unique, got {names}")
    return PaperTable(n, str(spec["title"]), sections, tuple(spec.get("notes") or ()))


def _section(where: str, spec: dict[str, Any]) -> Section:
    columns = tuple(_column(f"{where}.columns[{i}]", c) for i, c in enumerate(spec.get("columns") or ()))
    if not columns:
        raise ConfigError(f"{where}: no columns")
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{where}: column keys must be unique, got {keys}")
    for c in columns:
        bad = [k for k in c.paper_mean_of if k not in keys]
        if bad:
            raise ConfigError(f"{where}: column {c.key!r}: paper_mean_of names unknown columns {bad}")
    rows = tuple(_row(f"{where}.rows[{i}]", r, columns) for i, r in enumerate(spec.get("rows") or ()))
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: row labels must be unique within a section, got {labels}")
    for r in rows:
        for ref in _derived_refs(r):
            if ref not in labels:
                raise ConfigError(f"{where}: derived row {r.label!r} refers to unknown row {ref!r}")
        for pair in r.args.get("pairs", {}).items():
            if not set(pair) <= set(keys):
                raise ConfigError(f"{where}: derived row {r.label!r}: pairs name unknown columns {pair}")
    return Section(str(spec.get("name") or ""), columns, rows)


def _column(where: str, spec: dict[str, Any]) -> Column:
    for key in ("key", "label", "metric"):
        if key not in spec:
            raise ConfigError(f"{where}: missing {key!r}")
    better = spec.get("better", "lower")
    if better not in ("lower", "higher"):
        raise ConfigError(f"{where}.better: expected 'lower' or 'higher', got {better!r}")
    metric = spec["metric"]
    metric = (metric,) if isinstance(metric, str) else tuple(metric)
    return Column(key=str(spec["key"]), label=str(spec["label"]), metric=metric, better=better,
                  group=str(spec.get("group") or ""), scale=float(spec.get("scale", 1.0)),
                  source=str(spec.get("source", "main")), measured=bool(spec.get("measured", True)),
                  paper_mean_of=tuple(spec.get("paper_mean_of") or ()), note=str(spec.get("note") or ""))


def _row(where: str, spec: dict[str, Any], columns: tuple[Column, ...]) -> Row:
    if "label" not in spec:
        raise ConfigError(f"{where}: missing 'label'")
    label = str(spec["label"])
    values = spec.get("values")
    if not isinstance(values, list) or len(values) != len(columns):
        raise ConfigError(f"{where} ({label!r}): 'values' must list one value per column "
                          f"({len(columns)}), got {values!r}")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{where} ({label!r}): values must be numbers or null, got {v!r}")
    vals = {c.key: (None if v is None else float(v)) for c, v in zip(columns, values)}
    kinds = [k for k in ("reported", "experiment", "experiments", "derived") if spec.get(k)]
    if len(kinds) != 1:
        raise ConfigError(f"{where} ({label!r}): expected exactly one of reported, experiment, "
                          f"experiments, derived; got {kinds or 'none'}")
    note = str(spec.get("note") or "")
    if kinds[0] == "reported":
        return Row(label, vals, "reported", note=note)
    if kinds[0] == "experiment":
        sources = {c.source for c in columns if c.measured}
        return Row(label, vals, "measured", {s: str(spec["experiment"]) for s in sources}, note=note)
    if kinds[0] == "experiments":
        exps = spec["experiments"]
        if not isinstance(exps, dict):
            raise ConfigError(f"{where} ({label!r}).experiments: expected a mapping source -> experiment")
        return Row(label, vals, "measured", {str(k): str(v) for k, v in exps.items()}, note=note)
    kind = spec["derived"]
    if kind not in DERIVED_KINDS:
        raise ConfigError(f"{where} ({label!r}).derived: expected one of {DERIVED_KINDS}, got {kind!r}")
    required = {"improvement": ("baseline", "candidates"), "increase": ("base", "target"),
                "average_improvement": ("pairs",)}[kind]
    missing = [k for k in required if k not in spec]
    if missing:
        raise ConfigError(f"{where} ({label!r}): derived row of kind {kind!r} needs {missing}")
    return Row(label, vals, "derived", derived=kind, args={k: spec[k] for k in required}, note=note)


def _derived_refs(row: Row) -> list[str]:
    a = row.args
    if row.derived == "improvement":
        return [a["baseline"], *a["candidates"]]
    if row.derived == "increase":
        return [a["base"], a["target"]]
    return []


__all__ = ["PAPER_YAML", "TABLE_NUMBERS", "Column", "Row", "Section", "PaperTable", "load_paper"]
