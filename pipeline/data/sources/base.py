"""What every source shares: the interface, the base of its settings schema, common field types.

A source's ``datasets.<name>.data`` settings are a :class:`DataSettings` subclass (its own
``settings.py``); its sample knobs (``datasets.<name>.sample``) a plain ``Settings`` subclass.
Both are validated by :func:`data_settings` / :func:`sample_settings`, so a bad value is one line
naming ``datasets.<name>.data.<key>`` (``pipeline.core.schema.parse``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from pipeline.core.schema import PositiveInt, Settings, parse
from pipeline.data.prepared import SPLITS, Prepared

D = TypeVar("D", bound="DataSettings")
S = TypeVar("S", bound=Settings)


@dataclass(frozen=True)
class Source:
    """A dataset source, registered by name in ``pipeline.data.sources.SOURCES``."""

    settings: type[DataSettings]  # the schema of datasets.<name>.data
    sample: type[Settings]        # the schema of datasets.<name>.sample (the twin's size)
    # download the real files (or check manually obtained ones) into raw_dir -> DownloadResults
    fetch: Callable[[Path, Any], list]
    # write a small generated twin in the same on-disk format and layout: (raw_dir, data, sample, seed)
    make_sample: Callable[[Path, Any, Any, int], None]
    # read the raw files (real or twin, the same reader) into splits
    load: Callable[[Path, Any], Prepared]


class DataSettings(Settings):
    """``datasets.<name>.data``. ``name`` is put in by the caller (it only names keys in
    messages; a subclass sets its default) and ``source`` is the dataset section's own."""

    name: str
    source: str | None = None

    def key(self, *parts: str) -> str:
        return ".".join(("datasets", self.name, "data") + parts)


def data_settings(cls: type[D], settings: Any) -> D:
    """``settings`` validated as ``cls``; errors name ``datasets.<name>.data.<key>``."""
    if isinstance(settings, cls):
        return settings
    name = settings.get("name") if isinstance(settings, Mapping) else None
    name = name if isinstance(name, str) else cls.model_fields["name"].default or "<name>"
    return parse(cls, settings, f"datasets.{name}.data")


def sample_settings(cls: type[S], sample: Any, name: str) -> S:
    """The twin's size knobs ``datasets.<name>.sample`` (null: all defaults)."""
    return parse(cls, {} if sample is None else sample, f"datasets.{name}.sample")


def invalid(loc: tuple[str, ...], expected: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` for the checks that span fields (raised from a model
    validator, it reads ``<key>: expected <expected>, got <value>`` like any other)."""
    return ValidationError.from_exception_data("settings", [InitErrorDetails(
        type=PydanticCustomError("expected", expected), loc=loc, input=value)])


def _expect(test, expected: str):
    def check(value):
        if not test(value):
            raise PydanticCustomError("expected", expected)
        return value
    return AfterValidator(check)


def _distinct(value: list) -> list:
    if len(set(value)) != len(value):
        raise PydanticCustomError("expected", "no duplicates")
    return value


def _per_split(value: Any) -> Any:
    """One int for every split, or ``{train: .., val: .., test: ..}`` (a missing split: 1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return dict.fromkeys(SPLITS, value)
    if not isinstance(value, Mapping):
        raise PydanticCustomError("expected", "an integer >= 1, or one per split {train: .., val: .., test: ..}")
    return value


class SplitStride(Settings):
    train: PositiveInt = 1
    val: PositiveInt = 1
    test: PositiveInt = 1


Fraction = Annotated[float, Field(gt=0, lt=1)]
Url = Annotated[str, _expect(lambda v: v.startswith(("http://", "https://", "file://")),
                             "an http(s):// or file:// URL")]
Sha256 = Annotated[str | None, _expect(
    lambda v: v is None or (len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v)),
    "64 hex digits or null"), AfterValidator(lambda v: v and v.lower())]
Stride = Annotated[SplitStride, BeforeValidator(_per_split)]
Distinct = AfterValidator(_distinct)
NonEmpty = Field(min_length=1)
ChannelOrder = Literal["bgr", "rgb"]
