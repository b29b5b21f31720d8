"""WeatherBench 5.625° (32 x 64) ERA5 fields: WeatherBench-S (t2m, r, uv10, tcc) and WeatherBench-M.

On-disk layout (the real one, and the generated twin): ``<raw_dir>/<var>/<var>_<year>_5.625deg.nc``,
one netCDF per variable and year, holding the variable under its ERA5 short name (``t2m``, ``r``,
``u10``...) on coordinates ``time`` (hourly in WeatherBench 1), ``lat`` (32, ascending), ``lon``
(64) and, for pressure-level variables, ``level`` (hPa).

Settings (``datasets.<name>.data``; ``name`` is passed in by the caller and only used in messages)
--------------------------------------------------------------------------------------------------
``source``     "weatherbench" (ignored here).
``variables``  required, non-empty list of WeatherBench long names (keys of ``VARIABLES``), e.g.
               ``[2m_temperature]`` or ``[10m_u_component_of_wind, 10m_v_component_of_wind]``.
               Channels follow this order (variable-major, then ``levels``).
``levels``     ``null`` (default): a pressure-level variable keeps only the LAST level of its file
               (OpenSTL's rule for r; 1000 hPa in WeatherBench 1), channel name = short name.
               A list of hPa values: each pressure-level variable gives one channel per level, in
               this order, named ``<short><level>`` (``r150``...). Single-level variables ignore it.
``years``      required, ``{train: [first, last], val: [...], test: [...]}``, inclusive calendar
               years, not overlapping; within 1979-2018 (wb1) or 1959-2023 (wb2).
``T_in``, ``T_out``  required positive ints: frames in and out of a window.
``step``       hours between consecutive frames of a window (default 1). Frames are subsampled to
               this spacing before windows are cut, as OpenSTL does, so ``Prepared.step`` is 1 and
               ``attrs["frame_interval_hours"]`` records the spacing. Must be a multiple of the
               files' own interval (1 h for wb1, 6 h for wb2).
``idx_in``, ``idx_out``  optional OpenSTL frame indices of a window's inputs and targets on the
               subsampled series, relative to the last input (e.g. ``[-17, -11, -5, 0]`` and
               ``[1, 7, 13, 19]`` for WB-M); default ``-T_in+1..0`` and ``1..T_out``.
``stride``     distance between window starts, in (subsampled) frames: an int, or
               ``{train: .., val: .., test: ..}`` (default 1, as OpenSTL).
``remote``     "wb1" (default): fetch downloads the WeatherBench 1 zips from the TUM server.
               "wb2": fetch reads the WeatherBench 2 ERA5 64x32 Zarr lazily (needs ``gcsfs`` for
               ``gs://``) and writes the same per-year netCDF layout, 6-hourly.
``wb1_url``    URL template with ``{var}`` (default: the TUM server), for a mirror.
``wb2_store``  Zarr store path or URL (default: the public WeatherBench 2 store).
``time_chunk`` dask chunk length along time when reading (default 2190 native steps).

Window rule (OpenSTL's ``WeatherBenchDataset``)
-----------------------------------------------
For each split the selected years' time steps are taken, the very last one dropped and every
``step``-hours one kept counted from the first (``isel(time=slice(None, -1, step))``). In each run
of consecutive frames of length ``n`` (one run for real data; one per year in the twin, which
holds only a few hours per year) the starts are ``0, stride, ... < n - span`` with
``span = idx_out[-1] - idx_in[0] + 1``: OpenSTL's ``range(-idx_in[0], n - idx_out[-1] - 1)``
shifted to window starts, which leaves out the last complete window. WB-M is what the public code
built: hourly data subsampled to 6-hourly frames (``step: 6``), then ``idx_in [-17, -11, -5, 0]``,
``idx_out [1, 7, 13, 19]`` on that series: inputs at -102, -66, -30, 0 h, targets at +6, +42, +78,
+114 h; 1979-2015 gives Table 9's 54,019 training windows (``split_window_starts``).

Modules: ``settings`` (the schema, variables, remotes), ``layout`` (file paths, grid, writer),
``reader`` (load), ``twin`` (make_sample), ``fetch`` (the two remotes); ``grid`` one level up
holds what the custom source shares.
"""

from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.weatherbench.fetch import fetch, read_wb2
from pipeline.data.sources.weatherbench.layout import GRID, LAT, LON, write_year, year_file
from pipeline.data.sources.weatherbench.reader import load, split_window_starts
from pipeline.data.sources.weatherbench.settings import (REMOTES, VARIABLES, WB1_URL, WB2_STORE,
                                                         WeatherBenchSample, WeatherBenchSettings)
from pipeline.data.sources.weatherbench.twin import make_sample

__all__ = ["GRID", "LAT", "LON", "REMOTES", "VARIABLES", "WB1_URL", "WB2_STORE", "WeatherBenchSample",
           "WeatherBenchSettings", "fetch", "load", "make_sample", "parse_settings", "read_wb2",
           "split_window_starts", "write_year", "year_file"]


def parse_settings(settings: dict) -> WeatherBenchSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(WeatherBenchSettings, settings)


SOURCE = SOURCES.register("weatherbench")(Source(WeatherBenchSettings, WeatherBenchSample, fetch, make_sample, load))
