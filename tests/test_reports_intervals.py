"""The console's interval and agent reports: local calendar intervals, the
numbers of the small hand-made day of test_report, CSV that a spreadsheet
will not execute, limits, and the HTTP routes' answers to bad requests."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from apikit import ADMIN, serve
from sipagent.store.intervals import (MAX_DAYS, ReportLimit, agent_rows, check_size,
                                      interval_rows, span_of, to_csv)
from sipagent.store.report import report
from test_report import T0, write_day

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 23)          # T0 is 09:00 UTC that day


@pytest.fixture
def day(tmp_path):
    path = tmp_path / "events.sqlite3"
    write_day(path)
    return path


def test_local_days_cut_into_intervals():
    # Berlin's spring-forward day has 23 hours, its fall-back day 25.
    assert len(span_of(date(2026, 3, 29), date(2026, 3, 29), "15m", BERLIN).starts) == 92
    assert len(span_of(date(2026, 10, 25), date(2026, 10, 25), "1h", BERLIN).starts) == 25
    week = span_of(date(2026, 10, 24), date(2026, 10, 30), "1d", BERLIN)
    assert len(week.starts) == 7
    assert week.iso(week.starts[2]) == "2026-10-26T00:00:00+01:00"   # midnight after the change
    assert week.t_to - week.t_from == 7 * 86400 + 3600
    with pytest.raises(ReportLimit) as exc:
        span_of(date(2026, 1, 1), date(2026, 2, 1), "15m", UTC)        # 32 days
    assert exc.value.param == "to" and str(MAX_DAYS["15m"]) in str(exc.value)
    with pytest.raises(ReportLimit) as exc:
        span_of(DAY, date(2026, 11, 22), "1h", UTC)
    assert exc.value.param == "to"
    with pytest.raises(ReportLimit) as exc:
        span_of(DAY, DAY, "5m", UTC)
    assert exc.value.param == "interval"


def test_interval_rows_by_hand(day):
    span = span_of(DAY, DAY, "1h", UTC)
    rows = interval_rows(day, span, "sales", thresholds={"sales": (20.0, 30.0)})
    assert len(rows) == 24 and all(r["queue"] == "sales" for r in rows)
    (nine,) = [r for r in rows if r["start"] == "2026-11-23T09:00:00+00:00"]
    assert (nine["offered"], nine["answered"], nine["abandoned"]) == (8, 3, 3)
    assert nine["service_level"]["answered:20"] == pytest.approx(2 / 3)    # c1 10 s, c2 20 s
    assert nine["service_level"]["offered:30"] == pytest.approx(3 / 6)
    assert nine["asa"] == pytest.approx((10 + 20 + 28) / 3)
    assert nine["aht"] == pytest.approx((70 + 120 + 70) / 3)
    assert nine["abandon_rate"] == pytest.approx(3 / 8)
    assert nine["exited_by_reason"] == {"full": 1, "timeout": 1}
    assert sum(r["offered"] for r in rows) == 8 and rows[0]["asa"] is None
    # The same numbers as one row for the whole day.
    (whole,) = report(day, span.t_from, span.t_to, queue="sales", thresholds=(20.0, 30.0))
    assert whole.tally.offered == 8 and whole.tally.handled == sum(r["handled"] for r in rows)


def test_agent_rows_by_hand(day):
    span = span_of(DAY, DAY, "1d", UTC)
    rows = {r["agent"]: r for r in agent_rows(day, span)}
    a, b = rows["a"], rows["b"]
    assert (a["handled"], a["talk_seconds"], a["wrap_up_seconds"]) == (2, 120.0, 20.0)
    assert a["aht"] == 70.0
    assert a["pause_seconds"] == 100.0 and a["pause_by_reason"] == {"lunch": 100.0}
    assert (a["offers"], a["missed"]) == (3, 1)
    # a was logged in all day from T0 - 100 s: busy 140 s, paused 100 s, idle the rest.
    assert a["logged_in_seconds"] == pytest.approx(span.t_to - (T0 - 100))
    assert a["occupancy"] == pytest.approx(140 / (a["logged_in_seconds"] - 100))
    assert (b["handled"], b["talk_seconds"], b["aht"]) == (1, 100.0, 120.0)
    assert b["logged_in_seconds"] == pytest.approx(600.0)          # T0 - 100 .. T0 + 500
    assert b["occupancy"] == pytest.approx(120 / 600)
    # Per hour, an agent's times add up to the whole day's.
    hourly = [r for r in agent_rows(day, span_of(DAY, DAY, "1h", UTC)) if r["agent"] == "a"]
    assert sum(r["busy_seconds"] for r in hourly) == pytest.approx(a["busy_seconds"])
    assert sum(r["pause_seconds"] for r in hourly) == pytest.approx(100.0)
    assert max(r["busy_seconds"] + r["idle_seconds"] + r["pause_seconds"]
               for r in hourly) == pytest.approx(3600.0)


def test_csv_neutralises_formulas():
    rows = [{"queue": "=HYPERLINK(\"http://x\")", "agent": "+1", "reason": "@SUM(A1)",
             "note": "-2+3", "tab": "\tx", "n": -5, "ok": "sales", "sl": {"offered:20": 0.5},
             "none": None}]
    text = to_csv(rows)
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["queue"] == "'=HYPERLINK(\"http://x\")"
    assert (row["agent"], row["reason"], row["note"], row["tab"]) == ("'+1", "'@SUM(A1)",
                                                                       "'-2+3", "'\tx")
    assert row["n"] == "-5" and row["ok"] == "sales" and row["none"] == ""
    assert row["sl_offered:20"] == "0.5"


def test_event_count_limit(day):
    span = span_of(DAY, DAY, "1h", UTC)
    # 25 caller-side events and 13 of the agents (4 login/ready, 6 wrap-up, pause,
    # unpause, logout), all on that day.
    assert check_size(day, span) == 38
    with pytest.raises(ReportLimit) as exc:
        check_size(day, span, max_events=10)
    assert exc.value.param == "to" and "38 events" in str(exc.value)


def write_support_day(log) -> None:
    """Two support calls on 2026-11-23 (UTC), one sales call."""
    q = lambda dt, queue, call, kind, **kw: log.queue_event(T0 + dt, queue, call, kind, **kw)
    log.agent_event(T0 - 60, "alice", "LOGIN")
    q(0, "support", "s1", "ENTER")
    q(5, "support", "s1", "CONNECT", agent="alice", wait=5.0)
    q(65, "support", "s1", "COMPLETE_CALLER", agent="alice")
    log.agent_event(T0 + 65, "alice", "WRAPUP_START", queue="support", call_id="s1")
    log.agent_event(T0 + 75, "alice", "WRAPUP_END")
    q(100, "support", "=s2", "ENTER")
    q(140, "support", "=s2", "ABANDON", wait=40.0)
    q(200, "sales", "x1", "ENTER")
    q(201, "sales", "x1", "EXIT", reason="empty", wait=1.0)
    log.flush()


def test_report_routes(tmp_path, ports):
    async def scenario(client, engine):
        write_support_day(engine.queues.stats.log)
        out = {}
        base = "from=2026-11-23&to=2026-11-23"
        for name, path in {
            "intervals": f"/api/reports/intervals?{base}&interval=1h&queue=support",
            "all": f"/api/reports/intervals?{base}&interval=1d",
            "agents": f"/api/reports/agents?{base}&interval=1d",
            "csv": f"/api/reports/intervals?{base}&interval=15m&format=csv",
            "agents_csv": f"/api/reports/agents?{base}&format=csv&queue=support",
        }.items():
            r = await client.get(path, headers=ADMIN)
            out[name] = (r.status, dict(r.headers), await r.text())
        return out

    out = serve(tmp_path, ports, scenario)
    import json
    status, _, text = out["intervals"]
    assert status == 200
    doc = json.loads(text)
    assert doc["timezone"] == "UTC" and len(doc["intervals"]) == 24
    (nine,) = [r for r in doc["intervals"] if r["offered"]]
    assert (nine["start"], nine["answered"], nine["abandoned"]) == (
        "2026-11-23T09:00:00+00:00", 1, 1)
    assert nine["service_level"]["offered:20"] == 0.5 and nine["aht"] == 70.0
    every = json.loads(out["all"][2])["intervals"]
    assert {r["queue"]: r["offered"] for r in every} == {"support": 2, "sales": 1}
    (alice,) = json.loads(out["agents"][2])["agents"]
    assert (alice["agent"], alice["handled"], alice["aht"]) == ("alice", 1, 70.0)
    status, headers, text = out["csv"]
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == \
        'attachment; filename="intervals-2026-11-23-2026-11-23-15m.csv"'
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 * 96 and sum(int(r["offered"]) for r in rows) == 3
    assert "service_level_offered:20" in rows[0]
    status, headers, text = out["agents_csv"]
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert list(csv.DictReader(io.StringIO(text)))[0]["agent"] == "alice"


BAD = [
    ("/api/reports/intervals?to=2026-11-23", "from: required"),
    ("/api/reports/intervals?from=2026-13-01&to=2026-11-23", "from: a calendar date"),
    ("/api/reports/intervals?from=2026-11-23T00:00&to=2026-11-23", "from: a calendar date"),
    ("/api/reports/intervals?from=2026-11-23&to=2026-11-22", "to: 2026-11-22 is before"),
    ("/api/reports/intervals?from=2026-01-01&to=2026-03-01&interval=15m", "to: at most 31 days"),
    ("/api/reports/intervals?from=2026-11-23&to=2026-11-23&interval=5m", "interval:"),
    ("/api/reports/intervals?from=2026-11-23&to=2026-11-23&format=xml", "format:"),
    ("/api/reports/intervals?from=2026-11-23&to=2026-11-23&queue=nope", "queue: unknown"),
    ("/api/reports/agents?from=2026-11-23&to=2026-11-23&bogus=1",
     "bogus: not a parameter here (known: from, to, interval, queue, format)"),
    ("/api/reports/agents?from=2025-01-01&to=2026-11-23&interval=1d", "to: at most 366"),
]
BAD_WHATIF = [
    ({"date": "23.11.2026", "queue": "support", "agents": 3}, "date: a calendar date"),
    ({"date": "2026-11-23", "queue": "nope", "agents": 3}, "queue: unknown"),
    ({"date": "2026-11-23", "queue": "support", "agents": 0}, "agents:"),
    ({"date": "2026-11-23", "queue": "support", "agents": 3, "interval": "1d"}, "interval:"),
    ({"date": "2026-11-23", "queue": "support"}, "agents: required"),
]


def test_bad_parameters_are_400_naming_the_parameter(tmp_path, ports):
    async def scenario(client, engine):
        out = []
        for path, _ in BAD:
            r = await client.get(path, headers=ADMIN)
            out.append((r.status, await r.text()))
        for body, _ in BAD_WHATIF:
            r = await client.post("/api/reports/whatif", json=body, headers=ADMIN)
            out.append((r.status, await r.text()))
        return out

    answers = serve(tmp_path, ports, scenario)
    for (status, text), (what, words) in zip(answers, [*BAD, *BAD_WHATIF]):
        assert status == 400, (what, status, text)
        assert text.startswith(words), (what, text)


def test_requests_over_the_size_limits_are_400(tmp_path, ports, monkeypatch):
    import sipagent.store.intervals as intervals
    import sipagent.store.whatif as whatif_store
    monkeypatch.setattr(intervals, "MAX_EVENTS", 3)
    monkeypatch.setattr(whatif_store, "MAX_CALLS", 1)

    async def scenario(client, engine):
        write_support_day(engine.queues.stats.log)
        r = await client.get("/api/reports/intervals?from=2026-11-23&to=2026-11-23",
                             headers=ADMIN)
        w = await client.post("/api/reports/whatif", headers=ADMIN, json={
            "date": "2026-11-23", "queue": "support", "agents": 2})
        return r.status, await r.text(), w.status, await w.text()

    status, text, w_status, w_text = serve(tmp_path, ports, scenario)
    assert (status, w_status) == (400, 400)
    assert text.startswith("to: the span holds 10 events, more than the 3")
    assert w_text.startswith("date: queue 'support' has 2 calls that day, more than the 1")


def test_agent_time_today_stops_at_now(tmp_path):
    from sipagent.store.eventlog import EventLog, event_log_path
    import time as clock

    now = clock.time()
    path = event_log_path(tmp_path)
    with EventLog(path) as el:
        el.agent_event(now - 30, "fresh", "LOGIN")
    today = datetime.fromtimestamp(now, UTC).date()
    rows = [r for r in agent_rows(path, span_of(today, today, "1d", UTC))
            if r["agent"] == "fresh"]
    logged_in = sum(r["logged_in_seconds"] for r in rows)
    assert 29 <= logged_in <= 30 + (clock.time() - now) + 1, rows
