"""IVR verbs over real SIP on 127.0.0.1: gather (RFC 4733 and SIP INFO,
inter-digit timeout, invalid-input retry), record, blind transfer, hang-up
during play and gather, live reload, business-hours routing.

Each test writes its flow file with the path of a result file baked in: the
flow reports what it saw there, so the test checks the flow's own view."""
from __future__ import annotations

import json
import os
import time
import wave

import pytest

from engine_proc import Engine, base_config
from simphones import tones
from sipua import UA
from test_engine_calls import tail_frequency

pytestmark = pytest.mark.sip


def engine_with(ports, workdir, prompts_dir, flows: dict[str, str], **extra) -> Engine:
    d = workdir / "flows"
    d.mkdir(exist_ok=True)
    for name, source in flows.items():
        (d / f"{name}.py").write_text(source)
    routes = extra.pop("routes", [{"number": str(100 + i), "flow": name}
                                  for i, name in enumerate(flows)])
    cfg = base_config(ports, workdir, prompts_dir, flows={"dir": str(d)}, routes=routes, **extra)
    return Engine(workdir, cfg)


def result_file(workdir, name="result.json"):
    return workdir / name


def wait_file(path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            time.sleep(0.1)
            return json.loads(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"the flow wrote no {path.name}")


def report(path) -> str:
    """Flow code that dumps a dict to the result file."""
    return (f"import json\n"
            f"def report(d):\n"
            f"    open({str(path)!r} + '.tmp', 'w').write(json.dumps(d))\n"
            f"    __import__('os').replace({str(path)!r} + '.tmp', {str(path)!r})\n")


@pytest.mark.parametrize("method", ["rfc2833", "info"])
def test_gather_digits_with_terminator_and_inter_digit_timeout(ports, workdir, prompts_dir, method):
    out = result_file(workdir)
    flow = report(out) + (
        "async def flow(call):\n"
        "    await call.answer()\n"
        "    first = await call.gather(max_digits=6, timeout=8, inter_digit_timeout=1.5)\n"
        "    second = await call.gather(max_digits=6, timeout=8, inter_digit_timeout=1.5)\n"
        "    report({'first': first, 'second': second})\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"g": flow}) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        time.sleep(0.5)
        caller.request("dtmf", call="c1", digits="123#", method=method)   # terminator ends it
        time.sleep(1.0)
        caller.request("dtmf", call="c1", digits="45", method=method)
        # No more keys: the inter-digit timeout (1.5 s) ends the second input
        # long before the first-digit timeout (8 s) would.
        t = time.monotonic()
        got = wait_file(out)
        assert time.monotonic() - t < 4.0
        assert got == {"first": "123", "second": "45"}


def test_invalid_input_is_retried(ports, workdir, prompts_dir):
    out = result_file(workdir)
    flow = report(out) + (
        "async def flow(call):\n"
        "    await call.answer()\n"
        "    d = await call.gather(max_digits=1, timeout=6, valid='[12]', tries=3,\n"
        "                          invalid_prompt='invalid')\n"
        "    report({'digit': d})\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"g": flow}) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        time.sleep(0.5)
        caller.request("dtmf", call="c1", digits="7")
        time.sleep(3.5)  # the "invalid" prompt plays, then the second try listens
        caller.request("dtmf", call="c1", digits="2")
        assert wait_file(out) == {"digit": "2"}


def test_record_gives_a_complete_wav_with_the_callers_audio(ports, workdir, prompts_dir):
    out = result_file(workdir)
    flow = report(out) + (
        "async def flow(call):\n"
        "    await call.answer()\n"
        "    rec = await call.record(beep=True, max_length=20, silence=0)\n"
        "    report({'path': rec.path, 'duration': rec.duration, 'ended_by': rec.ended_by})\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"r": flow}) as engine:
        caller.request("call", call="c1", to=engine.number("100"), tone=440)
        caller.wait_state("c1", "CONFIRMED")
        time.sleep(3.5)
        caller.request("dtmf", call="c1", digits="#")
        got = wait_file(out)
    assert got["ended_by"] == "terminator"
    assert 1.5 < got["duration"] < 4.0, got
    path = got["path"]
    assert os.path.basename(path).startswith("rec-") and not list(
        (workdir / "data" / "recordings").glob(".rec-*"))
    with wave.open(path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert os.path.getsize(path) == 44 + 2 * w.getnframes()   # header matches the data
        assert abs(w.getnframes() / 8000 - got["duration"]) < 0.01
    assert abs(tones.dominant_frequency(path) - 440) < 15


def test_blind_transfer_bridges_the_caller_to_the_target(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="target") as target, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        target.request("auto_answer", user="*", after=0.3, code=200, tone=880)
        flow = ("async def flow(call):\n"
                "    await call.answer()\n"
                f"    await call.transfer({target.uri('sales')!r})\n")
        rec = workdir / "caller.wav"
        with engine_with(ports, workdir, prompts_dir, {"t": flow}) as engine:
            caller.request("call", call="c1", to=engine.number("100"), tone=440, record=str(rec))
            inc = target.wait_event({"ev": "incoming"}, timeout=10)
            assert inc["user"] == "sales"
            target.wait_state(inc["call"], "CONFIRMED")
            time.sleep(2.5)
            caller.request("hangup", call="c1")
            target.wait_state(inc["call"], "DISCONNECTED", timeout=10)
            caller.wait_event({"ev": "recorded"})
        assert abs(tail_frequency(rec) - 880) < 15


@pytest.mark.parametrize("during", ["play", "gather"])
def test_hangup_during_a_verb_runs_the_flows_cleanup(ports, workdir, prompts_dir, during):
    out = result_file(workdir)
    verb = "await call.play('welcome', 'welcome', 'welcome')" if during == "play" \
        else "await call.gather(max_digits=4, timeout=30)"
    flow = report(out) + (
        "from ivrflows import CallerHangup\n"
        "async def flow(call):\n"
        "    await call.answer()\n"
        "    try:\n"
        f"        {verb}\n"
        "        report({'finished': True})\n"
        "    except CallerHangup:\n"
        "        report({'hangup_seen': True})\n"
        "        raise\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"h": flow}) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        time.sleep(1.5)
        caller.request("hangup", call="c1")
        assert wait_file(out) == {"hangup_seen": True}
        time.sleep(0.5)
        assert any(e.get("event") == "caller hung up" for e in engine.log_events())
        assert engine.metric("sipacd_flow_errors_total", flow="h") == 0


def test_live_reload_new_calls_get_new_code_old_calls_keep_theirs(ports, workdir, prompts_dir):
    def version(v: str) -> str:
        """The flow writes which version handled the digit it got."""
        return ("import json, os\n"
                "async def flow(call):\n"
                "    await call.answer()\n"
                "    d = await call.gather(max_digits=1, timeout=20)\n"
                f"    p = os.path.join({str(workdir)!r}, 'x-' + d + '.json')\n"
                f"    open(p, 'w').write(json.dumps({{'version': {v!r}}}))\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"live": version("v1")}) as engine:
        caller.request("call", call="old", to=engine.number("100"))
        caller.wait_state("old", "CONFIRMED")
        time.sleep(1.0)  # the old call is inside v1's gather now
        path = workdir / "flows" / "live.py"
        path.write_text(version("v2"))
        os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even within a tick
        caller.request("call", call="new", to=engine.number("100"))
        caller.wait_state("new", "CONFIRMED")
        time.sleep(1.0)
        caller.request("dtmf", call="new", digits="2")
        caller.request("dtmf", call="old", digits="1")
        assert wait_file(workdir / "x-2.json") == {"version": "v2"}
        assert wait_file(workdir / "x-1.json") == {"version": "v1"}
        assert engine.wait_metric("sipacd_flow_reloads_total", 1, result="ok") == 1
        # A broken edit keeps the good version in service.
        path.write_text("async def flow(call)\n")
        os.utime(path, (time.time() + 10, time.time() + 10))
        caller.request("call", call="third", to=engine.number("100"))
        caller.wait_state("third", "CONFIRMED")
        time.sleep(1.0)
        caller.request("dtmf", call="third", digits="3")
        assert wait_file(workdir / "x-3.json") == {"version": "v2"}
        assert engine.metric("sipacd_flow_reloads_total", result="failed") == 1


def test_business_hours_route_the_call(ports, workdir, prompts_dir):
    out_open, out_closed = workdir / "open.json", workdir / "closed.json"
    flow = ("import json\n"
            "async def flow(call):\n"
            "    await call.answer()\n"
            f"    path = {str(out_open)!r} if call.called == '100' else {str(out_closed)!r}\n"
            "    open(path, 'w').write(json.dumps({'open': call.is_open()}))\n")
    schedules = {"always": {"timezone": "UTC", "hours": {"daily": ["00:00-12:00", "12:00-00:00"]}},
                 "never": {"timezone": "UTC", "hours": {}}}
    routes = [{"number": "100", "flow": "hours", "schedule": "always"},
              {"number": "200", "flow": "hours", "schedule": "never"}]
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"hours": flow}, routes=routes,
                        schedules=schedules) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.request("call", call="c2", to=engine.number("200"))
        assert wait_file(out_open) == {"open": True}
        assert wait_file(out_closed) == {"open": False}


def test_a_flow_blocking_the_loop_is_detected_and_named(ports, workdir, prompts_dir):
    flow = ("import time\n"
            "async def flow(call):\n"
            "    await call.answer()\n"
            "    time.sleep(1.5)  # blocks every call in the engine\n"
            "    await call.hangup()\n")
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            engine_with(ports, workdir, prompts_dir, {"blocky": flow}) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "DISCONNECTED", timeout=15)
        assert engine.wait_metric("sipacd_event_loop_stalls_total", 1) == 1
        stalls = [e for e in engine.log_events() if e.get("event") == "event loop blocked"]
        assert stalls and stalls[0]["flow"].endswith("blocky.py:4"), stalls
