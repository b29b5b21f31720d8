"""Time axes as climate files carry them: numpy datetimes or cftime dates in any CF calendar.

xarray decodes standard-calendar axes to ``datetime64`` and model calendars (``360_day``,
``noleap``, ``all_leap``, ``julian``, ``proleptic_gregorian`` beyond numpy's range) to arrays of
cftime dates. Everything here takes either kind:

* dates written in settings (``2010-02-30`` is a real day in a 360-day calendar) are checked for
  shape here and turned into a bound of the file's own calendar only when the file is read;
* a split's steps are *regular* when every step is the same duration (hourly, daily: the strict
  check), or, for steps of four weeks and more, when they advance the calendar month or year by
  the same count (a month is a month, whatever its length; a year of 365 or 366 days is a year).
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError

_ISO = re.compile(r"^(\d{1,4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[T ](\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?)?)?)?$")
_LIMITS = ((1, 12), (1, 31), (0, 23), (0, 59), (0, 59))  # month, day, hour, minute, second


@dataclass(frozen=True)
class DateSetting:
    """A date as written in a setting: its fields and how many were given (1 = year only)."""

    text: str
    fields: tuple[int, int, int, int, int, int]  # year, month, day, hour, minute, second
    given: int

    def end_fields(self) -> tuple[int, ...]:
        """The start of the next period (fields may overflow, e.g. month 13): sorts correctly."""
        f = list(self.fields)
        f[self.given - 1] += 1
        return tuple(f)


def parse_date(value: Any, key: str) -> DateSetting:
    """``2010``, ``2010-03``, ``2010-02-30``, ``2010-02-30T06`` or ``2010-02-30T06:00[:00]``."""
    try:
        return date_setting(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: expected {exc}, got {value!r}") from None


def date_setting(value: Any) -> DateSetting:
    """:func:`parse_date` without a key: a ValueError says what was expected."""
    m = _ISO.match(str(value).strip()) if isinstance(value, (str, _dt.date, np.datetime64)) else None
    if m is None:
        raise ValueError("a date such as 2016-01-01, 2016-01 or 2016-01-01T06:00 (in the file's calendar)")
    parts = [int(g) if g is not None else None for g in m.groups()]
    given = sum(p is not None for p in parts)
    for v, (lo, hi), name in zip(parts[1:], _LIMITS, ("month", "day", "hour", "minute", "second")):
        if v is not None and not lo <= v <= hi:
            raise ValueError(f"a {name} in {lo}..{hi}")
    defaults = (0, 1, 1, 0, 0, 0)
    fields = tuple(p if p is not None else d for p, d in zip(parts, defaults))
    return DateSetting(str(value), fields, given)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- the axis
def calendar(times: np.ndarray) -> str | None:
    """``None`` for datetime64, the cftime calendar name for cftime dates; raise for anything else."""
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return None
    if times.dtype == object and times.size and hasattr(times.flat[0], "calendar"):
        return str(times.flat[0].calendar)
    raise TypeError(f"dtype {times.dtype}")


def _make(fields: tuple[int, ...], cal: str | None):
    if cal is None:
        y, mo, d, h, mi, s = fields
        return np.datetime64(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}", "ns")
    import cftime

    return cftime.datetime(*fields, calendar=cal)


def _carry(fields: tuple[int, ...], given: int, cal: str | None):
    """The date ``fields`` whose field ``given`` may have overflowed by one (month 13, day 31 + 1)."""
    f = list(fields)
    if given <= 2:  # year or month: carry months into years
        y, m = divmod(f[0] * 12 + f[1] - 1, 12)
        return _make((y, m + 1, *f[2:]), cal)
    unit = ("days", "hours", "minutes", "seconds")[given - 3]
    f[given - 1] -= 1
    start = _make(tuple(f), cal)
    delta = _dt.timedelta(**{unit: 1})
    return start + (np.timedelta64(delta) if cal is None else delta)


def bounds(start: DateSetting, end: DateSetting, times: np.ndarray, where: str):
    """``[lo, hi)`` of an inclusive ``start .. end`` setting, in the calendar of ``times``.

    A bare period (``2010``, ``2010-03``, a date) at the end covers all of it. A date that the
    calendar lacks (30 February in ``noleap``) is an error naming ``where``.
    """
    cal = calendar(times)
    try:
        lo = _make(start.fields, cal)
        hi = _carry(end.end_fields(), end.given, cal)
    except ValueError as exc:
        raise ConfigError(f"{where}: {start.text} .. {end.text} is not a valid range in the file's "
                          f"{cal or 'standard'} calendar ({exc})") from None
    return lo, hi


def select(times: np.ndarray, lo, hi) -> np.ndarray:
    """Indices of ``lo <= t < hi``."""
    times = np.asarray(times)
    return np.flatnonzero(np.asarray((times >= lo) & (times < hi), dtype=bool))


def stamp(t) -> str:
    if isinstance(t, np.datetime64):
        return str(np.datetime_as_string(np.datetime64(t, "s")))
    if hasattr(t, "calendar"):
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    return str(t)


def span(d) -> str:
    import pandas as pd

    return str(pd.Timedelta(d))


def _month_index(times: np.ndarray) -> np.ndarray:
    if calendar(times) is None:
        m = np.asarray(times).astype("datetime64[M]").astype(np.int64)
        return m
    return np.array([t.year * 12 + t.month - 1 for t in times], dtype=np.int64)


@dataclass(frozen=True)
class Step:
    """A regular step: a fixed duration, or a count of calendar months."""

    duration: Any = None  # np.timedelta64 / datetime.timedelta
    months: int = 0

    def describe(self) -> str:
        if self.months:
            if self.months % 12 == 0:
                n = self.months // 12
                return "1 year" if n == 1 else f"{n} years"
            return "1 month" if self.months == 1 else f"{self.months} months"
        return span(self.duration)


# A step at least this long may be a calendar month (28 days in February, 30 in a 360-day year)
_MONTHLY = _dt.timedelta(days=27)


def regular_step(times: np.ndarray) -> tuple[Step | None, int | None]:
    """(the step, None) when ``times`` (increasing) are regular, else (the first step, index i
    of the first irregular step ``times[i] -> times[i + 1]``). Fewer than 2 times: (None, None)."""
    times = np.asarray(times)
    if times.size < 2:
        return None, None
    d = np.diff(times)
    first = d[0]
    uneven = np.flatnonzero(np.asarray(d != first, dtype=bool))
    if not uneven.size and as_timedelta(first) < _MONTHLY:
        return Step(duration=first), None
    if not uneven.size:  # 360-day years or 30-day months: say "1 year", not "360 days"
        dm = np.diff(_month_index(times))
        return (Step(months=int(dm[0])) if dm[0] > 0 and (dm == dm[0]).all() else Step(duration=first)), None
    shortest = min(d) if calendar(times) is not None else d.min()
    if as_timedelta(shortest) < _MONTHLY:
        return Step(duration=first), int(uneven[0])
    dm = np.diff(_month_index(times))
    bad = np.flatnonzero(dm != dm[0])
    if dm[0] > 0 and not bad.size:
        return Step(months=int(dm[0])), None
    return Step(months=int(dm[0])) if dm[0] > 0 else Step(duration=first), int(bad[0] if bad.size else 0)


def as_timedelta(d) -> _dt.timedelta:
    if isinstance(d, np.timedelta64):
        return _dt.timedelta(microseconds=int(d / np.timedelta64(1, "us")))
    return d


def step_between(a, b) -> str:
    """The span from ``a`` to ``b``, as words (``31 days 00:00:00``)."""
    return span(as_timedelta(b - a))
