"""Where the custom source's files are: the user's path (a file, a glob, a Zarr store) or the
twin, chosen by the pointer ``raw_dir/custom.json`` that ``fetch`` and ``make_sample`` write."""
from __future__ import annotations

import glob
import json
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.outputs import write_text_atomic

POINTER = "custom.json"


def is_zarr(path: str) -> bool:
    p = Path(path)
    markers = ("zarr.json", ".zgroup", ".zarray")
    return p.suffix == ".zarr" or (p.is_dir() and any((p / m).exists() for m in markers))


def resolve(raw_dir: Path, path: str) -> tuple[str, bool]:
    """(path or glob to read, whether it is the generated twin): the pointer's, else ``path``."""
    pointer = raw_dir / POINTER
    if pointer.is_file():
        try:
            rec = json.loads(pointer.read_text(encoding="utf-8"))
            found = Path(rec["path"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{pointer}: not a valid custom-source record ({exc}); delete it and "
                            f"run fetch or make_sample again") from exc
        return str(found if found.is_absolute() else raw_dir / found), bool(rec.get("sample", False))
    return path, False


def write_pointer(raw_dir: Path, path: str, sample: bool) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(raw_dir / POINTER, json.dumps({"path": path, "sample": sample}, indent=2) + "\n")


def files(path: str, what: str) -> list[str]:
    if is_zarr(path):
        if not Path(path).exists():
            raise DataError(f"{what}: Zarr store {path} does not exist")
        return [path]
    files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if Path(path).is_file() else [])
    if not files:
        raise DataError(f"{what}: no netCDF file matches {path}")
    return files

