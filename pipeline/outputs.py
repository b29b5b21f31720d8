"""Stage outputs are replaced, never lost: a stage writes into a scratch folder beside its output
and swaps the result in only once complete. DVC is told not to delete these outputs before the
stage runs (``persist``), so a failed or killed stage leaves the previous ones in place; each
stage removes its own stale scratch folders when it starts.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def clean_stale(path: Path, *, keep: Path | None = None) -> None:
    """Remove scratch folders/files a killed run left beside ``path`` (``.<name>.tmp*``), except ``keep``."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        if keep is not None and stale == keep:
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def scratch(path: Path, *, tag: str | None = None) -> Path:
    """A fresh (or, with ``tag``, a stable and so resumable) scratch path beside ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{tag or uuid.uuid4().hex[:8]}")


def replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final``; the previous ``final`` stays until ``new`` is in place."""
    final = Path(final)
    old = None
    if final.exists():
        old = scratch(final)
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def replace_run_outputs(scratch_dir: Path, out: Path, files: tuple[str, ...]) -> None:
    """Move a finished run from ``scratch_dir/artifacts`` into ``out``: ``files`` (the DVC metrics
    and plots) beside ``out/artifacts``, the rest as ``out/artifacts``."""
    out.mkdir(parents=True, exist_ok=True)
    art = scratch_dir / "artifacts"
    for name in files:
        os.replace(art / name, scratch_dir / name)
    replace_dir(art, out / "artifacts")
    for name in files:
        os.replace(scratch_dir / name, out / name)
    shutil.rmtree(scratch_dir, ignore_errors=True)
