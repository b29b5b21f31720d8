"""Code digests: one small file per stage kind, ``code_digests/<kind>.md5``, listing the md5 of
every file that kind's stage script may load (its import closure, ``pipeline.repro.imports``), in the
format of ``md5sum``.

Every train stage runs the same code, so listing ~40 code files per stage made dvc.lock ~40 x 5
lines per stage longer, and DVC re-parses and rewrites the whole lock after each stage (pure-Python
round-trip YAML: seconds per stage). Instead one cheap ``code`` stage depends on the code of all
kinds and writes the digests; every other stage depends on its kind's digest file. The precision
is the same: a file of the train closure changes the train digest (the train stages re-run); a
report-only file changes only the report digest.

    python stages/code.py            # what the `code` stage runs: rewrite code_digests/*.md5
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.core.outputs import write_text_atomic
from pipeline.core.paths import CODE_DIGESTS
from pipeline.repro.imports import ImportGraph

KINDS = ("params", "download", "preprocess", "reference", "train", "report")
INTERPRETER = "stages/python"  # the wrapper every stage command starts with


def script(kind: str) -> str:
    return f"stages/{kind}.py"


def digest_path(kind: str, folder: Path = CODE_DIGESTS) -> Path:
    if kind not in KINDS:
        raise ValueError(f"code digest: unknown stage kind {kind!r}; expected one of {', '.join(KINDS)}")
    return folder / f"{kind}.md5"


def stage_files(script_path: str, root: Path = Path("."), graph: ImportGraph | None = None) -> set[str]:
    """The script, the interpreter wrapper and every file of the package the script may load."""
    graph = graph or ImportGraph(root)
    return {p.as_posix() for p in graph.closure(Path(script_path))} | {INTERPRETER}


def digest_text(kind: str, root: Path = Path("."), graph: ImportGraph | None = None) -> str:
    """``<md5>  <path>`` per file of the kind's closure, sorted by path: deterministic, and a
    reader (or ``md5sum -c``) can see which file changed."""
    files = sorted(stage_files(script(kind), root, graph))
    return "".join(f"{hashlib.md5((Path(root) / f).read_bytes()).hexdigest()}  {f}\n" for f in files)


def write_digests(root: Path = Path("."), folder: Path | None = None) -> list[Path]:
    """Every kind's digest written (atomically) under ``root/folder``; returns the paths."""
    root = Path(root)
    folder = root / (folder or CODE_DIGESTS)
    graph = ImportGraph(root)
    written = []
    for kind in KINDS:
        path = digest_path(kind, folder)
        write_text_atomic(path, digest_text(kind, root, graph))
        written.append(path)
    return written
