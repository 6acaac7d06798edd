"""The flow test kit itself: virtual time, the scripted caller, every verb
of the fake, the shared gather policy, menus and speech."""
from __future__ import annotations

import asyncio
import inspect
import time
import wave
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from ivrflows import Call
from ivrflows import call as call_module
from ivrflows import speech
from ivrflows.kit.fakecall import FakeCall
from ivrflows.menu import BACK, back, choose, menu
from ivrflows.schedule import from_dict
from ivrflows.testing import (FlowMistake, FlowStalled, QueueScript, hangup, parse_digits,
                              press, run_flow, silence, speak)


def flow_of(body):
    """A flow that answers, runs ``body(call)`` and keeps what it returns."""
    box = {}

    async def flow(call):
        await call.answer()
        box["result"] = await body(call)

    flow.box = box
    return flow


def result_of(body, script=(), **kw):
    flow = flow_of(body)
    run = run_flow(flow, script, **kw)
    return flow.box.get("result"), run


# -- virtual time -------------------------------------------------------------------------

def test_an_hour_of_call_time_passes_instantly():
    async def body(call):
        await asyncio.sleep(2000)   # the flow's own sleeps are virtual too
        return await call.gather("x", timeout=600)

    started = time.monotonic()
    digits, run = result_of(body)
    assert digits == ""
    assert run.duration == pytest.approx(2602.0)
    assert time.monotonic() - started < 2.0


def test_a_flow_waiting_for_nothing_is_reported_as_stalled():
    async def body(call):
        await asyncio.Event().wait()

    with pytest.raises(FlowStalled):
        result_of(body)


def test_a_flow_that_never_ends_is_stopped_at_max_seconds():
    async def body(call):
        while True:
            await call.play("beep")

    with pytest.raises(FlowMistake, match="still running after 60 s"):
        result_of(body, max_seconds=60)


# -- gather ---------------------------------------------------------------------------------

def test_gather_collects_until_max_digits_and_leaves_the_rest_for_later():
    async def body(call):
        return [await call.gather("a", max_digits=3), await call.gather("b")]

    got, run = result_of(body, ["12345"])
    assert got == ["123", "4"]
    assert run.heard_digits == ["123", "4"]


def test_terminator_ends_input_and_is_not_returned():
    got, _ = result_of(lambda c: c.gather(max_digits=10), ["42#"])
    assert got == "42"


def test_inter_digit_timeout_ends_input():
    got, run = result_of(lambda c: c.gather(max_digits=10, inter_digit_timeout=2.0),
                         [press("12", gap=3.0)])
    assert got == "1"


def test_first_digit_timeout_gives_no_input():
    got, run = result_of(lambda c: c.gather(timeout=4.0), [press("1", after=4.5)])
    assert got == ""
    assert run.transcript[-2].detail == "no input"


def test_tries_replay_the_prompt_and_play_the_matching_feedback():
    async def body(call):
        return await call.gather("ask", max_digits=4, min_digits=4, tries=3, valid=r"1\d+",
                                 invalid_prompt="bad", no_input_prompt="nothing")

    got, run = result_of(body, ["99#", silence(), "1234"])
    assert got == "1234"
    assert run.prompts == ["ask", "bad", "ask", "nothing", "ask"]


def test_tries_run_out_with_empty_answer_and_feedback_after_the_last():
    got, run = result_of(lambda c: c.gather("ask", tries=2, invalid_prompt="bad"), ["5", "6"])
    assert got == "5"   # no pattern: any key is valid
    got, run = result_of(lambda c: c.gather("ask", tries=2, valid="[12]", invalid_prompt="bad"),
                         ["5", "6"])
    assert got == ""
    assert run.prompts == ["ask", "bad", "ask", "bad"]


def test_without_barge_in_keys_during_the_prompt_are_dropped():
    got, _ = result_of(lambda c: c.gather("long", barge_in=False),
                       [press("1", at=0.5), press("2", after=1.0)])
    assert got == "2"


