"""Business hours, holidays and time zones (ivrflows.schedule)."""
from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from ivrflows.schedule import (ALWAYS_OPEN, Opening, ScheduleError, from_dict, is_open,
                               next_opening)

BERLIN = ZoneInfo("Europe/Berlin")

OFFICE_TOML = """
[schedules.office]
timezone = "Europe/Berlin"
hours = { mon-fri = ["08:00-12:30", "13:30-18:00"], sat = "09:00-13:00" }
holidays = ["12-25", "12-26", 2026-04-03]
special = { 2026-12-24 = "08:00-12:00", 2026-12-31 = "closed" }
"""


@pytest.fixture
def office():
    return from_dict(tomllib.loads(OFFICE_TOML)["schedules"]["office"])


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize("moment, expected", [
    (berlin(2026, 1, 5, 7, 59), False),      # Monday, before opening
    (berlin(2026, 1, 5, 8, 0), True),
    (berlin(2026, 1, 5, 12, 29, 59), True),
    (berlin(2026, 1, 5, 12, 30), False),     # lunch
    (berlin(2026, 1, 5, 13, 30), True),
    (berlin(2026, 1, 5, 18, 0), False),      # the end minute is closed
    (berlin(2026, 1, 10, 10, 0), True),      # Saturday morning
    (berlin(2026, 1, 10, 14, 0), False),
    (berlin(2026, 1, 11, 10, 0), False),     # Sunday: not listed, closed
    (berlin(2026, 12, 25, 10, 0), False),    # yearly holiday (a Friday)
    (berlin(2027, 12, 27, 10, 0), True),     # ...but only on its day
    (berlin(2026, 4, 3, 10, 0), False),      # one-off holiday (a TOML date)
    (berlin(2027, 4, 2, 10, 0), True),
    (berlin(2026, 12, 24, 11, 0), True),     # special half day
    (berlin(2026, 12, 24, 14, 0), False),
    (berlin(2026, 12, 31, 10, 0), False),    # special closed day
])
def test_office_hours(office, moment, expected):
    assert is_open(office, moment) is expected


def test_any_zone_of_the_moment_gives_the_same_answer(office):
    # 07:30 UTC on a January Monday is 08:30 in Berlin.
    assert is_open(office, datetime(2026, 1, 5, 7, 30, tzinfo=timezone.utc))
    # In July Berlin is UTC+2: 06:30 UTC is 08:30 there.
    assert is_open(office, datetime(2026, 7, 6, 6, 30, tzinfo=timezone.utc))
    assert not is_open(office, datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc))
    assert is_open(office, datetime(2026, 1, 5, 2, 30, tzinfo=ZoneInfo("America/New_York")))


def test_hours_stay_wall_clock_across_summer_time(office):
    # The last Sunday of March: 08:00 Monday is still 08:00, one hour earlier in UTC.
    before = datetime(2026, 3, 27, 7, 0, tzinfo=timezone.utc)   # Fri 08:00 CET
    after = datetime(2026, 3, 30, 6, 0, tzinfo=timezone.utc)    # Mon 08:00 CEST
    assert is_open(office, before) and is_open(office, after)
    assert not is_open(office, after - timedelta(seconds=1))


def test_naive_datetimes_are_refused(office):
    with pytest.raises(ValueError, match="aware"):
        is_open(office, datetime(2026, 1, 5, 10, 0))


def test_overnight_hours_belong_to_the_day_they_start():
    night = from_dict({"timezone": "UTC", "hours": {"fri": "22:00-06:00"},
                       "holidays": ["2026-01-09"]})
    fri, sat = datetime(2026, 1, 16, tzinfo=timezone.utc), datetime(2026, 1, 17, tzinfo=timezone.utc)
    assert is_open(night, fri.replace(hour=23))
    assert is_open(night, sat.replace(hour=5, minute=59))
    assert not is_open(night, sat.replace(hour=6))
    assert not is_open(night, fri.replace(hour=5))       # Thursday night is not open
    # Friday 9 January is a holiday: its night stays closed, Saturday morning too.
    assert not is_open(night, datetime(2026, 1, 10, 2, tzinfo=timezone.utc))


