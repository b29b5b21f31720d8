"""``datasets.<name>.data`` of the TaxiBJ source (keys documented in ``taxibj/__init__.py``) and
its twin's ``datasets.<name>.sample`` knobs."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.sources.base import DataSettings, Fraction, Sha256, Url

URL = "https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/taxibj_dataset.zip"


class TaxiBJSettings(DataSettings):
    name: str = "taxibj"
    T_in: PositiveInt
    T_out: PositiveInt
    val_fraction: Fraction
    url: Url = URL
    sha256: Sha256 = None


class TaxiBJSample(Settings):
    train_samples: Annotated[int, Field(ge=2)] = 40
    test_samples: PositiveInt = 10
