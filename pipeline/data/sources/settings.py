"""Checks for the ``datasets.<name>.data`` settings of the traffic and video sources.

Each source declares a spec ``{key: (default or REQUIRED, check)}``; a check takes the value and
the full key (``datasets.<name>.data.<key>``) and raises ConfigError naming it.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.errors import ConfigError

REQUIRED = object()
PASSED_IN = ("name", "source")  # put in the data settings by the caller / the dataset section


def check_settings(settings: Any, spec: Mapping[str, tuple[Any, Callable[[Any, str], Any]]],
                   where: str) -> dict[str, Any]:
    """Validate ``settings`` against ``spec`` (key -> (default or REQUIRED, checker)).

    Unknown or missing keys and bad values raise ConfigError naming ``<where>.<key>``.
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(spec))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting; expected keys {sorted(spec)}")
    out = {}
    for key, (default, check) in spec.items():
        if key in settings:
            out[key] = check(settings[key], f"{where}.{key}")
        elif default is REQUIRED:
            raise ConfigError(f"{where}.{key}: missing required setting")
        else:
            out[key] = default
    return out


def open_settings(settings: Any, allowed: set[str], required: Sequence[str],
                  source: str) -> tuple[str, Callable[..., str]]:
    """The common opening of a hand-written settings check: a mapping with no unknown and no
    missing keys. Returns the dataset name and a function giving full keys
    (``key("years", "train")`` -> ``datasets.<name>.data.years.train``)."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"datasets.<name>.data: expected a mapping, got {type(settings).__name__}")
    name = str(settings.get("name", "<name>"))

    def key(*parts: str) -> str:
        return ".".join(("datasets", name, "data") + parts)

    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ConfigError(f"{key(unknown[0])}: unknown setting for source {source}; "
                          f"expected some of {sorted(allowed)}")
    for k in required:
        if settings.get(k) is None:
            raise ConfigError(f"{key(k)}: required setting is missing")
    return name, key


def data_settings(settings: Any, spec: Mapping[str, tuple[Any, Callable[[Any, str], Any]]],
                  default_name: str) -> dict[str, Any]:
    """``datasets.<name>.data`` checked against ``spec``. ``name`` (given by the caller, used in
    messages; ``default_name`` without it) and ``source`` are accepted; the name is returned
    under "name"."""
    name = default_name
    if isinstance(settings, Mapping):
        if settings.get("name") is not None:
            name = str(settings["name"])
        settings = {k: v for k, v in settings.items() if k not in PASSED_IN}
    values = check_settings(settings, spec, f"datasets.{name}.data")
    values["name"] = name
    return values


def int_at_least(low: int) -> Callable[[Any, str], int]:
    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{key}: expected an integer >= {low}, got {value!r}")
        return int(value)
    return check


def split_strides(value: Any, key: Callable[..., str]) -> dict[str, int]:
    """``stride``: one int for every split, or ``{train: .., val: .., test: ..}`` (missing: 1)."""
    from pipeline.data.prepared import SPLITS

    positive = int_at_least(1)
    if isinstance(value, dict):
        extra = sorted(set(value) - set(SPLITS))
        if extra:
            raise ConfigError(f"{key('stride', str(extra[0]))}: unknown split; expected {list(SPLITS)}")
        return {s: positive(value.get(s, 1), key("stride", s)) for s in SPLITS}
    return dict.fromkeys(SPLITS, positive(value, key("stride")))


def fraction(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{key}: expected a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def url_string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "file://")):
        raise ConfigError(f"{key}: expected an http(s):// or file:// URL, got {value!r}")
    return value


def sha256_or_none(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ConfigError(f"{key}: expected 64 hex digits or null, got {value!r}")
    return value.lower()


def choice(*options: str) -> Callable[[Any, str], str]:
    def check(value: Any, key: str) -> str:
        if value not in options:
            raise ConfigError(f"{key}: expected one of {list(options)}, got {value!r}")
        return value
    return check


def int_list(low: int, high: int) -> Callable[[Any, str], list[int]]:
    def check(value: Any, key: str) -> list[int]:
        ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
        if ok:
            ok = all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) and low <= v <= high
                     for v in value) and len(set(value)) == len(value)
        if not ok:
            raise ConfigError(f"{key}: expected a non-empty list of distinct integers in "
                              f"{low}..{high}, got {value!r}")
        return [int(v) for v in value]
    return check
