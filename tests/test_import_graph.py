"""The folders are the layers. Data flows one way (source files -> store -> windows -> model ->
training -> tracked run -> report), and so do imports: no module of ``pipeline/`` imports one of
a higher layer, lazily inside a function or not (pipeline/repro/imports.py reads them all), and
the parts (the folders, and the few modules at the root) import each other without a cycle."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.repro.imports import ImportGraph

ROOT = Path(__file__).resolve().parents[1]

# Bottom first: a part may import the parts of its own layer and of the layers below (never in a
# cycle, see test_the_parts_import_each_other_without_a_cycle). A part is a folder of pipeline/
# or a module at its root; the root keeps only what users import or run by name.
LAYERS: list[tuple[str, list[str]]] = [
    ("core", ["pipeline", "pipeline.core"]),                       # errors, paths, YAML, schema, plug-ins
    ("components", ["pipeline.data", "pipeline.models", "pipeline.metrics", "pipeline.svq"]),
    ("config", ["pipeline.config"]),                                # params.yaml -> run configuration
    ("runs", ["pipeline.tracking", "pipeline.training"]),           # what a stage runs, its tracked run
    ("results", ["pipeline.report", "pipeline.repro"]),            # tables from records; the DVC runner
    ("commands", ["pipeline.forecast", "pipeline.registry",         # run by name: python -m pipeline.<x>
                  "pipeline.slurm"]),
]
ROOT_MODULES_MAX = 8
# Downward, yet refused: the report reads the committed run records only, never the data or
# MLflow; research code never imports the DVC runner; the data come before the models
FORBIDDEN = [("pipeline.report", "pipeline.data"), ("pipeline.report", "pipeline.tracking"),
             ("pipeline.data", "pipeline.models"), ("pipeline.data", "pipeline.metrics"),
             ("pipeline.training", "pipeline.repro"), ("pipeline.report", "pipeline.repro")]


def part_of(module: str) -> str:
    """``pipeline.training.fit`` -> ``pipeline.training``; the package itself is its own part."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    part = part_of(module)
    for rank, (_, parts) in enumerate(LAYERS):
        if part in parts:
            return rank
    raise AssertionError(f"{module}: its part {part} is in no layer; add it to LAYERS in {Path(__file__).name}")


def edges(graph: ImportGraph) -> list[tuple[str, str]]:
    return sorted((m, t) for m in graph.modules() for t in graph.imports(graph.file_of(m)))


def part_edges(graph: ImportGraph) -> set[tuple[str, str]]:
    return {(part_of(a), part_of(b)) for a, b in edges(graph) if part_of(a) != part_of(b)}


def back_arrows(graph: ImportGraph) -> list[str]:
    bad = []
    for src, dst in edges(graph):
        if layer_of(dst) > layer_of(src):
            bad.append(f"{src} ({LAYERS[layer_of(src)][0]}) imports {dst} ({LAYERS[layer_of(dst)][0]})")
        elif any(part_of(src) == a and part_of(dst) == b for a, b in FORBIDDEN):
            bad.append(f"{src} imports {dst}, which it must not")
    return bad


