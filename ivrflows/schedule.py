"""Business hours and holidays: is the contact centre open at a moment?

A :class:`Schedule` is what a ``[schedules.<name>]`` table of the config
holds (see :func:`from_dict` for the exact keys).  :func:`is_open` is pure:
the moment is passed in, so a test or the flow kit can ask about Christmas
Eve at 11:59 in Berlin without touching a clock.

Hours are wall-clock times in the schedule's own time zone, which is what a
manager means by "we open at eight", summer time or not.  A range whose end
is not after its start runs past midnight ("22:00-06:00"); the part after
midnight belongs to the day it started on, so a holiday closes the night
that begins on it, not the night that ends on it.

Which hours apply on a date, first match wins: a ``special`` entry for that
date (half days, extra Sundays), then ``holidays`` (closed), then the
weekday's ``hours``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_YEARLY = re.compile(r"^(\d{2})-(\d{2})$")


class ScheduleError(ValueError):
    """A schedule table is wrong; ``key`` is the dotted key inside the table."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key, self.message = key, message


@dataclass(frozen=True)
class Opening:
    """Open from ``start`` to ``end``, in minutes after local midnight
    (``end`` may be 1440, "24:00"); ``end <= start`` runs past midnight."""
    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True)
class Schedule:
    timezone: str
    hours: Mapping[int, tuple[Opening, ...]]            # weekday (Monday 0) -> openings
    holidays: frozenset[date] = frozenset()
    yearly_holidays: frozenset[tuple[int, int]] = frozenset()  # (month, day)
    special: Mapping[date, tuple[Opening, ...]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def openings_on(self, day: date) -> tuple[Opening, ...]:
        if day in self.special:
            return self.special[day]
        if day in self.holidays or (day.month, day.day) in self.yearly_holidays:
            return ()
        return self.hours.get(day.weekday(), ())


ALWAYS_OPEN = Schedule("UTC", {d: (Opening(0, 1440),) for d in range(7)})


def is_open(schedule: Schedule, now: datetime) -> bool:
    """Whether ``schedule`` is open at ``now`` (an aware datetime, any zone)."""
    if now.tzinfo is None:
        raise ValueError("is_open needs an aware datetime (a naive one has no time zone)")
    local = now.astimezone(schedule.zone)
    minute = local.hour * 60 + local.minute + local.second / 60
    today = local.date()
    for opening in schedule.openings_on(today):
        if opening.start <= minute and (opening.overnight or minute < opening.end):
            return True
    for opening in schedule.openings_on(today - timedelta(days=1)):
        if opening.overnight and minute < opening.end:
            return True
    return False


def next_opening(schedule: Schedule, now: datetime, *, days: int = 31) -> datetime | None:
    """When a closed schedule opens next (in its zone), for "we open again
    at eight" announcements; ``now`` itself when already open; None when
    it stays closed for ``days``."""
    if is_open(schedule, now):
        return now
    zone = schedule.zone
    start = now.astimezone(zone).date()
    for offset in range(days + 1):
        day = start + timedelta(days=offset)
        for opening in sorted(schedule.openings_on(day), key=lambda o: o.start):
            at = datetime.combine(day, time(opening.start // 60, opening.start % 60), zone)
            if at > now:
                return at
    return None


# -- from the config file ----------------------------------------------------------------

def from_dict(data: Mapping[str, Any]) -> Schedule:
    """Build a schedule from a config table; errors name the key.

    ::

        [schedules.office]
        timezone = "Europe/Berlin"
        hours = { mon-fri = ["08:00-12:30", "13:30-18:00"], sat = "09:00-13:00" }
        holidays = ["12-25", "12-26", "01-01", "2026-04-03"]   # MM-DD: every year
        special = { 2026-12-24 = "08:00-12:00", 2026-12-31 = [] }  # [] or "closed"

    Day keys are ``mon``..``sun``, ranges like ``mon-fri``, or ``daily``; a
    single day overrides a range that covers it.  Days left out are closed.
    """
    if not isinstance(data, Mapping):
        raise ScheduleError("", f"a schedule is a table, not {_kind(data)}")
    unknown = sorted(set(data) - {"timezone", "hours", "holidays", "special"})
    if unknown:
        raise ScheduleError(unknown[0], "unknown key (expected timezone, hours, holidays, special)")
    if "timezone" not in data:
        raise ScheduleError("timezone", "required key missing (an IANA name such as 'Europe/Berlin')")
    zone = data["timezone"]
    if not isinstance(zone, str):
        raise ScheduleError("timezone", f"must be a string, not {_kind(zone)}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("timezone", f"unknown time zone {zone!r} (an IANA name such as "
                                        "'Europe/Berlin' or 'America/New_York')") from None
    hours = _hours(data.get("hours", {}))
    holidays, yearly = _holidays(data.get("holidays", []))
    special_table = data.get("special", {})
    if not isinstance(special_table, Mapping):
        raise ScheduleError("special", f"must be a table of date = hours, not {_kind(special_table)}")
    special = {}
    for key, value in special_table.items():
        special[_date(f"special.{key}", str(key))] = _openings(f"special.{key}", value)
    return Schedule(zone, hours, frozenset(holidays), frozenset(yearly), special)


def _hours(table: Any) -> dict[int, tuple[Opening, ...]]:
    if not isinstance(table, Mapping):
        raise ScheduleError("hours", f"must be a table like {{ mon-fri = \"08:00-18:00\" }}, not {_kind(table)}")
    from_ranges: dict[int, str] = {}
    hours: dict[int, tuple[Opening, ...]] = {}
    singles: dict[int, tuple[Opening, ...]] = {}
    for key, value in table.items():
        days = _days(f"hours.{key}", key)
        openings = _openings(f"hours.{key}", value)
        if len(days) == 1 and key != "daily":
            singles[days[0]] = openings
            continue
        for day in days:
            if day in from_ranges:
                raise ScheduleError(f"hours.{key}", f"{DAYS[day]} is already covered by "
                                                    f"'{from_ranges[day]}'")
            from_ranges[day] = key
            hours[day] = openings
    return {**hours, **singles}


def _days(key: str, spec: str) -> list[int]:
    if spec == "daily":
        return list(range(7))
    first, _, last = spec.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ScheduleError(key, f"not a day or day range: {spec!r} (use mon..sun, "
                                 "a range like 'mon-fri', or 'daily')")
    a, b = DAYS.index(first), DAYS.index(last or first)
    # 'fri-mon' wraps over the weekend, as people write it.
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def _openings(key: str, value: Any) -> tuple[Opening, ...]:
    if value == "closed":
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ScheduleError(key, f"must be \"HH:MM-HH:MM\", a list of those, or \"closed\"; "
                                 f"not {_kind(value)}")
    openings = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if not isinstance(value, str) else key
        if not isinstance(item, str):
            raise ScheduleError(where, f"must be a string like \"08:00-18:00\", not {_kind(item)}")
        openings.append(_opening(where, item))
    return tuple(openings)


def _opening(key: str, text: str) -> Opening:
    m = _RANGE.match(text.strip())
    if not m:
        raise ScheduleError(key, f"not a time range: {text!r} (expected \"HH:MM-HH:MM\")")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ScheduleError(key, f"not a time of day in {text!r} (00:00 to 23:59, or 24:00 as an end)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ScheduleError(key, f"{text!r} opens and closes at the same minute")
    return Opening(start, end)


def _holidays(value: Any) -> tuple[set[date], set[tuple[int, int]]]:
    if not isinstance(value, list):
        raise ScheduleError("holidays", f"must be a list of dates, not {_kind(value)}")
    dates: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for i, item in enumerate(value):
        key = f"holidays[{i}]"
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)  # a TOML date literal: holidays = [2026-12-25]
            continue
        if not isinstance(item, str):
            raise ScheduleError(key, f"must be \"YYYY-MM-DD\" or \"MM-DD\", not {_kind(item)}")
        m = _YEARLY.match(item)
        if m:
            month, day = int(m[1]), int(m[2])
            try:
                date(2024, month, day)  # a leap year, so 02-29 is a valid yearly holiday
            except ValueError:
                raise ScheduleError(key, f"no such day of the year: {item!r} (MM-DD)") from None
            yearly.add((month, day))
        else:
            dates.add(_date(key, item))
    return dates, yearly


def _date(key: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ScheduleError(key, f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def _kind(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
