"""Time axes in every CF calendar: dates in settings, split bounds, regular monthly/annual steps."""
import cftime
import numpy as np
import pytest
import xarray as xr

from pipeline.core.errors import ConfigError
from pipeline.data import calendar as cal


def axis(start, periods, freq, calendar):
    return xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True).values


def test_dates_in_settings_follow_no_calendar_until_the_file_is_read():
    d = cal.parse_date("2010-02-30", "k")  # a day of the 360-day calendar
    assert d.fields == (2010, 2, 30, 0, 0, 0) and d.given == 3
    assert cal.parse_date("2010", "k").end_fields() == (2011, 1, 1, 0, 0, 0)
    assert cal.parse_date("2010-12", "k").end_fields() < cal.parse_date("2011-01-01", "k").fields
    for bad in ("2010-13-01", "yesterday", 2010, "2010-01-01T25"):
        with pytest.raises(ConfigError, match="^k: "):
            cal.parse_date(bad, "k")


@pytest.mark.parametrize("calendar", ["360_day", "noleap", "all_leap", "julian", "proleptic_gregorian",
                                      "standard"])
def test_split_bounds_in_the_files_calendar(calendar):
    times = axis("2000-01-01", 800, "D", calendar)
    lo, hi = cal.bounds(cal.parse_date("2000-02", "k"), cal.parse_date("2000-02", "k"), times, "k")
    feb = cal.select(times, lo, hi)
    days = {"360_day": 30, "noleap": 28}.get(calendar, 29)  # 2000 is a leap year elsewhere
    assert len(feb) == days and times[feb[0]].day == 1 and times[feb[-1]].month == 2
    year = cal.select(times, *cal.bounds(cal.parse_date("2001", "k"), cal.parse_date("2001", "k"), times, "k"))
    assert len(year) == {"360_day": 360, "all_leap": 366}.get(calendar, 365)


def test_a_date_the_calendar_lacks_is_one_line_naming_the_setting():
    times = axis("2000-01-01", 40, "D", "noleap")
    with pytest.raises(ConfigError, match=r"^datasets.x.data.splits.val: 2000-02-29 .. 2000-03 is not a valid "
                                          r"range in the file's noleap calendar"):
        cal.bounds(cal.parse_date("2000-02-29", "k"), cal.parse_date("2000-03", "k"), times,
                   "datasets.x.data.splits.val")


@pytest.mark.parametrize("calendar", ["noleap", "standard", "360_day", "julian"])
def test_monthly_and_annual_steps_are_regular_in_calendar_terms(calendar):
    # mid-month stamps as CMIP monthly means carry them: 28 to 31 days apart
    monthly = np.array([cftime.datetime(2000 + i // 12, i % 12 + 1, 15 if i % 12 == 1 else 16,
                                        0 if i % 12 == 1 else 12, calendar=calendar) for i in range(36)])
    step, bad = cal.regular_step(monthly)
    assert bad is None and step.describe() == "1 month"
    step, bad = cal.regular_step(axis("1850-01-01", 30, "YS", calendar))
    assert bad is None and step.describe() == "1 year"
    seasons = axis("1850-01-01", 20, "QS", calendar)
    assert cal.regular_step(seasons)[0].describe() == "3 months"
    gappy = np.delete(axis("1850-01-01", 30, "YS", calendar), 10)
    step, bad = cal.regular_step(gappy)
    assert bad == 9 and step.describe() == "1 year"


def test_hourly_and_daily_keep_the_strict_check():
    t = np.datetime64("2000-01-01", "ns") + np.arange(50) * np.timedelta64(1, "h")
    assert cal.regular_step(t) == (cal.Step(duration=np.timedelta64(1, "h")), None)
    step, bad = cal.regular_step(np.delete(t, 20))
    assert bad == 19 and step.describe() == "0 days 01:00:00"
    daily = np.delete(axis("2000-01-01", 60, "D", "noleap"), 31)  # a missing day is a gap, not a month
    assert cal.regular_step(daily)[1] == 30
    assert cal.stamp(daily[0]) == "2000-01-01T00:00:00"
