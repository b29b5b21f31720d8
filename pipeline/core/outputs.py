"""Outputs are replaced, never lost: everything the project writes goes to a scratch path beside
its target and is swapped in only once complete (:func:`atomic`, the one place that does it). DVC
is told not to delete stage outputs before the stage runs (``persist``), so a failed or killed
stage leaves the previous ones in place; each stage removes its own stale scratch folders when it
starts.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.errors import ProjectError


@contextmanager
def atomic(path: Path, *, suffix: str = "", fsync: bool = False) -> Iterator[Path]:
    """A scratch path beside ``path`` to write a file or a folder into. When the block ends
    without error it replaces ``path`` (a folder through :func:`replace_dir`); in any case no
    scratch is left behind. ``suffix`` for writers that insist on one (``np.savez``: ``.npz``);
    ``fsync`` flushes a file to disk first (a checkpoint that must survive a power cut)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = scratch(path, suffix=suffix)
    try:
        yield tmp
        if tmp.is_dir():
            replace_dir(tmp, path)
        else:
            if fsync:
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        remove(tmp)


def write_text_atomic(path: Path, text: str, *, fsync: bool = False) -> None:
    with atomic(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_or_check(path: Path, text: str, *, check: bool, command: str, summary: str) -> int:
    """The end of a command that generates a committed file (dvc.yaml, reports/fidelity.md): with
    ``check``, exit status 1 and one line naming ``command`` when ``path`` does not hold ``text``;
    else ``path`` written and ``wrote <path>: <summary>`` printed. Returns the exit status."""
    path = Path(path)
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run `{command}`", file=sys.stderr)
            return 1
        return 0
    write_text_atomic(path, text)
    print(f"wrote {path}: {summary}")
    return 0


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``path`` for the block, so that two
    processes never write ``path`` and its scratch at once. Where another process holds it:
    ProjectError at once, naming ``what`` and the holder's pid (waiting would only redo its work).
    The kernel drops the lock when its holder dies, however it dies; a clean exit removes the file."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "not yet written"
            handle.close()
            raise ProjectError(f"{what} is already running (pid {holder}, holding {lock}); "
                               f"wait for it to end, or stop it") from None
        try:  # the holder before us may have removed the file while we opened it: lock the one at the path
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)  # still holding it, so nobody is between open and flock on this file
        handle.close()


def clean_stale(path: Path, *, keep: Path | None = None) -> None:
    """Remove scratch folders/files a killed run left beside ``path`` (``.<name>.tmp*``), except ``keep``."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        if keep is None or stale != keep:
            remove(stale)


def scratch(path: Path, *, tag: str | None = None, suffix: str = "") -> Path:
    """A fresh (or, with ``tag``, a stable and so resumable) scratch path beside ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{tag or uuid.uuid4().hex[:8]}{suffix}")


def replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final`` (a folder or a file); the previous ``final`` stays until
    ``new`` is in place, and comes back if it cannot be put there."""
    final = Path(final)
    old = None
    if final.exists() or final.is_symlink():
        old = scratch(final)
        os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        remove(old)


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


def remove(path: Path) -> None:
    """A file or folder gone (missing already: fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
