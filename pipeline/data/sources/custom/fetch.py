"""The custom source's "download": nothing to fetch; check the user's files, hash them and point
``load`` at them."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.data.sources.base import data_settings
from pipeline.data.sources.custom.files import files, write_pointer
from pipeline.data.sources.custom.settings import CustomSettings


def fetch(raw_dir: Path | str, settings: dict) -> list:
    """Nothing to download: check that ``path`` exists, hash it, and point ``load`` at it."""
    from pipeline.data.download import DownloadResult, sha256_file

    cfg = data_settings(CustomSettings, settings)
    raw_dir = Path(raw_dir)
    path = os.path.abspath(os.path.expanduser(cfg.path))
    results = []
    for f in files(path, cfg.key("path")):
        if Path(f).is_dir():  # a Zarr store: hash its files in a stable order
            h, size = hashlib.sha256(), 0
            for p in sorted(q for q in Path(f).rglob("*") if q.is_file()):
                h.update(f"{p.relative_to(f).as_posix()}\0{sha256_file(p)}\n".encode())
                size += p.stat().st_size
            results.append(DownloadResult(Path(f), h.hexdigest(), size, Path(f).as_uri(), cached=True))
        else:
            results.append(DownloadResult(Path(f), sha256_file(f), Path(f).stat().st_size,
                                          Path(f).as_uri(), cached=True))
    write_pointer(raw_dir, path, sample=False)
    return results
