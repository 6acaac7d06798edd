"""Scheduled callbacks without SIP: the slots a caller is offered (time
zones, closed days, closing time, clock changes), the menu's words and
keys, the config keys, and the pending-callback table on a real SQLite file."""
from __future__ import annotations

import asyncio
import sqlite3
import textwrap
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from ivrflows.callback_slots import (chosen_slot, confirmation_text, menu_text, offered_slots,
                                     slot_words)
from ivrflows.schedule import from_dict
from sipagent.config.load import ConfigError, parse_config
from sipagent.queue.callback import CallbackLine
from sipagent.queue.entry import EntryState, QueueEntry
from sipagent.store.callbacks import CallbackRecord, CallbackStore
from sipagent.store.migrations import SchemaTooNew

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = from_dict({"timezone": "Europe/Berlin",
                    "hours": {"mon-fri": ["08:00-12:30", "13:30-18:00"], "sat": "09:00-12:00"},
                    "holidays": ["12-25"]})


def at(text: str, zone=BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def local(slots) -> list[str]:
    return [s.astimezone(BERLIN).strftime("%a %H:%M") for s in slots]


# -- which slots --------------------------------------------------------------------
def test_slots_follow_the_hours_and_skip_the_lunch_break():
    # Wednesday 2026-12-02 10:20 Berlin; 60-minute slots, 15 minutes' lead.
    slots = offered_slots(OFFICE, at("2026-12-02T10:20"), minutes=60, count=5,
                          lead=timedelta(minutes=15))
    assert local(slots) == ["Wed 11:00", "Wed 12:00", "Wed 14:00", "Wed 15:00", "Wed 16:00"]
    assert all(s.tzinfo is not None for s in slots)


def test_lead_pushes_the_first_slot_and_closing_time_ends_the_day():
    # 16:40 on a Friday: 17:00 is the last slot (18:00 is closing, not open),
    # so the next slots are Saturday's; 30 minutes' lead leaves out 17:00 too.
    slots = offered_slots(OFFICE, at("2026-12-04T16:40"), minutes=60, count=4,
                          lead=timedelta(minutes=15))
    assert local(slots) == ["Fri 17:00", "Sat 09:00", "Sat 10:00", "Sat 11:00"]
    slots = offered_slots(OFFICE, at("2026-12-04T16:40"), minutes=60, count=2,
                          lead=timedelta(minutes=30))
    assert local(slots) == ["Sat 09:00", "Sat 10:00"]


def test_closed_days_and_holidays_offer_nothing():
    # Saturday noon: Sunday closed, so Monday 08:00 comes next.
    slots = offered_slots(OFFICE, at("2026-12-05T12:00"), minutes=30, count=3)
    assert [s.strftime("%a %d %H:%M") for s in slots] == ["Mon 07 08:00", "Mon 07 08:30",
                                                         "Mon 07 09:00"]
    # Christmas Day (a Friday) is a holiday: Thursday evening -> Saturday.
    slots = offered_slots(OFFICE, at("2026-12-24T17:30"), minutes=60, count=1)
    assert slots[0].date() == date(2026, 12, 26)


def test_the_moment_may_come_in_any_zone():
    now_utc = datetime(2026, 12, 2, 9, 20, tzinfo=timezone.utc)   # 10:20 in Berlin
    in_ny = now_utc.astimezone(ZoneInfo("America/New_York"))
    assert offered_slots(OFFICE, now_utc, minutes=60, count=3) == \
        offered_slots(OFFICE, in_ny, minutes=60, count=3)
    with pytest.raises(ValueError, match="aware"):
        offered_slots(OFFICE, datetime(2026, 12, 2, 10, 0), minutes=60, count=1)


def test_clock_change_skips_the_missing_hour():
    night = from_dict({"timezone": "Europe/Berlin", "hours": {"daily": "00:00-24:00"}})
    # 29 March 2026: 02:00-03:00 does not exist in Berlin.
    slots = offered_slots(night, at("2026-03-29T00:30"), minutes=60, count=3)
    assert [s.strftime("%H:%M") for s in slots] == ["01:00", "03:00", "04:00"]
    utc = [s.astimezone(timezone.utc) for s in slots]
    assert utc[1] - utc[0] == timedelta(hours=1)            # real time between them


def test_always_closed_offers_nothing():
    closed = from_dict({"timezone": "UTC", "hours": {}})
    assert offered_slots(closed, at("2026-12-02T10:00"), minutes=60, count=3) == []


# -- words and keys -----------------------------------------------------------------
def test_menu_words_and_keys():
    now = at("2026-12-04T16:50")
    slots = offered_slots(OFFICE, now, minutes=60, count=3)
    text = menu_text(slots, now)
    assert text == ("When shall we call you back? For as soon as possible, press 1. "
                    "For 17:00, press 2. For tomorrow at 09:00, press 3. "
                    "For tomorrow at 10:00, press 4.")
    assert chosen_slot("2", slots) == slots[0]
    assert chosen_slot("4", slots) == slots[2]
    for key in ("1", "5", "9", "0", "*", "#", None):
        assert chosen_slot(key, slots) is None          # as soon as possible
    assert slot_words(at("2026-12-08T09:00"), now) == "Tuesday at 09:00"
    assert confirmation_text(slots[0], now) == \
        "Thank you. We will call you back at 17:00. Goodbye."
    assert "tomorrow at 09:00" in confirmation_text(slots[1], now)
    assert "as soon as" in confirmation_text(None, now)


# -- config --------------------------------------------------------------------------
SCHEDULE = """
[schedules.office]
timezone = "Europe/Berlin"
hours = { mon-fri = "08:00-18:00" }
"""


def config_error(queue: str, schedules: str = SCHEDULE) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(schedules + "[queues.q]\n" + queue), source="t.toml")
    return str(info.value)


