"""The wallboard: live figures from the queue runtime, today's and the last
15 minutes' KPIs from the event log, equal to ``sipacd report`` over the
span each names; day counters that restart at local midnight; a scoped
supervisor who sees only its queues.  On the engine's real HTTP app and
runtime (tests/apikit.py) and real SQLite logs."""
from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apikit import ADMIN, SUPERVISOR, EngineApp, serve
from callday import DayShape, write_day
from sipagent.api.wallboard import add_wallboard_routes
from sipagent.cli.report import main as report_main
from sipagent.config.console import ConsoleSection
from sipagent.store.day_counters import DayCounters, kpi_figures
from sipagent.store.eventlog import EventLog, event_log_path
from sipagent.store.report import report

KOLKATA = ZoneInfo("Asia/Kolkata")          # UTC+05:30: midnight is not a UTC hour
QUEUES = {"sales": ((20.0, 30.0), 5.0)}


def local(y, mo, d, h, mi=0, s=0.0, zone=KOLKATA) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=zone).timestamp() + s


def figures_of(k: dict) -> dict:
    return {key: v for key, v in k.items() if key not in ("from", "to", "callbacks_pending")}


def same_as_report(db, k: dict, queue: str, thresholds=(20.0, 30.0)) -> None:
    rows = report(db, k["from"], k["to"], queue=queue, thresholds=thresholds)
    assert figures_of(k) == kpi_figures(rows[0].tally)


