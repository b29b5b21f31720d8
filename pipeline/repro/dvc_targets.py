"""The stages a user named on the DVC command line that runs this process (``dvc exp run -S
train.epochs=3 train_t2m_svq`` names ``train_t2m_svq``), so that the ``params`` stage can refuse a
change that a named run would not take, before DVC reaches that run's stage.

DVC tells a stage nothing about the command that started it, so this walks up the process tree
(Linux ``/proc``) to the ``dvc repro`` or ``dvc exp run`` process and parses its arguments with
DVC's own parser. Where there is no such ancestor (a queued or ``--temp`` experiment runs in a
worker; the stage server runs ``make repro``'s stages; another OS) it answers None: nothing named.
"""
from __future__ import annotations

import os
from pathlib import Path

MAX_DEPTH = 12  # processes between a stage and DVC: sh -c, stages/python, a torchrun at most


def named_stages(pid: int | None = None) -> list[str] | None:
    """Stage names the nearest ``dvc repro`` / ``dvc exp run`` ancestor of ``pid`` (default: this
    process) was given, ``dvc.yaml:`` prefixes dropped; [] when it named none (the whole pipeline);
    None when no such ancestor is found."""
    pid = os.getpid() if pid is None else pid
    for _ in range(MAX_DEPTH):
        argv = _cmdline(pid)
        if argv is None:
            return None
        found = _dvc_targets(argv)
        if found is not None:
            return found
        pid = _parent(pid)
        if pid is None or pid <= 1:
            return None
    return None


def named_experiments(pid: int | None = None) -> set[str] | None:
    """The experiments whose train stage (``train_<name>``) the DVC command named; None as above."""
    stages = named_stages(pid)
    if stages is None:
        return None
    return {s[len("train_"):] for s in stages if s.startswith("train_")}


def _dvc_targets(argv: list[str]) -> list[str] | None:
    """The targets of a DVC command line (``python .venv/bin/dvc exp run ...``, ``python -m dvc
    repro ...``, ``dvc repro ...``); None when ``argv`` is no ``dvc repro`` or ``dvc exp run``."""
    for i, arg in enumerate(argv[:3]):
        if Path(arg).name == "dvc" and (i == 0 or argv[i - 1] != "-c"):
            rest = argv[i + 1:]
            break
    else:
        return None
    if not (rest[:1] == ["repro"] or rest[:2] in (["exp", "run"], ["experiments", "run"])):
        return None
    try:
        from dvc.cli import parse_args
        args = parse_args(rest)
    except (SystemExit, Exception):  # noqa: BLE001 - an unparsable command line names nothing we know
        return None
    targets = getattr(args, "targets", None) or []
    return [t.rpartition(":")[2] for t in targets]


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]) if len(fields) > 1 else None