def test_callback_keys_are_checked_by_name():
    base = 'callback_key = "5"\ncallback_uri = "sip:{number}@pbx"\n'
    assert "queues.q.callback_mode" in config_error('callback_mode = "whenever"\n')
    msg = config_error(base + "callback_slots = 9\ncallback_schedule = \"office\"\n")
    assert "queues.q.callback_slots" in msg and "8" in msg
    assert "queues.q.callback_slot_minutes" in config_error("callback_slot_minutes = 2\n")
    msg = config_error(base + "callback_slots = 3\n")
    assert "queues.q.callback_schedule: required when callback_slots is set" in msg
    msg = config_error(base + 'callback_slots = 3\ncallback_schedule = "nope"\n')
    assert "queues.q.callback_schedule: unknown schedule 'nope'" in msg and "office" in msg
    msg = config_error('callback_slots = 3\ncallback_schedule = "office"\n')
    assert "queues.q.callback_slots: needs callback_key" in msg
    ok = parse_config(SCHEDULE + "[queues.q]\n" + base + 'callback_mode = "caller_first"\n'
                      'callback_slots = 3\ncallback_schedule = "office"\n', source="t.toml")
    q = ok.queues["q"]
    assert (q.callback_mode, q.callback_slots, q.callback_slot_minutes) == ("caller_first", 3, 60)


# -- the table -------------------------------------------------------------------------
def record(call_id="c1", **kw) -> CallbackRecord:
    fields = {"queue": "q", "number": "5550123", "origin": "queue", "due": 1000.0,
              "scheduled": True, "entered": 900.0, **kw}
    return CallbackRecord(call_id, **fields)


def test_store_keeps_pending_rows_across_reopening(store_place):
    store = CallbackStore(store_place)
    store.add(record("c1"))
    store.add(record("c2", origin="web", entered=800.0))
    store.later("update", "c1", attempts=2, due=2000.0)
    store.later("done", "c2", "answered")
    store.close()                                   # waits for the writer thread
    again = CallbackStore(store_place)
    assert [(r.call_id, r.attempts, r.due, r.status) for r in again.pending()] == \
        [("c1", 2, 2000.0, "pending")]
    with pytest.raises(ValueError, match="not a callback column"):
        again.update("c1", colour="red")
    assert again.db.one("SELECT status, result FROM callback WHERE call_id = 'c2'") \
        == ("done", "answered")
    again.close()
    if store_place.database is None:
        db = sqlite3.connect(store_place.file("callbacks.sqlite3"))
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    from storekit import set_schema_version
    set_schema_version(store_place, "callbacks", "callbacks.sqlite3", 99)
    with pytest.raises(SchemaTooNew, match="newer"):
        CallbackStore(store_place)


