"""The report's folders (params.yaml ``report:``): where its tables and figures go.

Both are folders of the repository, given relative to its root: the stage writes there and DVC
tracks them as outputs, so a folder outside (``/home/me/figures``, ``../x``, a link that leads
out) is refused, and so is the repository itself or its ``.git``/``.dvc``. The stage writes and
deletes only its own files there (``pipeline.report.build``).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator

from pipeline.core.errors import ConfigError
from pipeline.core.paths import REPORTS, inside
from pipeline.core.schema import Settings, expected, parse


def _in_repository(text: str) -> str:
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts or path.parts[:1] in ((), (".git",), (".dvc",)) \
            or "\\" in text:
        raise expected("a folder inside the repository, relative to its root (e.g. reports/figures)")
    return path.as_posix()


Folder = Annotated[str, AfterValidator(_in_repository)]


class ReportSettings(Settings):
    tables_dir: Folder = (REPORTS / "tables").as_posix()
    figures_dir: Folder = (REPORTS / "figures").as_posix()


def report_settings(params: Mapping[str, Any]) -> ReportSettings:
    """params.yaml's ``report:`` validated (absent or null: the defaults)."""
    return parse(ReportSettings, params.get("report") or {}, "report")


def report_dirs(params: Mapping[str, Any], root: Path = Path(".")) -> tuple[Path, Path]:
    """The report's tables and figures folders, relative to the repository ``root``; refused where
    a link makes one resolve outside it, or where it is a file."""
    settings = report_settings(params)
    out = []
    for key, folder in (("tables_dir", settings.tables_dir), ("figures_dir", settings.figures_dir)):
        try:
            path = inside(root, folder)
        except ConfigError:
            raise ConfigError(f"report.{key}: {folder!r} resolves outside the repository {Path(root).resolve()}") \
                from None
        if path.exists() and not path.is_dir():
            raise ConfigError(f"report.{key}: {folder!r} is a file; expected a folder")
        out.append(Path(folder))
    return out[0], out[1]
