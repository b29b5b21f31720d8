"""Fetching KTH: OpenSTL's ``kth_action.zip``, unpacked next to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import fetch_release
from pipeline.data.sources.kth.reader import ACTIONS, has_actions
from pipeline.data.sources.kth.settings import KTHSettings

ARCHIVE = "kth_action.zip"


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download OpenSTL's ``kth_action.zip`` into ``raw_dir`` and unpack it next to it."""
    s = data_settings(KTHSettings, settings)
    return fetch_release(raw_dir, s.url, s.sha256, ARCHIVE, "kth_action", has_actions,
                         f"the KTH action folders {list(ACTIONS)}")
