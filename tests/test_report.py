"""The report: KPIs recomputed from the event log alone.

The day below is small enough to work out by hand; every expected number
is written as the fraction it comes from.
"""
from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acdcore.kpi import QueueTally
from acdcore.service_level import ServiceLevelVariant as V
from sipagent.store.eventlog import EventLog
from sipagent.metrics import EngineMetrics
from sipagent.store.report import report
from sipagent.cli.report import main as report_main

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc).timestamp()
SL = (20.0, 30.0)


def write_day(path) -> None:
    """Queue "sales", agents a and b (logged in before the window), 8 calls;
    queue "billing" with one call that finds no agents."""
    with EventLog(path, flush_interval=60) as el:
        q = lambda dt, call, kind, **kw: el.queue_event(T0 + dt, kw.pop("queue", "sales"),
                                                        call, kind, **kw)
        ag = lambda dt, agent, kind, **kw: el.agent_event(T0 + dt, agent, kind, **kw)
        for name in ("a", "b"):
            ag(-100, name, "LOGIN")
            ag(-100, name, "READY")
        q(0, "c1", "ENTER", position=1)
        q(2, "c1", "OFFER", agent="a")
        q(10, "c1", "CONNECT", agent="a", wait=10.0)
        q(10, "c2", "ENTER", position=1)
        q(18, "c3", "ENTER", position=2)
        q(23, "c3", "ABANDON", wait=5.0, position=2)          # short: wait <= 5 s
        q(30, "c2", "CONNECT", agent="b", wait=20.0)          # exactly at the 20 s edge
        q(40, "c4", "ENTER", position=1)
        q(50, "c5", "ENTER", position=2)
        q(60, "c6", "ENTER", position=3)
        q(70, "c1", "COMPLETE_CALLER", agent="a")
        ag(70, "a", "WRAPUP_START", call_id="c1")
        q(75, "c6", "ABANDON", wait=15.0, position=3)
        q(80, "c4", "ABANDON", wait=40.0, position=1)
        ag(80, "a", "WRAPUP_END")
        q(97, "c7", "ENTER", position=2)
        q(100, "c8", "ENTER", position=3)
        q(100, "c8", "EXIT", reason="full", wait=0.0)
        q(100, "c7", "OFFER", agent="a")
        q(110, "c7", "RINGNOANSWER", agent="a", reason="ring_timeout")
        q(110, "c5", "EXIT", reason="timeout", wait=60.0)
        q(115, "c7", "OFFER", agent="a")
        q(125, "c7", "CONNECT", agent="a", wait=28.0)
        q(130, "c2", "COMPLETE_AGENT", agent="b")
        ag(130, "b", "WRAPUP_START", call_id="c2")
        ag(150, "b", "WRAPUP_END")
        q(185, "c7", "COMPLETE_CALLER", agent="a")
        ag(185, "a", "WRAPUP_START", call_id="c7")
        ag(195, "a", "WRAPUP_END")
        q(200, "c9", "ENTER", queue="billing", position=1)
        q(200, "c9", "EXIT", queue="billing", reason="empty", wait=0.0)
        ag(300, "a", "PAUSE", reason="lunch")
        ag(400, "a", "UNPAUSE")
        ag(500, "b", "LOGOUT")
        el.survey_answer("c1", 5, 5, t_wall=T0 + 90)
        el.survey_answer("c2", 2, 5, t_wall=T0 + 160)
        el.survey_answer("c7", 4, 5, t_wall=T0 + 200)


@pytest.fixture
def day(tmp_path):
    path = tmp_path / "events.sqlite3"
    write_day(path)
    return path


def one(rows, queue="sales"):
    [row] = [r for r in rows if r.queue == queue]
    return row


