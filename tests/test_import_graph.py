"""Data flows one way (source files -> store -> windows -> model -> training -> tracked run ->
report), and so do imports: no module of ``pipeline/`` imports one of a higher layer, lazily
inside a function or not (pipeline/imports.py reads them all)."""
from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from pipeline.imports import ImportGraph

ROOT = Path(__file__).resolve().parents[1]

# Bottom first; a module may import its own layer and the ones below. A module named exactly
# wins over a pattern (pipeline.data.prepare is not in the data layer).
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["pipeline", "pipeline.compat", "pipeline.errors", "pipeline.dotted", "pipeline.paths",
              "pipeline.yamlfile", "pipeline.schema", "pipeline.registries", "pipeline.outputs",
              "pipeline.imports", "pipeline.code_digest"]),
    # source files -> store -> windows. data.prepare runs the download/preprocess stages from
    # params.yaml, so it sits with the stage logic above config
    ("data", ["pipeline.data*"]),
    ("models", ["pipeline.models*", "pipeline.svq", "pipeline.metrics", "pipeline.cost", "pipeline.lr_schedule",
                "pipeline.train_settings"]),
    ("config", ["pipeline.config", "pipeline.overrides"]),
    # what one stage runs (download/preprocess, references, training) and the tracked run it leaves
    ("run", ["pipeline.data.prepare", "pipeline.references", "pipeline.train", "pipeline.tracking",
             "pipeline.checkpoint", "pipeline.distributed", "pipeline.job_slots", "pipeline.scores",
             "pipeline.mlflow_model", "pipeline.mlflow_dataset", "pipeline.run_record", "pipeline.plots",
             "pipeline.run_params", "pipeline.run_summary"]),
    ("report", ["pipeline.report*"]),
    ("cli", ["pipeline.experiments", "pipeline.forecast", "pipeline.registry", "pipeline.progress",
             "pipeline.stage_server", "pipeline.stage_client"]),
]
# Downward, yet refused: the report reads the committed run records only, never the data or MLflow
FORBIDDEN = [("pipeline.report*", "pipeline.data*"), ("pipeline.report*", "pipeline.tracking"),
             ("pipeline.report*", "pipeline.mlflow_*")]
# Back-arrows still being removed, each with who removes it (the issue 13 config redesign)
KNOWN: set[tuple[str, str]] = set()


def layer_of(module: str) -> int:
    for rank, (_, patterns) in enumerate(LAYERS):
        if module in patterns:
            return rank
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return rank
    raise AssertionError(f"{module}: in no layer; add it to LAYERS in {Path(__file__).name}")


def edges(graph: ImportGraph) -> list[tuple[str, str]]:
    return sorted((m, t) for m in graph.modules() for t in graph.imports(graph.file_of(m)))


def back_arrows(graph: ImportGraph) -> list[str]:
    bad = []
    for src, dst in edges(graph):
        if (src, dst) in KNOWN:
            continue
        if layer_of(dst) > layer_of(src):
            bad.append(f"{src} ({LAYERS[layer_of(src)][0]}) imports {dst} ({LAYERS[layer_of(dst)][0]})")
        elif any(fnmatch.fnmatchcase(src, a) and fnmatch.fnmatchcase(dst, b) for a, b in FORBIDDEN):
            bad.append(f"{src} imports {dst}, which it must not")
    return bad


def test_every_module_has_a_layer():
    for module in ImportGraph(ROOT).modules():
        layer_of(module)


def test_no_arrow_runs_back_up():
    assert back_arrows(ImportGraph(ROOT)) == []


def test_known_back_arrows_still_exist():
    """An exemption goes as soon as its edge does."""
    present = set(edges(ImportGraph(ROOT)))
    assert KNOWN <= present, f"remove from KNOWN: {sorted(KNOWN - present)}"


def test_required_arrows_are_absent():
    """The three the issue names, spelled out."""
    present = set(edges(ImportGraph(ROOT)))
    assert not {e for e in present if e[0] == "pipeline.train" and e[1].startswith("pipeline.report")}
    assert not {e for e in present if e[0].startswith("pipeline.report") and e[1].startswith("pipeline.data")}
    below_config = {n for n, _ in LAYERS[:[n for n, _ in LAYERS].index("config")]}
    assert not {e for e in present if LAYERS[layer_of(e[0])][0] in below_config
                and e[1] == "pipeline.config"} - KNOWN


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


def test_a_back_arrow_is_reported(tmp_path):
    g = _package(tmp_path, {"pipeline/__init__.py": "", "pipeline/errors.py": "",
                            "pipeline/train.py": "", "pipeline/config.py": "",
                            "pipeline/report/__init__.py": "def f():\n    import pipeline.data.store\n",
                            "pipeline/data/__init__.py": "", "pipeline/data/store.py": "",
                            "pipeline/models/__init__.py": "from pipeline.train import fit\n"})
    assert back_arrows(g) == ["pipeline.models (models) imports pipeline.train (run)",
                              "pipeline.report imports pipeline.data.store, which it must not"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
