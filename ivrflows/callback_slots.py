"""The time slots a caller may choose for a callback, and the words for them.

Pure: the moment is passed in (no clock), so a test can ask for Friday
17:40 in Berlin.  Slots start at whole multiples of the slot length after
local midnight in the schedule's time zone (60 minutes: 09:00, 10:00 ...),
at least ``lead`` after now (nobody can be called "at 14:00" at 13:59), and
only where the schedule is open at the slot's start: a closed day or the
evening after closing offers nothing, and the next slots come from the next
open day.  Local times that do not exist (the hour skipped when clocks go
forward) are skipped; a repeated hour is offered once.

Key 1 is always "as soon as possible"; the slots follow on 2, 3 ... (at
most eight, so every choice is one key).  The queue's callback key uses it
(sipagent/queue/hold.py); a flow offering callback times may too.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from ivrflows.schedule import Schedule, is_open

MAX_SLOTS = 8
HORIZON_DAYS = 14
ASAP_KEY = "1"


def offered_slots(schedule: Schedule, now: datetime, *, minutes: int, count: int,
                  lead: timedelta = timedelta(0)) -> list[datetime]:
    """Up to ``count`` slot starts (aware, in the schedule's zone), earliest first."""
    if now.tzinfo is None:
        raise ValueError("offered_slots needs an aware datetime")
    if not 1 <= minutes <= 1440:
        raise ValueError(f"slot length {minutes} minutes: 1 to 1440")
    zone = schedule.zone
    earliest = now + lead
    local_today = now.astimezone(zone).date()
    slots: list[datetime] = []
    seen: set[datetime] = set()
    for offset in range(HORIZON_DAYS + 1):
        day = local_today + timedelta(days=offset)
        for start in range(0, 1440, minutes):
            at = datetime.combine(day, time(start // 60, start % 60), zone)
            utc = at.astimezone(timezone.utc)
            if utc.astimezone(zone).replace(tzinfo=None) != at.replace(tzinfo=None):
                continue          # skipped by a clock change: no such local time
            if utc <= earliest or utc in seen or not is_open(schedule, utc):
                continue
            seen.add(utc)
            slots.append(at)
            if len(slots) >= count:
                return slots
    return slots


def slot_words(at: datetime, now: datetime) -> str:
    """"14:00", "tomorrow at 09:00" or "Monday at 09:00" (local to ``at``)."""
    local_now = now.astimezone(at.tzinfo)
    clock = f"{at.hour:02d}:{at.minute:02d}"
    days = (at.date() - local_now.date()).days
    if days == 0:
        return clock
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"{at.strftime('%A')} at {clock}"
    return f"{at.strftime('%A, %B')} {at.day} at {clock}"


def menu_text(slots: list[datetime], now: datetime) -> str:
    parts = ["When shall we call you back? For as soon as possible, press 1."]
    for key, at in enumerate(slots, start=2):
        parts.append(f"For {slot_words(at, now)}, press {key}.")
    return " ".join(parts)


def chosen_slot(digit: str | None, slots: list[datetime]) -> datetime | None:
    """The slot a key picks; None (as soon as possible) for 1, no key, or any other key."""
    if digit is None or not digit.isdigit():
        return None
    index = int(digit) - 2
    return slots[index] if 0 <= index < len(slots) else None


def confirmation_text(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ("Thank you. You keep your place in line, and we will call you back as soon "
                "as an agent is free. Goodbye.")
    return f"Thank you. We will call you back {_when(at, now)}. Goodbye."


def _when(at: datetime, now: datetime) -> str:
    words = slot_words(at, now)
    return f"at {words}" if words[0].isdigit() else words