def test_whole_period_by_hand(day):
    row = one(report(day, T0, T0 + 600, thresholds=SL, short_abandon=5.0))
    k = row.kpis()
    assert (k["offered"], k["answered"], k["abandoned"], k["short_abandoned"]) == (8, 3, 3, 1)
    assert k["exited"] == {"full": 1, "timeout": 1}
    # answered waits 10, 20, 28; abandoned waits 5, 15, 40 (5 is short)
    assert k["service_level"]["20"] == {
        "answered": 2 / 3, "offered": 2 / 6, "excluding_short_abandons": 2 / 5,
        "abandons_positive": (2 + 2) / 6}
    assert k["service_level"]["30"] == {
        "answered": 3 / 3, "offered": 3 / 6, "excluding_short_abandons": 3 / 5,
        "abandons_positive": (3 + 2) / 6}
    assert k["answer_rate"] == 3 / 8
    assert k["abandon_rate"] == 3 / 8
    assert k["abandon_rate_excluding_short"] == 2 / 7
    assert k["asa"] == pytest.approx((10 + 20 + 28) / 3)
    assert k["mean_abandon_wait"] == pytest.approx((5 + 15 + 40) / 3)
    # talk 60 + wrap 10, talk 100 + wrap 20, talk 60 + wrap 10
    assert k["handled"] == 3
    assert k["aht"] == pytest.approx((70 + 120 + 70) / 3)
    # a: busy 60+10+60+10, idle 10+45+105+200 (paused 300..400);
    # b: busy 100+20, idle 30+350 (logged out at 500)
    assert k["agent_busy_seconds"] == pytest.approx(140 + 120)
    assert k["agent_idle_seconds"] == pytest.approx(360 + 380)
    assert k["occupancy"] == pytest.approx(260 / 1000)
    assert (k["surveys"], k["satisfied"]) == (3, 2)
    assert k["satisfaction"] == pytest.approx(2 / 3)
    assert k["participation"] == 1.0


def test_other_queue_and_queue_filter(day):
    rows = report(day, T0, T0 + 600, thresholds=SL)
    assert [r.queue for r in rows] == ["billing", "sales"]
    billing = one(rows, "billing").kpis()
    assert (billing["offered"], billing["answered"], billing["exited"]) == (1, 0, {"empty": 1})
    assert math.isnan(billing["asa"]) and math.isnan(billing["occupancy"])
    only = report(day, T0, T0 + 600, queue="billing", thresholds=SL)
    assert [r.queue for r in only] == ["billing"]


def test_the_state_at_t_from_is_rebuilt(day):
    # From t0+60 both agents are mid-call; their earlier events are outside the window.
    k = one(report(day, T0 + 60, T0 + 600, thresholds=SL)).kpis()
    assert k["offered"] == 3                    # c6, c7, c8 entered after t0+60
    assert k["answered"] == 1                   # c7
    assert k["handled"] == 3                    # c1's wrap-up ended at 80, after t0+60
    assert k["aht"] == pytest.approx(260 / 3)   # with c1's talk from before the window
    # a: busy 10+10+60+10, idle 45+105+200; b: busy 70+20, idle 350
    assert k["agent_busy_seconds"] == pytest.approx(90 + 90)
    assert k["agent_idle_seconds"] == pytest.approx(350 + 350)


@pytest.mark.parametrize("start, handled, busy, idle", [
    (75, 3, (5 + 60 + 10) + (55 + 20), (45 + 105 + 200) + 350),   # a in wrap-up, b talking
    (190, 1, 5, 105 + 200 + 310),            # a's last wrap-up end was at 80
    (350, 0, 0, 200 + 150),                  # a paused since 300
])
def test_the_state_at_t_from_from_an_anchor(day, start, handled, busy, idle):
    row = one(report(day, T0 + start, T0 + 600, thresholds=SL))
    assert row.tally.handled == handled
    assert (row.busy_time, row.idle_time) == pytest.approx((busy, idle))


def test_intervals_split_the_period(day):
    rows = [r for r in report(day, T0, T0 + 600, interval=60, thresholds=SL) if r.queue == "sales"]
    assert [r.start - T0 for r in rows] == [60.0 * k for k in range(10)]
    assert rows[-1].end == T0 + 600
    assert [r.tally.offered for r in rows[:3]] == [5, 3, 0]
    assert [r.tally.answered.count for r in rows[:3]] == [2, 0, 1]
    assert [r.tally.abandoned.count for r in rows[:3]] == [1, 2, 0]
    assert [sum(r.tally.exited.values()) for r in rows[:3]] == [0, 2, 0]
    assert [r.tally.handled for r in rows[:5]] == [0, 1, 1, 1, 0]
    # [0, 60): a idle 10 busy 50, b idle 30 busy 30
    assert (rows[0].busy_time, rows[0].idle_time) == pytest.approx((80, 40))
    # Intervals add up to the whole period, counts and agent time alike.
    total = QueueTally(SL, 5.0)
    for r in rows:
        total += r.tally
    whole = one(report(day, T0, T0 + 600, thresholds=SL))
    assert total.summary() == whole.tally.summary()
    assert sum(r.busy_time for r in rows) == pytest.approx(whole.busy_time)
    assert sum(r.idle_time for r in rows) == pytest.approx(whole.idle_time)
    # A short last interval ends at t_to.
    rows = report(day, T0, T0 + 150, interval=60, queue="sales", thresholds=SL)
    assert [(r.start - T0, r.end - T0) for r in rows] == [(0, 60), (60, 120), (120, 150)]