def test_day_ranges_wrap_and_single_days_override_them():
    s = from_dict({"timezone": "UTC", "hours": {"fri-mon": "00:00-24:00", "mon": "10:00-11:00"}})
    assert s.hours[4] == s.hours[5] == s.hours[6] == (Opening(0, 1440),)
    assert s.hours[0] == (Opening(600, 660),)       # the single day wins over the range
    assert 1 not in s.hours                          # Tuesday: not listed, closed
    assert is_open(s, datetime(2026, 1, 4, 23, 59, 59, tzinfo=timezone.utc))  # Sunday


def test_daily_and_closed():
    s = from_dict({"timezone": "UTC", "hours": {"daily": "10:00-11:00", "wed": "closed"}})
    assert all(s.hours[d] == (Opening(600, 660),) for d in (0, 1, 3, 4, 5, 6))
    assert s.hours[2] == ()


@pytest.mark.parametrize("table, key, message", [
    ({}, "timezone", "required key missing"),
    ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone 'Mars/Olympus'"),
    ({"timezone": 1}, "timezone", "must be a string"),
    ({"timezone": "UTC", "hours": {"mon": "8-17"}}, "hours.mon", "not a time range"),
    ({"timezone": "UTC", "hours": {"mon": "08:00-25:00"}}, "hours.mon", "not a time of day"),
    ({"timezone": "UTC", "hours": {"mon": "08:00-08:00"}}, "hours.mon", "same minute"),
    ({"timezone": "UTC", "hours": {"mon": ["08:00-12:00", 13]}}, "hours.mon[1]", "must be a string"),
    ({"timezone": "UTC", "hours": {"monday": "08:00-12:00"}}, "hours.monday", "not a day"),
    ({"timezone": "UTC", "hours": {"mon-fri": "08:00-12:00", "thu-sat": "08:00-12:00"}},
     "hours.thu-sat", "thu is already covered by 'mon-fri'"),
    ({"timezone": "UTC", "hours": "08:00-12:00"}, "hours", "must be a table"),
    ({"timezone": "UTC", "holidays": ["2026-13-01"]}, "holidays[0]", "not a date"),
    ({"timezone": "UTC", "holidays": ["02-30"]}, "holidays[0]", "no such day"),
    ({"timezone": "UTC", "holidays": "12-25"}, "holidays", "must be a list"),
    ({"timezone": "UTC", "special": {"tomorrow": "closed"}}, "special.tomorrow", "not a date"),
    ({"timezone": "UTC", "hour": {}}, "hour", "unknown key"),
])
def test_errors_name_the_key(table, key, message):
    with pytest.raises(ScheduleError) as info:
        from_dict(table)
    assert info.value.key == key
    assert message in str(info.value)
    assert str(info.value).startswith(key)


def test_next_opening(office):
    friday_evening = berlin(2026, 1, 9, 19, 0)
    assert next_opening(office, friday_evening) == berlin(2026, 1, 10, 9, 0)
    assert next_opening(office, berlin(2026, 1, 5, 12, 45)) == berlin(2026, 1, 5, 13, 30)
    open_now = berlin(2026, 1, 5, 9, 0)
    assert next_opening(office, open_now) == open_now
    never = from_dict({"timezone": "UTC"})
    assert next_opening(never, open_now) is None


def test_always_open():
    assert is_open(ALWAYS_OPEN, datetime(2026, 2, 28, 3, 0, tzinfo=timezone.utc))


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                    timezones=st.just(timezone.utc)))
def test_open_exactly_when_a_local_opening_covers_the_moment(moment):
    s = from_dict({"timezone": "America/New_York",
                   "hours": {"mon-fri": ["09:00-12:00", "13:00-17:30"], "sun": "22:00-02:00"},
                   "holidays": ["07-04"]})
    local = moment.astimezone(ZoneInfo("America/New_York"))
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    holiday = (local.month, local.day) == (7, 4)
    yesterday_holiday = ((local - timedelta(days=1)).month, (local - timedelta(days=1)).day) == (7, 4)
    expected = (not holiday and day < 5 and (540 <= minute < 720 or 780 <= minute < 1050)) \
        or (not holiday and day == 6 and minute >= 1320) \
        or (not yesterday_holiday and day == 0 and minute < 120)
    assert is_open(s, moment) is expected


def test_date_type_is_what_toml_gives():
    s = from_dict(tomllib.loads(OFFICE_TOML)["schedules"]["office"])
    assert date(2026, 4, 3) in s.holidays and (12, 25) in s.yearly_holidays