def test_play_with_barge_in_returns_the_key_and_keeps_it_for_gather():
    async def body(call):
        key = await call.play("one", "two", "three", barge_in=True)
        return key, await call.gather()

    got, run = result_of(body, [press("7", after=2.5)])
    assert got == ("7", "7")
    assert run.prompts == ["one", "two"]


@given(keys=st.text(alphabet="0123456789*#", max_size=8), max_digits=st.integers(1, 6))
def test_gather_matches_a_simple_model(keys, max_digits):
    got, _ = result_of(lambda c: c.gather(max_digits=max_digits), [keys] if keys else [])
    model = keys.split("#")[0][:max_digits]
    assert got == model


def test_bad_valid_pattern_fails_at_once():
    import re
    with pytest.raises(re.error):
        result_of(lambda c: c.gather(valid="[", tries=2))


# -- hang-ups -------------------------------------------------------------------------------

def test_caller_hangup_raises_out_of_the_verb_and_finally_blocks_run():
    cleaned = []

    async def body(call):
        try:
            await call.gather("menu")
            await call.play("never")
        finally:
            cleaned.append(True)

    _, run = result_of(body, [hangup(after=1.0)])
    assert cleaned == [True]
    assert run.ended == "caller hung up"
    assert "never" not in run.prompts


def test_hangup_during_a_named_prompt_and_at_a_time():
    async def body(call):
        await call.play("a", "b", "c")

    _, run = result_of(body, [hangup(during="b", after=0.5)])
    assert run.prompts == ["a", "b"] and run.duration == pytest.approx(2.5)
    _, run = result_of(body, [hangup(at=5.0)])
    assert run.prompts == ["a", "b", "c"] and run.ended == "caller hung up"


def test_after_the_flow_hangs_up_every_verb_raises():
    async def body(call):
        await call.hangup(486)
        await call.play("x")

    _, run = result_of(body)
    assert run.hangup_cause == 486 and run.ended == "flow hung up"
    assert "x" not in run.prompts


def test_playing_before_answer_is_a_mistake():
    async def flow(call):
        await call.play("hello")

    with pytest.raises(FlowMistake, match="before answer"):
        run_flow(flow)


def test_early_media_may_play_before_answer():
    async def flow(call):
        await call.answer(early_media=True)
        await call.play("ringback-message")
        await call.hangup(480)

    run = run_flow(flow)
    assert run.prompts == ["ringback-message"] and run.hangup_cause == 480


def test_flow_errors_propagate_unless_asked_not_to():
    async def flow(call):
        raise KeyError("oops")

    with pytest.raises(KeyError):
        run_flow(flow)
    assert run_flow(flow, raise_errors=False).ended == "raised"


# -- record, queue, transfer, goto ----------------------------------------------------------

@pytest.mark.parametrize("step, ended_by, length", [
    (speak(8.0, then="#"), "terminator", 8.0),
    (speak(8.0), "silence", 8.0),
    (silence(), "silence", 0.0),
    (speak(500.0), "max_length", 60.0),
    (hangup(after=12.0), "hangup", 12.0),
])
def test_record_ends_and_writes_a_complete_wav(tmp_path, step, ended_by, length):
    rec, run = result_of(lambda c: c.record("leave-message", max_length=60, silence=3),
                         [step], record_dir=tmp_path)
    assert (rec.ended_by, rec.duration) == (ended_by, pytest.approx(length))
    with wave.open(rec.path) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        assert w.getnframes() == int(8000 * length)
    assert "beep" in run.verbs


def test_voicemail_is_filed_even_after_the_caller_hung_up(tmp_path):
    async def body(call):
        rec = await call.record("leave-message")
        return await call.leave_voicemail(rec, mailbox="sales")

    got, run = result_of(body, [hangup(after=9.0)], record_dir=tmp_path)
    assert got == "vm-1" and run.voicemails[0]["mailbox"] == "sales"