def test_same_numbers_as_the_wait_histograms(day):
    """What the runtime observes into Prometheus, bucket by bucket, equals the report."""
    metrics = EngineMetrics(thresholds=SL)
    for wait in (10.0, 20.0, 28.0):
        metrics.answer_wait.labels("sales").observe(wait)
    for wait in (5.0, 15.0, 40.0):
        metrics.abandon_wait.labels("sales").observe(wait)
    tally = one(report(day, T0, T0 + 600, thresholds=SL)).tally
    get = metrics.registry.get_sample_value
    for edge in (5.0, 20.0, 30.0):
        labels = {"queue": "sales", "le": str(edge)}
        assert get("sipacd_queue_answer_wait_seconds_bucket", labels) == tally.answered.within(edge)
        assert get("sipacd_queue_abandon_wait_seconds_bucket", labels) == tally.abandoned.within(edge)
    assert get("sipacd_queue_answer_wait_seconds_sum", {"queue": "sales"}) == tally.answered.wait_sum


def test_thresholds_per_queue(day):
    rows = report(day, T0, T0 + 600, thresholds={"sales": (15.0,)},
                  short_abandon={"sales": 10.0})
    k = one(rows).kpis()
    assert list(k["service_level"]) == ["15"]
    assert k["service_level"]["15"]["answered"] == 1 / 3
    assert k["short_abandoned"] == 1                # 5 s <= 10 s, 15 s is not
    assert list(one(rows, "billing").kpis()["service_level"]) == ["20"]   # the default


def test_bad_periods(day):
    with pytest.raises(ValueError):
        report(day, T0, T0)
    with pytest.raises(ValueError):
        report(day, T0, T0 + 10, interval=0)
    with pytest.raises(FileNotFoundError):
        report(day.parent / "nope.sqlite3", T0, T0 + 10)


# -- the same numbers as acdcore.kpi, on generated calls ----------------------------
_call = st.tuples(
    st.floats(0, 3000),                                        # entered at
    st.sampled_from(["answered", "abandoned", "timeout", "full"]),
    st.sampled_from([0.0, 4.0, 5.0, 5.5, 15.0, 20.0, 20.001, 29.0, 30.0, 31.0, 300.0]),  # wait
    st.floats(1, 600),                                         # talk
    st.floats(0, 60),                                          # wrap-up
)


@settings(max_examples=30, deadline=None)
@given(calls=st.lists(_call, max_size=40))
def test_matches_acdcore_kpi(tmp_path_factory, calls):
    path = tmp_path_factory.mktemp("gen") / "events.sqlite3"
    expected = QueueTally(SL, 5.0)
    with EventLog(path, flush_interval=60) as el:
        for i, (at, outcome, wait, talk, wrap) in enumerate(calls):
            cid, agent, t = f"c{i}", f"agent{i}", T0 + at
            el.agent_event(t - 1, agent, "LOGIN")
            el.queue_event(t, "q", cid, "ENTER")
            expected.call_offered()
            if outcome == "answered":
                el.queue_event(t + wait, "q", cid, "CONNECT", agent=agent, wait=wait)
                el.queue_event(t + wait + talk, "q", cid, "COMPLETE_CALLER", agent=agent)
                el.agent_event(t + wait + talk, agent, "WRAPUP_START", call_id=cid)
                el.agent_event(t + wait + talk + wrap, agent, "WRAPUP_END")
                expected.call_answered(wait)
                expected.call_handled(talk, wrap)
            elif outcome == "abandoned":
                el.queue_event(t + wait, "q", cid, "ABANDON", wait=wait)
                expected.call_abandoned(wait)
            else:
                el.queue_event(t + wait, "q", cid, "EXIT", reason=outcome, wait=wait)
                expected.call_exited(outcome)
    rows = report(path, T0 - 10, T0 + 5000, queue="q", thresholds=SL, short_abandon=5.0)
    got = rows[0].tally.summary()
    want = expected.summary()
    assert got.keys() == want.keys()
    for key in want:
        if key in ("asa", "aht", "mean_abandon_wait"):
            assert got[key] == pytest.approx(want[key], nan_ok=True), key
        else:
            assert json.dumps(got[key], sort_keys=True) == json.dumps(want[key], sort_keys=True), key