def same_as_cli(db, k: dict, queue: str, sl: str, capsys) -> None:
    """``sipacd report`` over [from, to) gives the wallboard's numbers."""
    start = datetime.fromtimestamp(k["from"], KOLKATA).isoformat()
    end = datetime.fromtimestamp(k["to"], KOLKATA).isoformat()
    capsys.readouterr()
    assert report_main(["--db", str(db), "--from", start, "--to", end, "--queue", queue,
                        "--sl", sl, "--format", "json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    for key in ("offered", "answered", "abandoned", "short_abandoned", "abandon_rate",
                "asa", "aht"):
        assert doc[key] == pytest.approx(k[key], nan_ok=True), key
    for threshold, variants in doc["service_level"].items():
        for variant, value in variants.items():
            assert value == pytest.approx(k["service_level"][f"{variant}:{threshold}"],
                                          nan_ok=True)


def copy_events(src, dst, t_from: float, t_to: float) -> None:
    """Appends src's events with t in [t_from, t_to) to dst, as the engine
    would have written them by then."""
    with sqlite3.connect(dst) as conn:
        conn.execute("ATTACH ? AS src", (str(src),))
        conn.execute("INSERT INTO event (t, kind, queue, call_id, agent, wait, position, reason,"
                     " data) SELECT t, kind, queue, call_id, agent, wait, position, reason, data"
                     " FROM src.event WHERE t >= ? AND t < ? ORDER BY t, id", (t_from, t_to))


@pytest.fixture
def busy_day(tmp_path):
    """A synthetic day of 1500 calls (Kolkata time), and an empty log to
    replay it into piece by piece."""
    full = tmp_path / "full.sqlite3"
    write_day(full, DayShape(t0=local(2026, 11, 23, 0)))
    live = tmp_path / "live.sqlite3"
    EventLog(live).close()
    return full, live


def test_counters_agree_with_the_report_as_the_day_goes_on(busy_day, capsys):
    full, live = busy_day
    counters = DayCounters(live, KOLKATA, QUEUES)
    t = local(2026, 11, 23, 0)
    for hour in (9, 11, 15, 18):
        now = local(2026, 11, 23, hour, 7, 30.0)
        copy_events(full, live, t, now)
        t = now
        got = counters.figures(now)
        k = got["queues"]["sales"]
        assert got["day_start"] == local(2026, 11, 23, 0)
        assert k["today"]["from"] == got["day_start"] and k["today"]["to"] == now
        assert k["last_15m"]["from"] == local(2026, 11, 23, hour, 7) - 14 * 60
        same_as_report(live, k["today"], "sales")
        same_as_report(live, k["last_15m"], "sales")
        same_as_cli(live, k["today"], "sales", "20,30", capsys)
    assert k["today"]["offered"] > 1000 and k["today"]["abandoned"] > 0
    # Each read after the first fed only the rows written since the one before.
    n_events = sqlite3.connect(live).execute("SELECT COUNT(*) FROM event").fetchone()[0]
    assert counters.rows_read == n_events
    # A restart mid-day keeps today's figures: a new reader finds the same.
    again = DayCounters(live, KOLKATA, QUEUES).figures(now)
    assert again["queues"]["sales"]["today"] == k["today"]


def test_day_counters_restart_at_local_midnight(tmp_path):
    db = tmp_path / "events.sqlite3"
    clock = [local(2026, 11, 23, 23, 58)]
    counters = DayCounters(db, KOLKATA, QUEUES, clock=lambda: clock[0])

    def call(log, t, call_id, wait=4.0):
        log.queue_event(t, "sales", call_id, "ENTER")
        log.queue_event(t + wait, "sales", call_id, "CONNECT", agent="a", wait=wait)

    with EventLog(db) as log:
        log.agent_event(local(2026, 11, 23, 8), "a", "LOGIN")
        call(log, local(2026, 11, 23, 12), "noon")
        call(log, local(2026, 11, 23, 23, 50), "late")
        call(log, local(2026, 11, 23, 23, 57), "later")
    before = counters.figures()
    assert before["day_start"] == local(2026, 11, 23, 0)
    assert before["queues"]["sales"]["today"]["offered"] == 3
    assert before["queues"]["sales"]["last_15m"]["offered"] == 2

    with EventLog(db) as log:    # read after midnight, one of them still yesterday's
        log.queue_event(local(2026, 11, 23, 23, 59, 30.0), "sales", "last", "ENTER")
        call(log, local(2026, 11, 24, 0, 1), "early")
    clock[0] = local(2026, 11, 24, 0, 3)
    after = counters.figures()
    assert after["day_start"] == local(2026, 11, 24, 0)      # 18:30 UTC
    assert after["queues"]["sales"]["today"]["offered"] == 1
    assert after["queues"]["sales"]["today"]["answered"] == 1
    # The last 15 minutes reach back over midnight: 23:49 .. 00:03.
    assert after["queues"]["sales"]["last_15m"]["offered"] == 4
    same_as_report(db, after["queues"]["sales"]["last_15m"], "sales")

    clock[0] = local(2026, 11, 24, 0, 30)
    later = counters.figures()
    assert later["queues"]["sales"]["today"]["offered"] == 1
    assert later["queues"]["sales"]["last_15m"]["offered"] == 0


class Person:
    def __init__(self, role, queues=None):
        self.role, self.agent, self.name, self.phone, self.queues = role, None, role, None, queues


def scoped_auth(request, roles):
    who = {"boss": Person("supervisor"), "sam": Person("supervisor", frozenset({"sales"})),
           "alice": Person("agent")}.get(request.headers.get("X-Test-User", ""))
    if who is None:
        raise web.HTTPUnauthorized(text="who?\n")
    if who.role not in roles:
        raise web.HTTPForbidden(text="role\n")
    return who


def test_wallboard_route_in_kolkata_and_scoped(tmp_path, ports):
    """The route on the engine's runtime and log, with a fixed clock."""
    now = local(2026, 11, 23, 10, 30)

    async def go():
        engine = EngineApp(tmp_path)
        config = engine.config.model_copy(
            update={"console": ConsoleSection(timezone="Asia/Kolkata")})
        app = web.Application()
        add_wallboard_routes(app, lambda: engine.queues, config, scoped_auth, clock=lambda: now)
        try:
            log = engine.queues.stats.log
            log.queue_event(now - 7200, "support", "old", "ENTER")
            log.queue_event(now - 7190, "support", "old", "ABANDON", wait=10.0)
            log.queue_event(now - 100, "support", "new", "ENTER")
            log.queue_event(now - 70, "support", "new", "CONNECT", agent="alice", wait=30.0)
            log.queue_event(now - 50, "sales", "s1", "ENTER")
            engine.queues.agent_command("alice", "login")
            engine.queues.agent_command("alice", "pause", "lunch")
            async with TestClient(TestServer(app, host="127.0.0.1", port=ports())) as client:
                boss = await (await client.get("/api/wallboard",
                                               headers={"X-Test-User": "boss"})).json()
                sam = await (await client.get("/api/wallboard",
                                              headers={"X-Test-User": "sam"})).json()
                agent = await client.get("/api/wallboard", headers={"X-Test-User": "alice"})
                nobody = await client.get("/api/wallboard")
            return boss, sam, agent.status, nobody.status
        finally:
            engine.close()

    boss, sam, agent_status, nobody_status = asyncio.run(go())
    assert (agent_status, nobody_status) == (403, 401)
    assert boss["timezone"] == "Asia/Kolkata"
    assert boss["day_start"] == local(2026, 11, 23, 0)
    assert boss["thresholds"]["sl_warn"] == 0.8
    assert set(boss["queues"]) == {"support", "sales"}
    assert set(sam["queues"]) == {"sales"}                     # scoped: sales only
    support = boss["queues"]["support"]
    assert support["agents"]["staffed"] == 1
    assert support["agents"]["paused"] == {"lunch": 1}
    assert support["agents"]["available"] == 0
    assert support["waiting"] == 0 and support["callbacks_pending"] == 0
    assert (support["talking"], support["long_calls"], support["longest_call"]) == (0, 0, 0.0)
    today, recent = support["today"], support["last_15m"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (2, 1, 1)
    assert (recent["offered"], recent["answered"], recent["abandoned"]) == (1, 1, 0)
    assert today["service_level"]["offered:20"] == 0.0          # answered at 30 s, abandon
    assert today["service_level"]["answered:20"] == 0.0
    assert today["asa"] == 30.0 and today["abandon_rate"] == 0.5
    assert today["callbacks_pending"] == 0
    assert sam["queues"]["sales"]["today"]["offered"] == 1


def test_wallboard_on_the_engine_app(tmp_path, ports):
    """Through build_app's registration: bearer tokens, the flush, now."""
    async def scenario(client, engine):
        log = engine.queues.stats.log
        t = time.time()
        log.queue_event(t - 5, "sales", "w1", "ENTER")
        log.queue_event(t - 1, "sales", "w1", "EXIT", reason="timeout", wait=4.0)
        r = await client.get("/api/wallboard", headers=SUPERVISOR)
        body = await r.json()
        first = body["queues"]["sales"]["last_15m"]
        log.queue_event(time.time(), "sales", "w2", "ENTER")
        again = await (await client.get("/api/wallboard", headers=ADMIN)).json()
        return r.status, body, first, again

    status, body, first, again = serve(tmp_path, ports, scenario)
    assert status == 200 and body["timezone"] == "UTC"
    # Written half a second ago or less: the route flushed the log first.
    assert first["offered"] == 1 and first["exited"] == 1
    assert again["queues"]["sales"]["last_15m"]["offered"] == 2
    assert set(first["service_level"]) == {f"{v}:20" for v in (
        "answered", "offered", "excluding_short_abandons", "abandons_positive")}
