"""Where everything lives, in one place, and names that become paths.

    <data.root>/raw/<dataset>/<source>/    raw files: ``sample`` twins and ``remote`` downloads side
                                           by side, so switching profile never deletes a download
    <data.root>/processed/<dataset>.zarr   the store the preprocess stage writes
    runs/<experiment>/                     the committed record of a train stage (pipeline/training/record_files.py)
    runs/reference_<dataset>/              the record of a reference stage
    reports/                               README, metrics; tables and figures (pipeline/report/folders.py)
    code_digests/<kind>.md5                the md5 of each file a stage kind runs (pipeline/repro/code_digest.py)

Experiment and dataset names end up in folder names and in DVC stage commands, so one strict
pattern holds for them and every path built from a name is kept inside its folder: ``..``,
``a/b``, ``x;true`` or ``--help`` never get that far.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError, shown

# The checkout this package runs from (its code, params.yaml, dvc.yaml); the workspace a run
# logs beside may differ under `dvc exp run --temp` (repo_root)
CHECKOUT = Path(__file__).resolve().parents[2]

# not starting with '-': a stage script would read `--help` or `-x` as an option
NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")

RUNS = Path("runs")
REPORTS = Path("reports")
REPORT_README = REPORTS / "README.md"
REPORT_METRICS = REPORTS / "metrics.json"  # the headline cells: DVC's metrics file
FIDELITY = REPORTS / "fidelity.md"
# not under runs/: the report stage depends on runs/ as a whole
CODE_DIGESTS = Path("code_digests")


def check_name(key: str, name: object) -> str:
    """``name`` if it is letters, digits, ``_``, ``-`` and ``.`` (not ``.`` or ``..``, not starting
    with ``-``)."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"{key}: invalid name {shown(name)}; expected letters, digits, '_', '-' or '.' "
                          f"(not '.' or '..', not starting with '-')")
    return name


def inside(folder: str | Path, *parts: str) -> Path:
    """``folder/parts...``, refused unless it resolves to a path strictly inside ``folder``."""
    folder = Path(folder)
    path = folder.joinpath(*parts)
    base = folder.resolve()
    target = path.resolve()
    if target == base or base not in target.parents:
        raise ConfigError(f"{path}: resolves outside its folder {folder}")
    return path


def raw_root(params: Mapping[str, Any], ds: str, root: Path = Path(".")) -> Path:
    """``<data.root>/raw/<ds>``: every source's raw files of a dataset (the download stage's output)."""
    return inside(root / params["data"]["root"] / "raw", check_name("dataset", ds))


def raw_dir(params: Mapping[str, Any], ds: str, source: str, root: Path = Path(".")) -> Path:
    """``<data.root>/raw/<ds>/<source>`` (``source``: sample or remote)."""
    return inside(raw_root(params, ds, root), check_name("data source", source))


def store_path(params: Mapping[str, Any], ds: str, root: Path = Path(".")) -> Path:
    return inside(root / params["data"]["root"] / "processed", f"{check_name('dataset', ds)}.zarr")


def run_dir(exp: str, runs: Path = RUNS) -> Path:
    return inside(runs, check_name("experiment", exp))


def reference_dir(ds: str, runs: Path = RUNS) -> Path:
    return inside(runs, f"reference_{check_name('dataset', ds)}")


def repo_root(start: Path | None = None) -> Path:
    """The project root, seen from the workspace or from a DVC temporary experiment copy."""
    here = (start or Path.cwd()).resolve()
    parts = here.parts
    if ".dvc" in parts:  # .dvc/tmp/exps/<tmp>/...: log next to the real repository
        return Path(*parts[: parts.index(".dvc")])
    for p in (here, *here.parents):
        if (p / "params.yaml").exists() and (p / "pipeline").is_dir():
            return p
    return here