def test_queue_outcomes():
    async def body(call):
        return await call.enqueue("support", priority=3, skills={"fr": 50}, data={"k": "v"})

    out, run = result_of(body)
    assert out.answered and out.agent == "agent-1" and out.wait == 20.0
    assert run.enqueues == [{"queue": "support", "priority": 3, "skills": {"fr": 50},
                             "data": {"k": "v"}}]
    out, _ = result_of(body, ["5", "*"], queues={"support": QueueScript(exit_key="*", wait=99)})
    assert out.result == "exit_key"
    out, _ = result_of(body, queues={"support": QueueScript("empty", wait=0)})
    assert out.result == "empty"
    _, run = result_of(body, [hangup(after=30)])
    assert run.ended == "caller hung up" and run.duration == pytest.approx(30)
    with pytest.raises(FlowMistake, match="no queue named 'support'"):
        result_of(body, known_queues=["sales"])


def test_transfer_success_ends_the_call_failure_keeps_it():
    async def body(call):
        if not await call.transfer("sip:busy@pbx"):
            await call.transfer("100")
            await call.play("never")

    _, run = result_of(body, transfers={"sip:busy@pbx": False})
    assert run.transfers == ["sip:busy@pbx", "100"] and run.ended == "transferred"
    assert "never" not in run.prompts


def test_goto_flow_runs_the_other_flow_on_the_same_call():
    async def other(call):
        call.vars["seen"] = call.vars["from"]
        await call.play("other")

    async def body(call):
        call.vars["from"] = "first"
        await call.goto_flow("elsewhere")

    _, run = result_of(body, flows={"elsewhere": other})
    assert run.flows == ["elsewhere"] and run.vars["seen"] == "first"
    with pytest.raises(FlowMistake, match="no flow 'nowhere'"):
        result_of(lambda c: c.goto_flow("nowhere"))


def test_is_open_follows_the_schedule_on_the_virtual_clock():
    office = from_dict({"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-17:00"}})
    monday_1659 = datetime(2026, 1, 5, 15, 59, 30, tzinfo=timezone.utc)  # 16:59:30 in Berlin

    async def body(call):
        before = call.is_open()
        await asyncio.sleep(60)
        return before, call.is_open(), call.is_open("office")

    got, _ = result_of(body, schedules={"office": office}, route_schedule="office",
                       now=monday_1659)
    assert got == (True, False, False)
    got, _ = result_of(lambda c: asyncio.sleep(0, c.is_open()))
    assert got is True   # a route without a schedule is always open
    with pytest.raises(FlowMistake, match="no schedule named 'office'"):
        result_of(lambda c: asyncio.sleep(0, c.is_open("office")))
    assert result_of(lambda c: asyncio.sleep(0, c.is_open()), open=False)[0] is False


# -- menus ----------------------------------------------------------------------------------

def test_menu_runs_the_branch_and_counts_retries():
    async def one(call):
        return "one"

    async def body(call):
        return await menu(call, "m", {"1": one}, tries=2)

    assert result_of(body, ["1"])[0] == "one"
    assert result_of(body, ["7", "1"])[0] == "one"
    got, run = result_of(body, ["7", "8"])
    assert got is None and run.prompts == ["m", "invalid", "m", "invalid"]


def test_menu_falls_back_to_the_operator_on_failure_or_key_zero():
    async def operator(call):
        return "operator"

    async def body(call):
        return await menu(call, "m", {"1": back}, operator=operator, tries=3)

    assert result_of(body, [silence(), silence(), silence()])[0] == "operator"
    assert result_of(body, ["0"])[0] == "operator"
    assert result_of(body, ["1"])[0] == BACK


def test_menu_with_two_digit_keys():
    got, _ = result_of(lambda c: choose(c, "m", ["1", "10", "11"]), ["10"])
    assert got == "10"
    got, _ = result_of(lambda c: choose(c, "m", ["1", "10", "11"]), ["1"])
    assert got == "1"   # the inter-digit pause ends the input


# -- the protocol ---------------------------------------------------------------------------

