"""DVC as ``make repro`` runs it: with its YAML files (dvc.lock above all) written atomically.

DVC rewrites the whole dvc.lock in place after every stage (open "w", then write): a ``kill -9``
in that window left it empty or cut, and every DVC command then refused to run (issue 27). Here
DVC's one YAML writer writes a temporary file beside the target, syncs it and renames it over
the target (``os.replace``: atomic on one filesystem), so a killed run leaves either the previous
lock or the new one, whole. A temporary left by a killed writer is removed at the next start.

    python -m pipeline.repro.lock_guard repro ...     # what pipeline.repro.progress runs: `dvc repro ...`

Plain ``dvc`` commands write as DVC does; the README says so.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

SUFFIX = ".lock-guard.tmp"  # <target>.<pid>.lock-guard.tmp, beside the target


def atomic_dump_data(path, data: Any, dumper, fs=None, **dumper_args) -> None:
    """DVC's ``_dump_data`` (``dvc.utils.serialize._common``), written to a temporary file that
    then replaces ``path``; a non-local filesystem is left to DVC's own writer."""
    if fs is not None and getattr(fs, "protocol", "local") != "local":
        return _ORIGINAL(path, data, dumper, fs=fs, **dumper_args)
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}{SUFFIX}"
    try:
        with open(tmp, "w+", encoding="utf-8") as fd:
            dumper(data, fd, **dumper_args)
            fd.flush()
            os.fsync(fd.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return None


def clean_stale(folder: str | Path = ".") -> list[Path]:
    """Remove the temporaries of writers that are gone (killed); returns what it removed."""
    gone = []
    for tmp in Path(folder).glob(f"*{SUFFIX}"):
        pid = tmp.name[: -len(SUFFIX)].rpartition(".")[2]
        if pid.isdigit() and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        gone.append(tmp)
    return gone


def install() -> None:
    """Route DVC's YAML writes (dvc.lock, dvc.yaml, params edits) through ``atomic_dump_data``."""
    global _ORIGINAL
    from dvc.utils.serialize import _common, _yaml

    if _common._dump_data is not atomic_dump_data:
        _ORIGINAL = _common._dump_data
        _common._dump_data = atomic_dump_data  # modify_yaml's writer
        _yaml._dump_data = atomic_dump_data    # dump_yaml's


def main(argv: list[str] | None = None) -> int:
    clean_stale(".")
    install()
    from dvc.cli import main as dvc_main

    return dvc_main(sys.argv[1:] if argv is None else argv)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ORIGINAL = None

if __name__ == "__main__":
    raise SystemExit(main())
