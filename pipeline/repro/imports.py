"""The import graph of the package, read from the source (ast), not by importing it.

Every import counts, wherever it is written: at the top, inside a function (the lazy imports that
keep torch or matplotlib off a path until needed) or under ``if TYPE_CHECKING``. Two kinds of
import that no ``import`` statement shows count too:

* a string constant naming a module of the package (``REG.register_lazy("swin",
  "pipeline.models.translators.transformers")``);
* a module name computed at run time, ``f"pipeline.data.sources.{name}"`` or
  ``f"{__name__}.{name}"`` (for ``importlib.import_module`` or a registry's ``register_lazy``):
  any module of that package may be imported, so the edges go to all of them.

A module also reads the files beside it that it names (``Path(__file__).with_name("paper.yaml")``).
``pipeline.repro.experiments`` turns the closure of a stage script into the stage's code deps in
dvc.yaml; ``tests/test_import_graph.py`` checks that no edge runs from a lower layer back up.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "pipeline"


class ImportGraph:
    """The package under ``root`` as it is on disk when first asked (answers are cached)."""

    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)
        self._files: dict[str, Path | None] = {}
        self._modules: list[str] | None = None
        self._imports: dict[Path, set[str]] = {}
        self._strings: dict[Path, set[str]] = {}

    # ------------------------------------------------------------------ modules and their files
    def modules(self) -> list[str]:
        """Every module of the package, sorted (packages by their own name)."""
        if self._modules is None:
            self._modules = sorted(self.module_of(p) for p in (self.root / PACKAGE).rglob("*.py"))
        return self._modules

    def module_of(self, path: Path) -> str:
        rel = Path(path).relative_to(self.root).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        return ".".join(parts)

    def file_of(self, module: str) -> Path | None:
        """The source file of ``module`` (a package's ``__init__.py``), None if not in the package."""
        if module not in self._files:
            self._files[module] = _file_of(self.root, module)
        return self._files[module]

    def is_package(self, module: str) -> bool:
        f = self.file_of(module)
        return f is not None and f.name == "__init__.py"

    def submodules(self, package: str) -> list[str]:
        """Every module under ``package`` (itself included), sorted."""
        return [m for m in self.modules() if m == package or m.startswith(package + ".")]

    # ------------------------------------------------------------------------------- the edges
    def imports(self, path: str | Path) -> set[str]:
        """The package's modules that the file at ``path`` imports (see the module docstring)."""
        path = Path(path)
        if path not in self._imports:
            self._imports[path] = self._read_imports(path)
        return self._imports[path]

    def _read_imports(self, path: Path) -> set[str]:
        own = self.module_of(path) if path.resolve().is_relative_to((self.root / PACKAGE).resolve()) else ""
        package = own if path.name == "__init__.py" else own.rpartition(".")[0]
        out: set[str] = set()
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Import):
                out |= {self._existing(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pipeline import tracking`: the name may be a module of its own
                subs = {f"{base}.{a.name}" for a in node.names if self.file_of(f"{base}.{a.name}")}
                out |= subs
                if len(subs) < len(node.names):
                    out.add(self._existing(base))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith(PACKAGE + ".") and self.file_of(node.value):
                    out.add(node.value)
            elif isinstance(node, ast.JoinedStr):
                prefix = _fstring_prefix(node, own)
                if prefix is not None and self.is_package(prefix[:-1]):
                    out |= set(self.submodules(prefix[:-1]))
        out.discard("")
        return {m for m in out if m.split(".")[0] == PACKAGE and m != own}

    def data_files(self, path: str | Path) -> set[Path]:
        """Non-Python files beside ``path`` that it names in a string constant."""
        path = Path(path)
        beside = {p.name: p for p in path.parent.iterdir() if p.is_file() and p.suffix != ".py"}
        if path not in self._strings:
            self._strings[path] = {n.value for n in ast.walk(_parse(path))
                                   if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        return {beside[n] for n in self._strings[path] & set(beside)}

    def closure(self, start: str | Path) -> set[Path]:
        """Every file that running ``start`` (a script or a module's file) may load from the
        package: modules imported transitively, their parent packages' ``__init__``, and the data
        files they name. Paths relative to the root, ``start`` itself included."""
        todo = [Path(start)]
        seen: set[Path] = set()
        while todo:
            path = todo.pop()
            rel = path.relative_to(self.root) if path.is_absolute() else path
            if rel in seen:
                continue
            seen.add(rel)
            full = self.root / rel
            seen |= {p.relative_to(self.root) for p in self.data_files(full)}
            for module in self.imports(full):
                parts = module.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                    f = self.file_of(".".join(parts[:i]))
                    if f is not None:
                        todo.append(f.relative_to(self.root))
        return seen

    def _existing(self, module: str) -> str:
        """``module`` if it is a module of the package, else its longest prefix that is
        (``from pipeline.data.store import read_meta`` names a module; ``import pipeline.x.y`` too)."""
        parts = module.split(".")
        while parts and self.file_of(".".join(parts)) is None:
            parts.pop()
        return ".".join(parts)


def _file_of(root: Path, module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE or not all(p.isidentifier() for p in parts):
        return None
    base = root.joinpath(*module.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _parse(path: Path) -> ast.Module:
    return ast.parse(Path(path).read_text(), filename=str(path))


def _fstring_prefix(arg: ast.JoinedStr, own: str) -> str | None:
    """The package part of a computed module name: ``f"pipeline.data.sources.{x}"`` ->
    ``pipeline.data.sources.``, ``f"{__name__}.{x}"`` in module ``m`` -> ``m.``; else None."""
    prefix = ""
    for part in arg.values:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            prefix += part.value
        elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) \
                and part.value.id == "__name__" and own:
            prefix += own
        else:
            break
    return prefix if prefix.endswith(".") else None
