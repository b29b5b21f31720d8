"""What was submitted: ``.slurm/jobs.json``, one entry per experiment (its latest job), with the
fingerprints of the train stage's dependencies at submission, so that ``collect`` never records
in ``dvc.lock`` a run trained on other settings, code or data than the checkout now has."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.outputs import write_text_atomic
from pipeline.slurm.jobscript import SLURM_DIR

LEDGER = SLURM_DIR / "jobs.json"


@dataclass
class Entry:
    experiment: str
    job_id: str
    submitted: str                      # UTC, ISO 8601
    script: str
    log: str
    deps: dict[str, str] = field(default_factory=dict)   # dependency path -> fingerprint
    collected: bool = False


def read(root: Path) -> dict[str, Entry]:
    path = root / LEDGER
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: Entry(**entry) for name, entry in raw["jobs"].items()}
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a job ledger written by `python -m pipeline.slurm submit` ({err}); "
                        f"move it away to start a new one") from None


def write(root: Path, entries: dict[str, Entry]) -> None:
    text = json.dumps({"jobs": {name: asdict(e) for name, e in sorted(entries.items())}}, indent=1)
    write_text_atomic(root / LEDGER, text + "\n")


def fingerprint(path: Path) -> str:
    """A file's SHA-256; a folder's (a Zarr store) from every file's path, size and mtime, which
    any rewrite changes, without reading gigabytes of chunks."""
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), path)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "tree:" + h.hexdigest()
    return "missing"


def changed_deps(root: Path, entry: Entry) -> list[str]:
    """The dependencies whose fingerprint moved since ``entry`` was submitted."""
    return [dep for dep, fp in entry.deps.items() if fingerprint(root / dep) != fp]
