"""TaxiBJ as OpenSTL ships it (``taxibj_dataset.zip`` -> ``dataset.npz``): 4 -> 4 crowd flows.

Raw layout: ``<raw_dir>/dataset.npz`` (also found one or two folders down, wherever the zip put
it) holding ``X_train``, ``Y_train``, ``X_test``, ``Y_test``, each ``(N, T, 2, 32, 32)``: T_in
input and T_out target maps of inflow and outflow, min-max normalised to [-1, 1]. Each sample is
already cut; consecutive samples may be overlapping slices of one half-hourly series.

Rules (OpenSTL ``openstl/datasets/dataloader_taxibj.py``):

* A sample is ``concat(X[i], Y[i])`` along time: T_in + T_out frames, one window per sample,
  so a split's frames are its samples laid end to end and ``starts = arange(N) * (T_in+T_out)``.
* OpenSTL feeds ``(x + 1) / 2``: stored here as float32 in the file's [-1, 1] units with fixed
  scaling offset -1, scale 2 per channel; metrics in the model's [0, 1] space.
* Splits: OpenSTL trains on all of train and validates on test. Here validation is a held-out
  slice of the END of train (``val_fraction`` of the train samples, at least one), and the
  ``T_in + T_out - 1`` train samples just before it are dropped, so that no frame of a
  validation sample also appears in a training sample when samples are stride-1 slices of the
  series. Test is OpenSTL's test set unchanged.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "taxibj"), ``source`` is ignored):

* ``T_in``, ``T_out``: must equal the file's X and Y lengths (4 and 4; OpenSTL asserts the same).
* ``val_fraction``: fraction of train samples held out at its end for validation (e.g. 0.1).
* ``url`` (default: OpenSTL's v0.1.0 release of ``taxibj_dataset.zip``), ``sha256`` (default none).

Sample knobs (``datasets.<name>.sample``, optional): ``train_samples`` (default 40),
``test_samples`` (default 10). The twin is a half-hourly series of a fixed city's crowd flows with
rush hours, weekends and Poisson count noise (``_city_flows``), starting on a Wednesday, min-max
normalised like the release, cut into stride-1 samples, saved with ``np.savez_compressed`` (same
keys and shapes, dtype float32).

Modules: ``settings`` (the schema), ``reader`` (load), ``twin`` (make_sample), ``fetch``.
"""
from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.taxibj.fetch import ARCHIVE, fetch
from pipeline.data.sources.taxibj.reader import CHANNELS, FILE, GRID, KEYS, NAME, load
from pipeline.data.sources.taxibj.settings import TaxiBJSample, TaxiBJSettings, URL
from pipeline.data.sources.taxibj.twin import make_sample

__all__ = ["ARCHIVE", "CHANNELS", "FILE", "GRID", "KEYS", "NAME", "TaxiBJSample", "TaxiBJSettings",
           "URL", "fetch", "load", "make_sample", "parse_settings"]


def parse_settings(settings: dict) -> TaxiBJSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(TaxiBJSettings, settings)


SOURCE = SOURCES.register("taxibj")(Source(TaxiBJSettings, TaxiBJSample, fetch, make_sample, load))