def test_store_refuses_a_duplicate_and_keeps_the_first(store_place):
    store = CallbackStore(store_place)
    store.add(record("c1", number="111"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add(record("c1", number="222"))
    assert [r.number for r in store.pending()] == ["111"]
    store.add(record("c2", queue="other", entered=800.0))
    assert [r.call_id for r in store.pending(queues=["other"])] == ["c2"]
    assert [r.call_id for r in store.pending(queues=["q", "other"])] == ["c2", "c1"]
    assert store.pending(queues=[]) == []
    store.close()


# -- resuming after a restart (the runtime side, without SIP) ---------------------------
class Line:
    def __init__(self):
        self.settings = {"q": SimpleNamespace(callback_mode="agent_first", callback_slots=0,
                                              callback_uri="sip:{number}@x")}
        self.entries: dict = {}
        self.added: list = []
        self.stats = SimpleNamespace(callback=lambda *a, **k: None,
                                     record=lambda *a, **k: None)

    def now(self):
        return asyncio.get_running_loop().time()

    def add_callback(self, entry, *, offered=True):
        self.entries[entry.call_id] = entry
        self.added.append((entry.call_id, offered, entry.callback.outcome_counted))


def test_resumed_jobs_join_when_due_and_are_not_offered_twice(store_place):
    async def main():
        import time
        store = CallbackStore(store_place)
        now = time.time()
        store.add(record("key", due=now - 5, joined=True, counted=True))
        store.add(record("web-joined", origin="web", due=now - 5, joined=True))
        store.add(record("web-later", origin="web", due=now + 0.3, scheduled=True))
        rt, prompts = Line(), SimpleNamespace(add_texts=lambda table: None)
        line = CallbackLine(rt)
        line.attach(store, {}, prompts, store.pending())
        assert {j["callback"]: j["stage"] for j in line.pending()}["web-later"] == "scheduled"
        await asyncio.sleep(0.05)
        # Due already: both join; the one that had joined before is not offered again,
        # and its outcome counts as logged (start-up closed it out after a crash).
        assert sorted(rt.added) == [("key", False, True), ("web-joined", False, True)]
        await asyncio.sleep(0.4)
        assert rt.added[-1] == ("web-later", True, False)
        assert isinstance(rt.entries["web-later"], QueueEntry)
        assert rt.entries["web-later"].state is EntryState.WAITING
        line.stop()
        store.close()
        store = CallbackStore(store_place)
        rows = {c: (j, n) for c, j, n in store.db.read(
            "SELECT call_id, joined, counted FROM callback")}
        store.close()
        assert rows == {"key": (1, 1), "web-joined": (1, 1), "web-later": (1, 0)}
    asyncio.run(main())


def test_a_node_runs_only_the_callbacks_of_the_queues_it_runs(store_place):
    """Several nodes on one store (``CallbackLine.run_only``): a node takes
    up the pending requests of the queues it runs, lets go of the others'
    still waiting for their time, and takes nothing up twice."""
    async def main():
        import time
        store = CallbackStore(store_place)
        now = time.time()
        rt, prompts = Line(), SimpleNamespace(add_texts=lambda table: None)
        rt.settings["r"] = rt.settings["q"]
        store.add(record("for-q", origin="web", due=now + 30))
        store.add(record("for-r", queue="r", origin="web", due=now + 30))
        line = CallbackLine(rt)
        line.attach(store, {}, prompts, [])         # a node of several starts with none
        assert line.pending() == []
        line.run_only({"q"}, store.pending())       # q's partition came to this node
        assert [j["callback"] for j in line.pending()] == ["for-q"]
        line.run_only({"q", "r"}, store.pending())  # so did r's; for-q is not taken twice
        assert sorted(j["callback"] for j in line.pending()) == ["for-q", "for-r"]
        line.run_only({"r"}, store.pending())       # q's left: its request stays pending
        assert [j["callback"] for j in line.pending()] == ["for-r"]
        assert {r.call_id for r in store.pending()} == {"for-q", "for-r"}
        line.stop()
        store.close()
    asyncio.run(main())
