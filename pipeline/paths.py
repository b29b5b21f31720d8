"""Names that become paths: one strict pattern, and every path built from a name kept inside
its folder. Experiment and dataset names end up in folder names (``runs/<exp>``,
``data/processed/<ds>.zarr``) and in DVC stage commands, so ``..``, ``a/b`` or ``x;true`` must
never get that far."""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_name(key: str, name: object) -> str:
    """``name`` if it is letters, digits, ``_``, ``-`` and ``.`` (not ``.`` or ``..``)."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"{key}: invalid name {name!r}; expected letters, digits, '_', '-' or '.' "
                          f"(not '.' or '..')")
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
