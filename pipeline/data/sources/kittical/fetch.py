"""Fetching KittiCaltech: PredNet's KITTI hickle files and the Caltech archive's test sets."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.core.errors import DataError
from pipeline.data.sources.base import data_settings
from pipeline.data.sources.frames import find_dir
from pipeline.data.sources.kittical.reader import CACHE, CALTECH_DIR, KITTI_DIR, _kitti_dir
from pipeline.data.sources.kittical.settings import KittiCalSettings

KITTI_ARCHIVE = "kitti_data.zip"
CALTECH_ARCHIVE = "caltech_data_and_labels.zip"


def fetch(raw_dir: Path, settings: Any) -> list:
    """Download PredNet's KITTI hickle files and the Caltech archive; keep its test sets."""
    from pipeline.data.download import download, extract

    s = data_settings(KittiCalSettings, settings)
    raw_dir = Path(raw_dir)
    kitti = download(s.kitti_url, raw_dir / KITTI_ARCHIVE, sha256=s.kitti_sha256)
    target = raw_dir / KITTI_DIR
    if not kitti.cached or not (target.is_dir() and any(target.iterdir())):
        extract(kitti.path, target, overwrite=True)
    _kitti_dir(raw_dir)
    results = [kitti]

    caltech = raw_dir / CALTECH_DIR
    # OpenSTL's processed cache, when someone put it there, replaces the 10 GB archive
    have_sets = all((caltech / name).is_dir() for name in s.caltech_sets) \
        or all((caltech / name).is_file() for name in CACHE)
    if (raw_dir / CALTECH_ARCHIVE).exists() or not have_sets:
        archive = download(s.caltech_url, raw_dir / CALTECH_ARCHIVE, sha256=s.caltech_sha256)
        results.append(archive)
        if not archive.cached or not have_sets:
            full = raw_dir / "caltech_full"
            extract(archive.path, full, overwrite=True)
            try:
                _arrange_caltech(archive.path, full, caltech, s.caltech_sets, extract,
                                 f"datasets.{s.name}.data.caltech_sets")
            finally:
                shutil.rmtree(full, ignore_errors=True)  # the training sets are not used
    return results


def _arrange_caltech(archive: Path, full: Path, caltech: Path, sets: list[str], extract,
                     key: str) -> None:
    """Move the test sets (folders, or per-set tars) found in the unpacked archive to caltech/."""
    caltech.mkdir(parents=True, exist_ok=True)
    for name in sets:
        dest = caltech / name
        if dest.is_dir():
            shutil.rmtree(dest)
        folders = sorted(p for p in full.rglob(name) if p.is_dir())
        tars = sorted(p for p in full.rglob(f"{name}.tar") if p.is_file())
        if folders:
            os.replace(folders[0], dest)
        elif tars:
            tmp = caltech / f".{name}.extracting"
            extract(tars[0], tmp, overwrite=True)
            inner = find_dir(tmp, lambda d: any(f.suffix == ".seq" for f in d.iterdir()),
                             f".seq videos of {name}")
            os.replace(inner, dest)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise DataError(f"{archive}: holds no folder or tar named {name} "
                            f"({key})")
