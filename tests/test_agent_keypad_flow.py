"""The keypad flow's decisions without SIP: who is asked for what, and what
reaches the ACD.  The call is a scripted stand-in (keys per question), the
agent states come from the real ACD scheduler, the lockout from a real
SQLite file; the SIP path is tests/test_agent_keypad.py."""
from __future__ import annotations

import asyncio
import re

import pytest
import structlog

from acdcore.model import AgentConfig, QueueConfig
from acdcore.scheduler import Scheduler
from ivrflows.call import CallerHangup
from sipagent.calls.agent_keypad import AgentKeypad, KeypadAgent, KeypadSettings, feature_flow
from sipagent.metrics import EngineMetrics
from sipagent.queue.agents import command_event
from sipagent.store.keypad_lockout import KeypadLockout
from sipagent.store.pin import hash_pin

PIN = "4711"
ALICE = KeypadAgent("alice", "sip:alice@10.0.0.5", number="1001",
                    pin_hash=hash_pin(PIN, log2_n=4))


class Queues:
    """What the keypad touches of the queue runtime, over the real ACD core."""

    def __init__(self):
        self.scheduler = Scheduler([QueueConfig("support")],
                                   [AgentConfig("alice", {"support": 0})])
        self.commands: list[tuple[str, str, str]] = []

    def agent_command(self, agent_id: str, command: str, reason: str = "") -> None:
        self.commands.append((agent_id, command, reason))
        self.scheduler.handle(command_event(command, 0.0, agent_id, reason))


class ScriptedCall:
    """Answers each gather with the next scripted keys ("" = nothing keyed)."""

    def __init__(self, keys: list[str], caller: str = "desk"):
        self.keys, self.caller = list(keys), caller
        self.asked: list[str] = []
        self.heard: list[str] = []
        self.log = structlog.get_logger("test")
        self.hung_up = False

    async def answer(self):
        pass

    async def hangup(self, cause: int = 200):
        self.hung_up = True

    async def play(self, *prompts: str, barge_in: bool = False):
        self.heard.extend(prompts)

    async def say(self, text: str, **kw):
        self.heard.append(f"say:{text}")

    async def gather(self, prompt, *, valid=None, **kw) -> str:
        self.asked.append(prompt)
        if not self.keys:
            raise CallerHangup("scripted keys ran out")
        keys = self.keys.pop(0)
        return keys if valid is None or re.fullmatch(valid, keys) else ""


@pytest.fixture
def keypad(tmp_path):
    made = []

    def make(**settings) -> AgentKeypad:
        s = KeypadSettings(agents=(ALICE,), **settings)
        k = AgentKeypad(s, Queues(), KeypadLockout(tmp_path, pin_attempts=s.pin_attempts,
                                                   lockout=s.lockout), EngineMetrics())
        made.append(k)
        return k

    yield make
    for k in made:
        k.close()


def run(keypad: AgentKeypad, command: str, call: ScriptedCall) -> str:
    asyncio.run(keypad.run(call, feature_flow(command)))
    return keypad.queues.scheduler.agent_state("alice")


def count(keypad: AgentKeypad, command: str, result: str) -> float:
    return keypad.metrics.registry.get_sample_value(
        "sipacd_agent_keypad_commands_total", {"command": command, "result": result})


def test_login_from_another_phone_asks_number_and_pin(keypad):
    k = keypad()
    call = ScriptedCall(["1001", PIN])
    assert run(k, "login", call) == "available"
    assert call.asked == ["agent-enter-number", "agent-enter-pin"]
    assert call.heard == ["agent-state-available"] and call.hung_up
    assert count(k, "login", "ok") == 1


def test_own_phone_asks_only_the_pin_to_log_in_and_nothing_else_to_log_out(keypad):
    k = keypad()
    call = ScriptedCall([PIN], caller="alice")
    assert run(k, "login", call) == "available"
    assert call.asked == ["agent-enter-pin"]
    call = ScriptedCall([], caller="alice")
    assert run(k, "logout", call) == "logged_out"
    assert call.asked == []


def test_own_phone_without_pin_off_asks_the_pin_for_every_command(keypad):
    k = keypad(own_phone_without_pin=False)
    k.queues.agent_command("alice", "login")
    call = ScriptedCall(["1234"], caller="alice")
    with pytest.raises(CallerHangup):          # wrong PIN, then no more keys
        run(k, "logout", call)
    assert call.asked == ["agent-enter-pin", "agent-enter-pin"]
    assert k.queues.scheduler.agent_state("alice") == "available"
    assert count(k, "logout", "hung_up") == 1


def test_an_unknown_number_is_told_as_a_wrong_pin_and_locks_nobody(keypad):
    k = keypad()
    call = ScriptedCall(["9999", PIN] * 3)
    assert run(k, "login", call) == "logged_out"
    assert call.heard == ["agent-login-incorrect"] * 3
    assert count(k, "login", "wrong_pin") == 1
    assert k.lockout.locked_until("alice") == 0.0


def test_a_pause_reason_key_must_be_configured(keypad):
    k = keypad(pause_reasons={"1": "lunch"})
    k.queues.agent_command("alice", "login")
    call = ScriptedCall(["1001", PIN, "7"])
    assert run(k, "pause", call) == "available"
    assert count(k, "pause", "no_input") == 1
    call = ScriptedCall(["1001", PIN, "1"])
    assert run(k, "pause", call) == "paused"
    assert k.queues.commands[-1] == ("alice", "pause", "lunch")
    assert call.heard == ["agent-state-paused", "say:lunch"]


def test_a_refused_command_is_explained_and_changes_nothing(keypad):
    k = keypad(pause_reasons={"1": "lunch"})
    call = ScriptedCall(["1001", PIN])
    assert run(k, "pause", call) == "logged_out"
    assert call.heard == ["agent-not-now", "agent-state-logged-out"]
    assert call.asked == ["agent-enter-number", "agent-enter-pin"]   # no reason asked
    assert k.queues.commands == []
    assert count(k, "pause", "refused") == 1


def test_no_input_ends_the_call(keypad):
    k = keypad()
    call = ScriptedCall([""])
    run(k, "ready", call)
    assert count(k, "ready", "no_input") == 1 and call.hung_up


def test_two_agents_on_one_phone_user_are_asked_who_they_are(tmp_path):
    twin = KeypadAgent("alice2", "sip:alice@10.0.0.6", number="1002")
    k = AgentKeypad(KeypadSettings(agents=(ALICE, twin)), Queues(), KeypadLockout(tmp_path),
                    EngineMetrics())
    try:
        call = ScriptedCall(["1001", PIN], caller="alice")
        run(k, "logout", call)
        assert call.asked[0] == "agent-enter-number"
    finally:
        k.close()


def test_only_keypad_specs_are_served(keypad):
    k = keypad()
    assert k.serves("agent_keypad:login") and k.serves("agent_keypad:end_wrap_up")
    assert not k.serves("agent_keypad") and not k.serves("agent_keypad:transfer")
    assert not k.serves("welcome")


def test_the_wrong_pin_that_locks_ends_the_call_and_the_right_one_waits(keypad):
    k = keypad(pin_attempts=2)
    call = ScriptedCall(["1001", "1111", "1001", "2222", "1001", PIN])
    assert run(k, "login", call) == "logged_out"
    assert call.heard == ["agent-login-incorrect", "agent-locked"]
    assert call.keys == ["1001", PIN]          # not asked again
    assert run(k, "login", ScriptedCall(["1001", PIN])) == "logged_out"
    assert count(k, "login", "locked") == 2
