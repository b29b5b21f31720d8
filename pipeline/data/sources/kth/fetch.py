"""Fetching KTH: OpenSTL's ``kth_action.zip``, unpacked next to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import find_dir
from pipeline.data.sources.kth.reader import _has_actions, ACTIONS
from pipeline.data.sources.kth.settings import KTHSettings

ARCHIVE = "kth_action.zip"


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``kth_action.zip`` into ``raw_dir`` and unpack it next to it."""
    from pipeline.data.download import fetch_archive

    s = data_settings(KTHSettings, settings)
    raw_dir = Path(raw_dir)
    target = raw_dir / "kth_action"
    result = fetch_archive(s.url, raw_dir / ARCHIVE, target, sha256=s.sha256)
    find_dir(target, _has_actions, f"the KTH action folders {list(ACTIONS)}")
    return [result]
