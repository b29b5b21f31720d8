"""The source registry and the settings machinery every source shares."""
from __future__ import annotations

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.schema import PositiveInt, Settings
from pipeline.data.sources import SOURCES, get_source
from pipeline.data.sources.base import DataSettings, Sha256, SplitStride, Stride, Url, data_settings, sample_settings


def test_every_source_is_registered_with_the_three_functions():
    assert SOURCES.names() == sorted(["custom", "human", "kittical", "kth", "taxibj", "weatherbench"])
    for name in SOURCES.names():
        source = get_source(name)
        assert all(callable(getattr(source, f)) for f in ("fetch", "make_sample", "load")), name


def test_unknown_source_names_the_key():
    with pytest.raises(ConfigError, match=r"datasets\.\*\.source: unknown source 'era6'; expected one of custom"):
        get_source("era6")


class Demo(DataSettings):
    name: str = "demo"
    T_in: PositiveInt
    url: Url = "https://example.org/a.zip"
    sha256: Sha256 = None
    stride: Stride = SplitStride()


class DemoSample(Settings):
    frames: PositiveInt = 4


@pytest.mark.parametrize("values, message", [
    ({"T_in": 0}, r"^datasets\.demo\.data\.T_in: expected a value > 0, got 0$"),
    ({"name": "bj", "T_in": 1, "colour": 1}, r"^datasets\.bj\.data\.colour: unknown key"),
    ({"name": "bj"}, r"^datasets\.bj\.data\.T_in: missing required key$"),
    ({"T_in": 1, "url": "ftp://x"}, r"^datasets\.demo\.data\.url: expected an http\(s\):// or file:// URL"),
    ({"T_in": 1, "sha256": "abc"}, r"^datasets\.demo\.data\.sha256: expected 64 hex digits or null"),
    ({"T_in": 1, "stride": {"train": 2, "dev": 1}}, r"^datasets\.demo\.data\.stride\.dev: unknown key"),
    ({"T_in": 1, "stride": "2"}, r"^datasets\.demo\.data\.stride: expected an integer >= 1, or one per split"),
])
def test_bad_data_settings_are_one_line_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        data_settings(Demo, values)


def test_settings_defaults_and_normal_forms():
    s = data_settings(Demo, {"T_in": 2, "source": "demo", "stride": 3, "sha256": "AB" * 32})
    assert s.key("T_in") == "datasets.demo.data.T_in" and s.url == "https://example.org/a.zip"
    assert s.stride.model_dump() == {"train": 3, "val": 3, "test": 3} and s.sha256 == "ab" * 32
    assert data_settings(Demo, {"T_in": 2, "stride": {"val": 2}}).stride.model_dump() == {"train": 1, "val": 2, "test": 1}
    assert sample_settings(DemoSample, None, "demo").frames == 4
    with pytest.raises(ConfigError, match=r"^datasets\.demo\.sample\.videos: unknown key"):
        sample_settings(DemoSample, {"videos": 2}, "demo")
