"""Dataset sources: one package per dataset family, looked up by the name in params.yaml.

Each source provides three functions, all taking the dataset's ``data`` settings
(``datasets.<name>.data`` in params.yaml, validated by the source's ``settings.py`` schema) and a
raw folder of its own:

* ``fetch(raw_dir, settings) -> list[DownloadResult]``: download the real files (or check that
  manually obtained ones are in place) into ``raw_dir``, in the layout the real source ships.
* ``make_sample(raw_dir, settings, sample, seed) -> None``: write a small generated twin in the
  *same on-disk format and layout*; ``sample`` holds its size knobs (``datasets.<name>.sample``).
* ``load(raw_dir, settings) -> Prepared``: read the raw files (real or twin: the same reader)
  into splits of frames and window starts (see ``pipeline.data.prepared``).

A source's package registers its ``base.Source`` (the settings schemas and the three functions)
with ``SOURCES.register(name)``; the lines below name the package to import on first use, so a
run imports only the source it reads. Adding a source is one package plus its name here.
"""
from __future__ import annotations

from pipeline.core.plugins import Registry

SOURCES: Registry = Registry("source", key="datasets.*.source")
for _name in ("weatherbench", "custom", "taxibj", "kth", "human", "kittical"):
    SOURCES.register_lazy(_name, f"pipeline.data.sources.{_name}")


def get_source(name: str):
    """The registered source ``name`` (ConfigError naming ``datasets.*.source`` if unknown)."""
    return SOURCES.get(name)
