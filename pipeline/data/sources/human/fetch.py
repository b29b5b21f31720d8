"""Human3.6M cannot be downloaded (registration): check the frames placed by hand, fetch
OpenSTL's two window lists."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.errors import DataError
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.human.reader import IMAGES, _assemble, _instructions, _windows
from pipeline.data.sources.human.settings import LISTS, HumanSettings


def fetch(raw_dir: Path, settings: Any) -> list:
    """Check the manually placed frames; download OpenSTL's window lists if they are missing."""
    from pipeline.data.download import download

    s = data_settings(HumanSettings, settings)
    raw_dir = Path(raw_dir)
    images = raw_dir / IMAGES
    if not images.is_dir() or not any(images.glob("*.jpg")):
        raise DataError(_instructions(raw_dir, f"{images} is missing or holds no .jpg file"))
    results = [download(getattr(s, f"{split}_list_url"), raw_dir / name) for split, name in LISTS.items()]
    for split in LISTS:
        _assemble(raw_dir, _windows(raw_dir / LISTS[split]), s)  # every listed frame must exist
    return results
