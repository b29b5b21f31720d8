"""Fetching TaxiBJ: OpenSTL's ``taxibj_dataset.zip``, unpacked next to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import fetch_release
from pipeline.data.sources.taxibj.reader import FILE
from pipeline.data.sources.taxibj.settings import TaxiBJSettings

ARCHIVE = "taxibj_dataset.zip"


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``taxibj_dataset.zip`` into ``raw_dir`` and unpack ``dataset.npz``."""
    s = data_settings(TaxiBJSettings, settings)
    return fetch_release(raw_dir, s.url, s.sha256, ARCHIVE, "taxibj_dataset",
                         lambda d: (d / FILE).is_file(), FILE)
