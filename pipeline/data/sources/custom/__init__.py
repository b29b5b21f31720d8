"""The user's own gridded data: any netCDF file(s) or Zarr store with a time axis and a 2-D grid.

Settings (``datasets.<name>.data``; ``name`` is passed in by the caller and only used in messages)
--------------------------------------------------------------------------------------------------
``source``     "custom" (ignored here).
``path``       required: a netCDF file, a glob of netCDF files (read with ``open_mfdataset``,
               concatenated along time in name order) or a Zarr store (``*.zarr`` or a folder
               with Zarr metadata, read with ``open_zarr``). Relative paths are relative to the
               working directory (the project root when the pipeline runs).
``variables``  required, non-empty list of variable names in the files; channels follow it.
``time``       name of the time coordinate (default "time").
``splits``     required, ``{train: [start, end], val: [...], test: [...]}`` as dates in the
               file's own calendar (``2010``, ``2010-03``, ``2010-02-30`` on a 360-day axis,
               ``2010-01-01T06:00``); both ends inclusive (a bare year, month or day covers all
               of it); splits must not overlap.
``T_in``, ``T_out``  required positive ints.
``step``       frames of a window are ``step`` time steps of the data apart (default 1); frames are
               subsampled to that spacing from each split's first time, so ``Prepared.step`` is 1.
``stride``     distance between window starts in subsampled frames: int or per split (default 1).
``levels``     optional list of values of ``level_dim`` to keep; a variable with that dim gives
               one channel per level named ``<var><level>``. Without ``levels`` a variable may
               have that dim only with length 1.
``level_dim``  name of the level dimension (default "level").
``time_chunk`` dask chunk length along time (default 1024).

``box``        optional ``{lat: [south, north], lon: [west, east]}`` (degrees; either may be
               left out): keep only that part of the grid. Needs 1-D coordinates named
               ``lat``/``latitude`` and ``lon``/``longitude``; ``west > east`` wraps through the
               date line (``[350, 10]``).

Every variable must be ``(time, [level_dim], y, x)`` with the same 2-D grid (any dim names, any
size: the model pads what its stride does not divide, ``model.pad``). Time may be decoded to
numpy dates or cftime dates in any CF calendar (``pipeline.data.calendar``). Inside each split
the time axis must be strictly increasing and regular: the same duration every step (hourly,
daily), or for monthly/annual data the same number of calendar months; gaps between splits are
fine. All windows that fit are used: ``window_starts(n, T_in, T_out, 1, stride)``.

Which files ``load`` reads: ``fetch`` (checks ``path``, hashes the files) and ``make_sample``
(writes a small twin into ``raw_dir``) both record their choice in ``raw_dir/custom.json``;
without that file ``load`` reads ``path`` directly.

Modules: ``settings`` (the schema), ``files`` (paths and the pointer), ``reader`` (load),
``twin`` (make_sample), ``fetch``.
"""

from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.custom.fetch import fetch
from pipeline.data.sources.custom.reader import channel_arrays, load, open_files
from pipeline.data.sources.custom.settings import Box, CustomSample, CustomSettings
from pipeline.data.sources.custom.twin import make_sample

__all__ = ["Box", "CustomSample", "CustomSettings", "channel_arrays", "fetch", "load", "make_sample",
           "open_files", "parse_settings"]


def parse_settings(settings: dict) -> CustomSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(CustomSettings, settings)


SOURCE = SOURCES.register("custom")(Source(CustomSettings, CustomSample, fetch, make_sample, load))