def cycles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """Each cycle of the directed graph ``pairs`` once (as found by a depth-first walk)."""
    succ: dict[str, set[str]] = {}
    for a, b in pairs:
        succ.setdefault(a, set()).add(b)
    found, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(succ.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(succ):
        if node not in state:
            walk(node, [node])
    return found


def test_every_module_has_a_layer():
    for module in ImportGraph(ROOT).modules():
        layer_of(module)


def test_no_arrow_runs_back_up():
    assert back_arrows(ImportGraph(ROOT)) == []


def test_the_parts_import_each_other_without_a_cycle():
    assert cycles(part_edges(ImportGraph(ROOT))) == []


def test_the_root_keeps_what_users_import_or_run():
    root = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert len(root) <= ROOT_MODULES_MAX, root
    layered = {p for _, parts in LAYERS for p in parts}
    assert {f"pipeline.{Path(n).stem}" for n in root if n != "__init__.py"} <= layered


def test_one_module_per_name():
    """A newcomer finds a concept by its file name: no two modules share one, but the packages of a
    plug-in family (each dataset source's settings/reader/twin/fetch) and each family's ``base``."""
    seen: dict[str, list[str]] = {}
    for path in (ROOT / "pipeline").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if path.name in ("__init__.py", "base.py") or rel.parts[:3] == ("pipeline", "data", "sources") and len(rel.parts) > 4:
            continue
        seen.setdefault(path.stem, []).append(rel.as_posix())
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def stage_parts(graph: ImportGraph, stage: str) -> set[str]:
    """The parts whose modules the stage script may load."""
    return {part_of(graph.module_of(ROOT / p)) for p in graph.closure(Path(stage))
            if p.suffix == ".py" and p.parts[0] == "pipeline"}


def test_data_stages_read_no_model_or_run_code():
    """Editing a translator or the trainer must not re-run the download and preprocess stages."""
    graph = ImportGraph(ROOT)
    for stage in ("stages/download.py", "stages/preprocess.py"):
        assert stage_parts(graph, stage) <= {"pipeline", "pipeline.core", "pipeline.data"}, stage


def test_the_report_stage_reads_neither_stores_nor_mlflow():
    """It rebuilds reports/ from the committed records in a clone with no store and no mlflow.db
    (it validates params.yaml whole, so it knows the dataset sources' names)."""
    graph = ImportGraph(ROOT)
    modules = {graph.module_of(ROOT / p) for p in graph.closure(Path("stages/report.py")) if p.suffix == ".py"}
    assert not {m for m in modules if m.startswith(("pipeline.tracking", "pipeline.data.store",
                                                     "pipeline.data.windows", "pipeline.training.fit"))}


# ---------------------------------------------------------------- the walker sees every import
def _package(tmp_path: Path, files: dict[str, str]) -> ImportGraph:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ImportGraph(tmp_path)


def test_walker_finds_lazy_relative_and_registry_imports(tmp_path):
    g = _package(tmp_path, {
        "pipeline/__init__.py": "",
        "pipeline/low.py": "def f():\n    from pipeline.high import x  # lazy, still an edge\n",
        "pipeline/high.py": "from pipeline import low\nimport pipeline.reg.a\n",
        "pipeline/reg/__init__.py": ("import importlib\nREG.register_lazy('b', 'pipeline.reg.b')\n"
                                     "def get(n):\n    return importlib.import_module(f'{__name__}.{n}')\n"),
        "pipeline/reg2/__init__.py": "for n in ('a',):\n    REG.register_lazy(n, f'pipeline.reg2.{n}')\n",
        "pipeline/reg2/a.py": "",
        "pipeline/reg2/b/__init__.py": "",
        "pipeline/reg2/b/c.py": "",
        "pipeline/reg/a.py": "from .b import y\nfrom . import c\n",
        "pipeline/reg/b.py": "",
        "pipeline/reg/c.py": "NAME = 'table.yaml'\n",
        "pipeline/reg/table.yaml": "",
    })
    assert g.imports(tmp_path / "pipeline/low.py") == {"pipeline.high"}
    assert g.imports(tmp_path / "pipeline/high.py") == {"pipeline.low", "pipeline.reg.a"}
    assert g.imports(tmp_path / "pipeline/reg/__init__.py") == {"pipeline.reg.a", "pipeline.reg.b", "pipeline.reg.c"}
    assert g.imports(tmp_path / "pipeline/reg/a.py") == {"pipeline.reg.b", "pipeline.reg.c"}
    assert g.imports(tmp_path / "pipeline/reg2/__init__.py") == {"pipeline.reg2.a", "pipeline.reg2.b",
                                                                 "pipeline.reg2.b.c"}
    assert {p.as_posix() for p in g.closure(Path("pipeline/low.py"))} == {
        "pipeline/__init__.py", "pipeline/low.py", "pipeline/high.py", "pipeline/reg/__init__.py",
        "pipeline/reg/a.py", "pipeline/reg/b.py", "pipeline/reg/c.py", "pipeline/reg/table.yaml"}


def test_a_back_arrow_and_a_cycle_are_reported(tmp_path):
    g = _package(tmp_path, {"pipeline/__init__.py": "", "pipeline/core/__init__.py": "",
                            "pipeline/core/errors.py": "", "pipeline/config/__init__.py": "",
                            "pipeline/training/__init__.py": "", "pipeline/training/fit.py": "",
                            "pipeline/report/__init__.py": "def f():\n    import pipeline.data.store\n",
                            "pipeline/data/__init__.py": "", "pipeline/data/store.py": "import pipeline.metrics.x\n",
                            "pipeline/metrics/__init__.py": "", "pipeline/metrics/x.py": "import pipeline.data\n",
                            "pipeline/models/__init__.py": "from pipeline.training import fit\n"})
    assert back_arrows(g) == ["pipeline.data.store imports pipeline.metrics.x, which it must not",
                              "pipeline.models (components) imports pipeline.training.fit (runs)",
                              "pipeline.report imports pipeline.data.store, which it must not"]
    assert cycles(part_edges(g)) == [["pipeline.data", "pipeline.metrics", "pipeline.data"]]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