def test_the_fake_has_every_verb_with_the_protocols_signature():
    verbs = [n for n, v in vars(Call).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert len(verbs) >= 13
    for name in verbs:
        assert inspect.signature(getattr(FakeCall, name)) == inspect.signature(getattr(Call, name)), name
        assert inspect.iscoroutinefunction(getattr(Call, name)) == \
            inspect.iscoroutinefunction(getattr(FakeCall, name)), name


def test_the_sip_call_still_fits_the_protocol():
    # The protocol only grows: every verb SipCall implements today must keep
    # its parameters and defaults in the protocol, so no flow written against
    # the real call breaks.  (Verbs SipCall lacks yet are listed, not failed.)
    sipcall = pytest.importorskip("sipagent.calls.sip_call")
    verbs = [n for n, v in vars(Call).items() if inspect.isfunction(v) and not n.startswith("_")]
    missing = []
    for name in verbs:
        real = getattr(sipcall.SipCall, name, None)
        if real is None:
            missing.append(name)
            continue
        wanted = inspect.signature(getattr(Call, name)).parameters
        for param in inspect.signature(real).parameters.values():
            assert param.name in wanted, f"SipCall.{name}({param.name}) is not in the protocol"
            assert wanted[param.name].default == param.default, f"{name}({param.name}) default"
            assert wanted[param.name].kind == param.kind, f"{name}({param.name}) kind"
    print("verbs SipCall does not implement yet:", ", ".join(missing) or "none")


def test_gather_with_tries_rejects_zero_tries():
    async def attempt(prompt):
        return "1"

    with pytest.raises(ValueError):
        asyncio.run(call_module.gather_with_tries(attempt, attempt, None, tries=0, min_digits=1,
                                                  valid=None, invalid_prompt=None,
                                                  no_input_prompt=None))


def test_parse_digits_from_the_cli():
    assert parse_digits("1,2,#") == [press("1"), press("2"), press("#")]
    assert parse_digits("1,,h") == [press("1"), silence(), hangup()]
    assert parse_digits("") == []


# -- speech ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n, text", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"),
    (100, "one hundred"), (105, "one hundred and five"), (1000, "one thousand"),
    (1205, "one thousand two hundred and five"), (2_000_019, "two million and nineteen"),
    (-3, "minus three"),
])
def test_numbers_in_english(n, text):
    assert speech.number(n) == text


def test_digits_and_durations():
    assert speech.digits("+49 30-12#*") == "plus four nine three zero one two hash star"
    assert speech.duration(0) == "zero seconds"
    assert speech.duration(1) == "one second"
    assert speech.duration(125) == "two minutes and five seconds"
    assert speech.duration(3660) == "one hour and one minute"
    assert speech.duration(14 * 60 + 20) == "fourteen minutes"   # seconds dropped from 10 min
    assert speech.number(42, "fr") == "42" and speech.digits("12", "de") == "1 2"
    with pytest.raises(ValueError):
        speech.digits("12a")


_VALUES = {w: i for i, w in enumerate(speech._ONES)} | {w: 10 * i for i, w in enumerate(speech._TENS) if w}


def _parse(words: list[str]) -> int:
    total = current = 0
    for w in words:
        if w == "and":
            continue
        if w == "hundred":
            current *= 100
        elif w in ("thousand", "million", "billion", "trillion"):
            total += current * {"thousand": 10**3, "million": 10**6, "billion": 10**9,
                                "trillion": 10**12}[w]
            current = 0
        else:
            current += _VALUES[w]
    return total + current


@given(st.integers(0, 10**15 - 1))
def test_number_words_read_back_to_the_number(n):
    words = speech.number_words(n)
    assert _parse(words) == n
    assert words[-1] != "and" and all(a != b for a, b in zip(words, words[1:]))


def test_timed_steps_run_beside_the_scripted_ones():
    async def body(call):
        return await call.gather("a", timeout=20), await call.gather("b", timeout=20)

    # The timed 9 lands first, in the middle of the long first question; the
    # scripted 5, taken at that question too, then answers the second.
    got, run = result_of(body, [press("5", after=3.0), press("9", at=1.0)],
                         prompt_seconds={"a": 10.0, "*": 1.0})
    assert got == ("9", "5")
    assert [(e.at, e.detail) for e in run.transcript if e.who == "caller"] == [(1.0, "9"), (3.0, "5")]
