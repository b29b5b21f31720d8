"""Fetching TaxiBJ: OpenSTL's ``taxibj_dataset.zip``, unpacked next to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import find_dir
from pipeline.data.sources.taxibj.reader import FILE
from pipeline.data.sources.taxibj.settings import TaxiBJSettings

ARCHIVE = "taxibj_dataset.zip"


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``taxibj_dataset.zip`` into ``raw_dir`` and unpack ``dataset.npz``."""
    from pipeline.data.download import fetch_archive

    s = data_settings(TaxiBJSettings, settings)
    raw_dir = Path(raw_dir)
    target = raw_dir / "taxibj_dataset"
    result = fetch_archive(s.url, raw_dir / ARCHIVE, target, sha256=s.sha256)
    find_dir(target, lambda d: (d / FILE).is_file(), f"{FILE} inside {result.path.name}")
    return [result]
