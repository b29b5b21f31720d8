"""Dataset sources: one module per dataset family, looked up by the name in params.yaml.

Each source module provides three functions, all taking the dataset's ``data`` settings
(``datasets.<name>.data`` in params.yaml, a dict) and a raw folder of its own:

* ``fetch(raw_dir, settings) -> list[DownloadResult]``: download the real files (or check that
  manually obtained ones are in place) into ``raw_dir``, in the layout the real source ships.
* ``make_sample(raw_dir, settings, sample, seed) -> None``: write a small generated twin in the
  *same on-disk format and layout*; ``sample`` holds its size knobs (``datasets.<name>.sample``).
* ``load(raw_dir, settings) -> Prepared``: read the raw files (real or twin: the same reader)
  into splits of frames and window starts (see ``pipeline.data.prepared``).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from pipeline.errors import ConfigError

# name in params.yaml -> module under pipeline.data.sources
SOURCES = {
    "weatherbench": "weatherbench",
    "custom": "custom",
    "taxibj": "taxibj",
    "kth": "kth",
    "human": "human",
    "kittical": "kittical",
}


def get_source(name: str) -> ModuleType:
    if name not in SOURCES:
        raise ConfigError(f"datasets.*.source: unknown source {name!r}; expected one of {sorted(SOURCES)}")
    return importlib.import_module(f"pipeline.data.sources.{SOURCES[name]}")
