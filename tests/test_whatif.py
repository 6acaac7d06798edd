"""The staffing what-if: a synthetic day (tests/callday.py, its own
first-come-first-served simulation) written into a real event log and
replayed through acdcore's simulator and scheduler.  With the day's own
staffing the prediction is the actual; more agents never lower the service
level nor raise abandonment; one input gives one answer."""
from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from acdcore.whatif import ABANDONED, ANSWERED, DayCalls, predict
from apikit import ADMIN, EngineApp, serve
from callday import DayShape, write_day
from sipagent.api.reports import add_report_routes
from sipagent.store.intervals import ReportLimit, span_of
from sipagent.store.whatif import read_day, whatif
from test_wallboard import scoped_auth

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 23)
T0 = datetime(2026, 11, 23, tzinfo=BERLIN).timestamp()
STAFF = 10


@pytest.fixture(scope="module")
def day_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("whatif") / "events.sqlite3"
    truth = write_day(path, DayShape(t0=T0, calls=1500, agents=STAFF))
    return path, truth


def test_the_log_is_read_back_as_the_day_was(day_log):
    path, truth = day_log
    day = read_day(path, "sales", T0, T0 + 86400)
    assert day.arrival.size == 1500
    assert int(np.count_nonzero(day.outcome == ANSWERED)) == truth["answered"]
    assert int(np.count_nonzero(day.outcome == ABANDONED)) == truth["abandoned"]
    answered = day.outcome == ANSWERED
    assert np.all(np.isfinite(day.handle[answered]))
    # talk (lognormal, mean 170 s) + 10 s of wrap-up
    assert 150 < float(day.handle[answered].mean()) < 210
    assert day.ring == pytest.approx(2.0)
    with pytest.raises(ReportLimit) as exc:
        read_day(path, "sales", T0, T0 + 86400, max_calls=1000)
    assert exc.value.param == "date" and "1500 calls" in str(exc.value)


def test_the_days_own_staffing_predicts_the_actual(day_log):
    path, _ = day_log
    result = whatif(path, span_of(DAY, DAY, "1h", BERLIN), "sales", STAFF)
    total = result["total"]
    assert total["actual"]["offered"] == 1500
    assert 0.3 < total["actual"]["sl"] < 0.9          # a day with some pressure in it
    assert total["predicted"]["sl"] == pytest.approx(total["actual"]["sl"], abs=0.02)
    assert total["predicted"]["abandon_rate"] == pytest.approx(total["actual"]["abandon_rate"],
                                                               abs=0.01)
    busy = [r for r in result["intervals"] if r["actual"]["offered"] >= 30]
    assert len(busy) >= 8
    for r in busy:
        assert r["predicted"]["sl"] == pytest.approx(r["actual"]["sl"], abs=0.05), r["start"]
        assert r["predicted"]["abandon_rate"] == pytest.approx(r["actual"]["abandon_rate"],
                                                               abs=0.05), r["start"]
    assert result["intervals"][0]["start"] == "2026-11-23T00:00:00+01:00"


def test_more_agents_more_service_less_abandonment(day_log):
    path, _ = day_log
    span = span_of(DAY, DAY, "1h", BERLIN)
    totals = [whatif(path, span, "sales", n)["total"]["predicted"] for n in range(6, 16)]
    sl = [t["sl"] for t in totals]
    abandon = [t["abandon_rate"] for t in totals]
    assert sl == sorted(sl) and abandon == sorted(abandon, reverse=True)
    assert sl[-1] > sl[0] + 0.3 and abandon[0] > abandon[-1] + 0.1


def test_one_input_one_answer(day_log):
    path, _ = day_log
    span = span_of(DAY, DAY, "15m", BERLIN)
    first = whatif(path, span, "sales", 8, seed=7)
    assert whatif(path, span, "sales", 8, seed=7) == first
    assert len(first["intervals"]) == 96


def test_patience_of_callers_who_did_not_abandon_is_censored():
    # Three callers waited 10 s and were answered, one gave up after 30 s:
    # 60 s in line for one abandon.
    day = DayCalls(arrival=np.array([0.0, 1.0, 2.0, 3.0]),
                   outcome=np.array([ANSWERED, ANSWERED, ANSWERED, ABANDONED], dtype=np.int8),
                   wait=np.array([10.0, 10.0, 10.0, 30.0]),
                   handle=np.array([60.0, 60.0, 60.0, np.nan]))
    assert day.mean_patience == 60.0
    assert predict(day, 4).outcome.tolist() == [ANSWERED] * 4     # nobody waits with 4


def test_whatif_route(tmp_path, ports):
    async def scenario(client, engine):
        write_day(engine.queues.stats.log.path, DayShape(t0=T0 - 3600, calls=400, agents=4))
        ok = await client.post("/api/reports/whatif", headers=ADMIN, json={
            "date": "2026-11-23", "queue": "sales", "agents": 4, "interval": "1h"})
        return ok.status, await ok.json()

    status, body = serve(tmp_path, ports, scenario)    # apikit's console zone: UTC
    assert status == 200
    assert body["agents"] == 4 and body["interval"] == "1h" and body["calls"] == 400
    assert len(body["intervals"]) == 24
    row = next(r for r in body["intervals"] if r["actual"]["offered"])
    assert set(row) >= {"start", "actual", "predicted"}
    assert set(row["actual"]) >= {"sl", "abandon_rate", "offered"}
    assert set(row["predicted"]) >= {"sl", "abandon_rate"}
    assert body["total"]["predicted"]["sl"] == pytest.approx(body["total"]["actual"]["sl"],
                                                             abs=0.02)


def test_a_scoped_supervisor_reads_only_its_queues(tmp_path, ports):
    async def go():
        engine = EngineApp(tmp_path)
        app = web.Application()
        add_report_routes(app, lambda: engine.queues, engine.config, scoped_auth)
        log = engine.queues.stats.log
        for queue in ("sales", "support"):
            log.queue_event(T0 + 36000, queue, f"{queue}-1", "ENTER")
        log.flush()
        try:
            async with TestClient(TestServer(app, host="127.0.0.1", port=ports())) as client:
                base = "/api/reports/intervals?from=2026-11-23&to=2026-11-23&interval=1d"
                out = {}
                for who, path in (("sam", base), ("boss", base), ("sam", base + "&queue=support"),
                                  ("alice", base)):
                    r = await client.get(path, headers={"X-Test-User": who})
                    out[(who, path[-7:])] = (r.status, await r.text())
                r = await client.post("/api/reports/whatif", headers={"X-Test-User": "sam"},
                                      json={"date": "2026-11-23", "queue": "support",
                                            "agents": 2})
                out["whatif"] = (r.status, await r.text())
                return out
        finally:
            engine.close()

    import asyncio
    out = asyncio.run(go())
    assert {r["queue"] for r in json.loads(out[("sam", "rval=1d")][1])["intervals"]} == {"sales"}
    assert {r["queue"] for r in json.loads(out[("boss", "rval=1d")][1])["intervals"]} == {
        "sales", "support"}
    assert out[("sam", "support")][0] == 403
    assert out[("alice", "rval=1d")][0] == 403
    assert out["whatif"][0] == 403