# -- the command -----------------------------------------------------------------------
def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def test_cli_json(day, capsys):
    assert report_main(["--db", str(day), "--from", _iso(T0), "--to", _iso(T0 + 600),
                        "--queue", "sales", "--sl", "20,30", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["queue"] == "sales" and row["start"] == "2026-11-23T09:00:00+00:00"
    assert row["offered"] == 8 and row["service_level"]["20"]["excluding_short_abandons"] == 0.4
    assert row["occupancy"] == pytest.approx(0.26)


def test_cli_json_nan_is_null(day, capsys):
    assert report_main(["--db", str(day), "--from", _iso(T0), "--to", _iso(T0 + 600),
                        "--queue", "billing", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["asa"] is None and row["offered"] == 1


def test_cli_csv_intervals(day, capsys):
    assert report_main(["--db", str(day), "--from", _iso(T0), "--to", _iso(T0 + 3600),
                        "--interval", "15m", "--sl", "20,30", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4 * 2                   # four quarter hours, two queues
    first = [r for r in rows if r["queue"] == "sales"][0]
    assert first["start"] == "2026-11-23T09:00:00+00:00"
    assert first["end"] == "2026-11-23T09:15:00+00:00"
    assert int(first["offered"]) == 8 and int(first["exited_timeout"]) == 1
    assert float(first["sl_30_abandons_positive"]) == pytest.approx(5 / 6)
    assert float(first["abandon_rate_excluding_short"]) == pytest.approx(2 / 7)
    empty = [r for r in rows if r["queue"] == "sales"][1]
    assert int(empty["offered"]) == 0 and empty["asa"] == ""


def test_cli_table(day, capsys):
    assert report_main(["--db", str(day), "--from", _iso(T0), "--to", _iso(T0 + 600),
                        "--sl", "20"]) == 0
    out = capsys.readouterr().out
    assert "sales" in out and "billing" in out
    assert "26.0%" in out                       # occupancy


def test_cli_errors(day, capsys):
    assert report_main(["--db", str(day), "--from", "yesterday", "--to", _iso(T0)]) == 2
    assert "--from" in capsys.readouterr().err
    assert report_main(["--db", str(day), "--from", _iso(T0), "--to", _iso(T0 + 60),
                        "--interval", "7x"]) == 2
    assert "--interval" in capsys.readouterr().err
    assert report_main(["--db", str(day.parent / "missing.sqlite3"), "--from", _iso(T0),
                        "--to", _iso(T0 + 60)]) == 2
    assert "no event log" in capsys.readouterr().err


def test_cli_with_a_config(tmp_path, capsys):
    """-c takes the log from the data dir, thresholds per queue, and members for occupancy."""
    from sipagent.store.eventlog import event_log_path
    data = tmp_path / "data"
    write_day(event_log_path(data))
    config = tmp_path / "sipacd.toml"
    config.write_text(f"""
[data]
dir = "{data}"
[queues.sales]
service_levels = [30, 20]
short_abandon = 4
[queues.billing]
service_levels = [45]
[agents.a]
uri = "sip:a@127.0.0.1:5072"
queues = ["sales"]
[agents.b]
uri = "sip:b@127.0.0.1:5073"
queues = ["billing"]
""")
    assert report_main(["-c", str(config), "--from", _iso(T0), "--to", _iso(T0 + 600),
                        "--format", "json"]) == 0
    by_queue = {r["queue"]: r for r in json.loads(capsys.readouterr().out)}
    sales, billing = by_queue["sales"], by_queue["billing"]
    assert list(sales["service_level"]) == ["20", "30"] and list(billing["service_level"]) == ["45"]
    assert sales["short_abandoned"] == 0                 # the 5 s abandon is not <= 4 s
    assert sales["occupancy"] == pytest.approx(140 / 500)   # agent a only
    assert billing["occupancy"] == pytest.approx(120 / 500)  # b serves billing
    assert billing["offered"] == 1


def test_pause_during_a_call_applies_after_wrap_up(tmp_path):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        el.agent_event(T0, "y", "LOGIN")
        el.queue_event(T0 + 9, "q", "c2", "ENTER")
        el.queue_event(T0 + 10, "q", "c2", "CONNECT", agent="y", wait=1.0)
        el.agent_event(T0 + 20, "y", "PAUSE", reason="break")       # pending, as in the core
        el.queue_event(T0 + 40, "q", "c2", "COMPLETE_AGENT", agent="y")
        el.agent_event(T0 + 40, "y", "WRAPUP_START", call_id="c2")
        el.agent_event(T0 + 50, "y", "WRAPUP_END")                   # now paused
        el.agent_event(T0 + 80, "y", "UNPAUSE")
    row = one(report(path, T0, T0 + 100), "q")
    assert (row.busy_time, row.idle_time) == pytest.approx((30 + 10, 10 + 20))
    assert row.tally.aht == pytest.approx(30 + 10)
    # From T0+60 the agent's state is rebuilt from its wrap-up end at T0+50:
    # still paused then, because the pause came during the call.
    row = one(report(path, T0 + 60, T0 + 100, members={"q": ["y"]}), "q")
    assert (row.busy_time, row.idle_time) == pytest.approx((0, 20))


@pytest.mark.parametrize("recovered", [False, True])
def test_a_call_left_open_by_a_crash(tmp_path, recovered):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        el.agent_event(T0, "x", "LOGIN")
        el.queue_event(T0 + 9, "q", "c1", "ENTER")
        el.queue_event(T0 + 10, "q", "c1", "CONNECT", agent="x", wait=1.0)
        el.queue_event(T0 + 10, "q", "c3", "ENTER")
    # crash; the engine starts again at T0+1000
    with EventLog(path) as el:
        if recovered:
            el.close_dangling()
        el.agent_event(T0 + 1000, "x", "LOGIN")
    row = one(report(path, T0, T0 + 1100), "q")
    assert row.tally.handled == 0                  # c1 never completed: not in AHT
    if recovered:
        # x logged out at the last logged moment; c3 exited, c1's talk ended there
        assert (row.busy_time, row.idle_time) == pytest.approx((0, 10 + 100))
        assert dict(row.tally.exited) == {"engine_restart": 1}
        assert row.closed_by_restart == 2
    else:
        # the log says x talked until the restart, and c3 never left
        assert (row.busy_time, row.idle_time) == pytest.approx((990, 10 + 100))
        assert row.tally.offered == 2 and not row.tally.exited


@pytest.fixture
def shanghai(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_cli_local_times(day, capsys, shanghai):
    # 17:00 in Shanghai (UTC+8, no DST) is 09:00 UTC; output stays in local time.
    assert report_main(["--", "--db", str(day), "--from", "2026-11-23 17:00",
                        "--to", "2026-11-23T17:10", "--queue", "sales", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["start"], row["end"]) == ("2026-11-23T17:00:00+08:00", "2026-11-23T17:10:00+08:00")
    assert row["offered"] == 8


def test_cli_local_days_across_dst(tmp_path, capsys, monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Europe/Berlin")     # summer time ends 2026-10-25 03:00 -> 02:00
    time.tzset()
    try:
        path = tmp_path / "events.sqlite3"
        with EventLog(path) as el:
            # 00:30 local on the 26th (CET, +01:00) is 23:30 UTC on the 25th
            el.queue_event(datetime(2026, 10, 25, 23, 30, tzinfo=timezone.utc).timestamp(),
                           "q", "c1", "ENTER")
        assert report_main(["--db", str(path), "--from", "2026-10-24", "--to", "2026-10-27",
                            "--interval", "1d", "--format", "json"]) == 0
        rows = json.loads(capsys.readouterr().out)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [r["start"] for r in rows] == ["2026-10-24T00:00:00+02:00", "2026-10-25T00:00:00+02:00",
                                          "2026-10-26T00:00:00+01:00"]
    assert [r["offered"] for r in rows] == [0, 0, 1]
