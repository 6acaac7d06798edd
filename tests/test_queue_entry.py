"""The queue entry's state table (sipagent/queue/entry.py): complete, strict,
and the only way an entry's state changes; plus the callback code driven
through the small runtime interface it is given, without SIP."""
from __future__ import annotations

import ast
import asyncio
import itertools
import re
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acdcore import events as ev
from sipagent.queue import agents as ag
from sipagent.queue.callback import CallbackLine
from sipagent.queue.entry import (EXIT_REASONS, TRANSITIONS, CallbackJob, EntryEvent,
                                  EntryState, InvalidEntryTransition, QueueEntry,
                                  agent_headers, exit_target)

S, E = EntryState, EntryEvent
QUEUE_DIR = Path(__file__).resolve().parent.parent / "sipagent" / "queue"
FINAL = {S.OVER, S.EXITED, S.ABANDONED}


def entry(call_id: str = "c1", **kw) -> QueueEntry:
    fields = {"queue": "q", "entered": 0.0, "caller": "100", "called": "200", "data": {}, **kw}
    return QueueEntry(call_id=call_id, **fields)


def step(e: QueueEntry, event: EntryEvent) -> EntryState:
    return e.advance(event, "timeout" if event is E.EXIT else None)


def path_to(target: EntryState) -> list[EntryEvent]:
    """The shortest event sequence from WAITING to ``target`` (by the table)."""
    seen, todo = {S.WAITING: []}, deque([S.WAITING])
    while todo:
        state = todo.popleft()
        for event, new in TRANSITIONS[state].items():
            if new not in seen:
                seen[new] = seen[state] + [event]
                todo.append(new)
    return seen[target]


def entry_in(state: EntryState) -> QueueEntry:
    e = entry()
    for event in path_to(state):
        step(e, event)
    assert e.state is state
    return e


# -- the table itself ----------------------------------------------------------------
def test_every_state_has_a_row_and_is_reachable():
    assert set(TRANSITIONS) == set(S)
    for row in TRANSITIONS.values():
        assert set(row) <= set(E) and set(row.values()) <= set(S)
    for state in S:
        entry_in(state)


def test_a_new_entry_waits():
    e = entry()
    assert e.state is S.WAITING and e.exit_reason is None


@pytest.mark.parametrize("state,event", [(s, ev_) for s, row in TRANSITIONS.items()
                                         for ev_ in row],
                         ids=lambda x: x.value)
def test_every_allowed_transition(state, event):
    e = entry_in(state)
    assert step(e, event) is TRANSITIONS[state][event]
    assert e.state is TRANSITIONS[state][event]


@pytest.mark.parametrize("state,event", [(s, ev_) for s, ev_ in itertools.product(S, E)
                                         if ev_ not in TRANSITIONS[s]],
                         ids=lambda x: x.value)
def test_every_impossible_transition_raises_and_changes_nothing(state, event):
    e = entry_in(state)
    reason = e.exit_reason
    with pytest.raises(InvalidEntryTransition,
                       match=f"entry c1 cannot {event.value} while {state.value}"):
        step(e, event)
    assert e.state is state and e.exit_reason == reason


def test_key_rules():
    # Keys, abandoning and shutdown only concern a caller still waiting with no outcome.
    for event in (E.CALLBACK_REQUESTED, E.EXIT_KEY, E.SHUTDOWN, E.ABANDONED):
        assert [s for s in S if event in TRANSITIONS[s]] == [S.WAITING]
    # An agent can answer a waiting caller or a callback; a talk ends only from TALKING
    # (and the no-answer race after it).
    assert [s for s in S if E.CONNECTED in TRANSITIONS[s]] == [S.WAITING, S.CALLBACK]
    assert [s for s in S if E.HUNG_UP in TRANSITIONS[s]] == [S.TALKING]
    assert TRANSITIONS[S.OVER] == {E.NO_ANSWER: S.OVER}
    assert TRANSITIONS[S.EXITED] == {} and TRANSITIONS[S.ABANDONED] == {}


def test_exit_reasons_go_with_the_state():
    e = entry_in(S.WAITING)
    e.advance(E.EXIT, "full")
    assert (e.state, e.exit_reason) == (S.EXITED, "full")
    for event, reason in EXIT_REASONS.items():
        e = entry()
        e.advance(event)
        assert e.exit_reason == reason
    # A callback that times out of its queue: the ACD's reason replaces "callback".
    e = entry_in(S.CALLBACK)
    assert e.exit_reason == "callback"
    e.advance(E.EXIT, "timeout")
    assert (e.state, e.exit_reason) == (S.EXITED, "timeout")
    # A callback answered keeps its reason (the live call's outcome was "callback").
    e = entry_in(S.CALLBACK)
    e.advance(E.CONNECTED)
    assert (e.state, e.exit_reason) == (S.TALKING, "callback")


def test_reason_only_with_exit():
    with pytest.raises(ValueError, match="exit needs reason"):
        entry().advance(E.EXIT)
    with pytest.raises(ValueError, match="takes no reason"):
        entry().advance(E.EXIT_KEY, "exit_key")


def test_state_is_not_a_constructor_argument_nor_assignable():
    with pytest.raises(TypeError):
        QueueEntry(call_id="c", queue="q", entered=0.0, caller="", called="", data={},
                   _state=S.TALKING)
    with pytest.raises(AttributeError):
        entry().state = S.TALKING  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(E)), max_size=12),
       st.sampled_from(["timeout", "full", "empty"]))
def test_random_event_sequences_follow_the_table(events, acd_reason):
    e = entry()
    model, reason = S.WAITING, None
    for event in events:
        expected = TRANSITIONS[model].get(event)
        if expected is None:
            with pytest.raises(InvalidEntryTransition):
                e.advance(event, acd_reason if event is E.EXIT else None)
        else:
            e.advance(event, acd_reason if event is E.EXIT else None)
            model = expected
            reason = acd_reason if event is E.EXIT else EXIT_REASONS.get(event, reason)
        assert e.state is model and e.exit_reason == reason
        # What each state promises about the reason:
        assert (e.state is S.CALLBACK) <= (e.exit_reason == "callback")
        assert (e.state is S.EXITED) <= (e.exit_reason not in (None, "callback"))
        assert (e.state in (S.WAITING, S.ABANDONED)) <= (e.exit_reason is None)
        if e.state in FINAL - {S.OVER}:
            assert not TRANSITIONS[e.state]


# -- nobody else moves an entry, and the imports run one way --------------------------
def _sources():
    root = QUEUE_DIR.parent
    return [(p, p.read_text()) for p in sorted(root.rglob("*.py"))]


def test_only_entry_py_assigns_state_or_exit_reason():
    pattern = re.compile(r"\.(_?state|_?exit_reason|phase)\s*=[^=]|setattr\(")
    for path in sorted(QUEUE_DIR.glob("*.py")):
        if path.name == "entry.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path}:{n}: {line.strip()}"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("sipagent.queue")}


def test_queue_modules_import_one_way():
    assert _imports(QUEUE_DIR / "callback.py") <= {"sipagent.queue.entry", "sipagent.queue.stats",
                                                   "sipagent.queue.customer_call"}
    assert _imports(QUEUE_DIR / "customer_call.py") == set()
    assert _imports(QUEUE_DIR / "entry.py") <= {"sipagent.queue.hold",  # types only
                                                "sipagent.queue.conversation",
                                                "sipagent.queue.transfer"}
    assert _imports(QUEUE_DIR / "operations.py") <= {
        "sipagent.queue.conversation", "sipagent.queue.entry", "sipagent.queue.stats",
        "sipagent.queue.transfer", "sipagent.queue.recordings", "sipagent.queue.bridging",
        "sipagent.queue.monitoring", "sipagent.queue.talk_limit",
        "sipagent.queue.recording_control", "sipagent.queue.consultation",
        "sipagent.queue.phone_consult", "sipagent.queue.call_keys"}
    assert _imports(QUEUE_DIR / "call_keys.py") <= {
        "sipagent.queue.conversation", "sipagent.queue.entry", "sipagent.queue.recordings",
        "sipagent.queue.transfer"}
    for name in ("consultation.py", "phone_consult.py"):
        assert _imports(QUEUE_DIR / name) <= {
            "sipagent.queue.conversation", "sipagent.queue.entry", "sipagent.queue.transfer"}
    for name in ("monitoring.py", "talk_limit.py", "recording_control.py"):
        assert _imports(QUEUE_DIR / name) <= {
            "sipagent.queue.conversation", "sipagent.queue.entry", "sipagent.queue.recordings"}
    for name in ("conversation.py", "transfer.py", "recordings.py"):
        assert _imports(QUEUE_DIR / name) == set()
    assert _imports(QUEUE_DIR / "agents.py") <= {"sipagent.queue.entry"}
    assert _imports(QUEUE_DIR / "caller_side.py") <= {"sipagent.queue.entry",
                                                      "sipagent.queue.hold"}
    for name in ("hold.py", "stats.py"):
        assert _imports(QUEUE_DIR / name) == set()


def test_no_module_reaches_into_the_runtimes_privates():
    for path, text in _sources():
        assert not re.search(r"\b(rt|runtime|queues)\._[a-z]", text), path


# -- small pure helpers ----------------------------------------------------------------
def test_exit_targets():
    s = SimpleNamespace(exit_flow="menu", on_timeout="queue:other", on_full="hangup:busy",
                        on_empty=None)
    assert exit_target(s, "exit_key") == "flow:menu"
    assert exit_target(s, "timeout") == "queue:other"
    assert exit_target(s, "full") == "hangup:busy"
    assert exit_target(s, "empty") is None
    assert exit_target(s, "shutdown") is None
    assert exit_target(SimpleNamespace(exit_flow=""), "exit_key") == ""


def test_agent_headers_screen_pop():
    call = SimpleNamespace(headers={"x-account": "42", "Other": "no"})
    e = entry(call=call, data={"lang": "de"})
    h = agent_headers(e, {"X-Account": "X-Crm-Account", "X-Missing": "X-Nope"})
    assert h == {"X-Sipacd-Call-Id": "c1", "X-Sipacd-Caller": "100", "X-Sipacd-Called": "200",
                 "X-Sipacd-Queue": "q", "X-Sipacd-Var-lang": "de", "X-Crm-Account": "42"}
    cb = entry(callback=CallbackJob("555", "web"))
    cb.caller = ""
    assert agent_headers(cb, {"X-Account": "X"})["X-Sipacd-Caller"] == "anonymous"
    assert "X-Sipacd-Callback" in agent_headers(cb, {})


def test_agent_helpers():
    lines = {"a": ag.AgentLine("a", "sip:a", wrap_up=2.0), "b": ag.AgentLine("b", "sip:b")}
    assert ag.wrap_up_of(lines, "a", 10.0) == 2.0
    assert ag.wrap_up_of(lines, "b", 10.0) == 10.0
    assert ag.wrap_up_of(lines, None, 10.0) == 10.0
    assert ag.command_log_kind("ready", "paused") == "UNPAUSE"
    assert ag.command_log_kind("ready", "wrap_up") == "READY"
    assert ag.command_event("pause", 1.0, "a") == ev.AgentPaused(1.0, "a", "paused")
    with pytest.raises(KeyError):
        ag.command_event("dance", 1.0, "a")


# -- the callback code through its QueueLine, without SIP -----------------------------
class FakeLine:
    """Implements callback.QueueLine and records what the callback code did."""

    def __init__(self, attempts=2):
        self.settings = {"q": SimpleNamespace(callback_uri="sip:{number}@x",
                                              callback_attempts=attempts,
                                              callback_retry_delay=0.0,
                                              callback_mode="agent_first")}
        self.done: list = []
        self.stats = SimpleNamespace(
            callback=lambda q, t, call_id, result, agent=None:
                self.done.append(("callback", call_id, result)),
            exited=lambda q, t, reason, call_id, wait: self.done.append(("exited", call_id, reason)),
            offered=lambda q, t, call_id, position=None: self.done.append(("offered", call_id)),
            record=lambda call_id, **fields: self.done.append(("record", call_id, fields)))
        self.entries: dict[str, QueueEntry] = {}

    def now(self):
        return 5.0

    def feed(self, event):
        self.done.append(("feed", type(event).__name__, event.call_id))

    def add_callback(self, e, *, offered=True):
        self.entries[e.call_id] = e
        self.done.append(("add", e.call_id, offered))

    def attempt_over(self, e):
        self.done.append(("attempt_over", e.call_id))

    def forget(self, e):
        self.entries.pop(e.call_id, None)
        self.done.append(("forget", e.call_id))

    def talk_over(self, e, side):
        e.advance(E.HUNG_UP)
        self.done.append(("talk_over", e.call_id, side))


class FakeLeg:
    def __init__(self):
        self.ended = False

    def end(self):
        self.ended = True


def test_callback_key_keeps_the_place_and_counts_the_outcome():
    rt = FakeLine()
    e = entry(call=object())
    CallbackLine(rt).requested_in_queue(e)
    assert e.state is S.CALLBACK and e.call is None and e.callback.origin == "queue"
    assert rt.done == [("callback", "c1", "requested"), ("exited", "c1", "callback"),
                       ("feed", "CallbackRequested", "c1")]


def test_customer_no_answer_is_retried_then_given_up():
    async def main():
        rt = FakeLine(attempts=2)
        line = CallbackLine(rt)
        e = entry_in(S.CALLBACK)
        e.callback = CallbackJob("100", "queue", attempts=1)
        e.advance(E.CONNECTED)
        e.agent_leg = FakeLeg()
        line._retry_or_give_up(e)
        assert e.state is S.OVER and e.agent_leg.ended
        # No outcome yet: the key press counted this request's (EXIT callback).
        assert rt.done == [("attempt_over", "c1"), ("forget", "c1"),
                           ("callback", "c1", "no_answer")]
        await asyncio.sleep(0.01)
        # The retry is the same request: same id, not offered again, waiting since then.
        assert rt.done[-1] == ("add", "c1", False)
        retry = rt.entries["c1"]
        assert retry is not e and retry.state is S.WAITING and retry.callback is e.callback
        assert retry.entered == e.entered
        rt.done.clear()
        retry.advance(E.CONNECTED)
        retry.callback.attempts = 2
        line._retry_or_give_up(retry)
        assert rt.done == [("attempt_over", "c1"), ("forget", "c1"),
                           ("record", "c1", {"outcome": "callback_no_answer"}),
                           ("callback", "c1", "failed")]
        await asyncio.sleep(0.01)
        assert "c1" not in rt.entries
    asyncio.run(main())


def test_agent_hung_up_while_the_customer_rang():
    # The talk is already over (the runtime ended it); the cancelled ring still
    # counts as this attempt's no-answer, without ending the core's call twice.
    async def main():
        rt = FakeLine(attempts=1)
        e = entry(callback=CallbackJob("100", "web", attempts=1))
        e.advance(E.CONNECTED)
        rt.talk_over(e, "agent")
        rt.done.clear()
        CallbackLine(rt)._retry_or_give_up(e)
        assert e.state is S.OVER
        # A web request's one outcome is counted when it is given up.
        assert rt.done == [("forget", "c1"), ("exited", "c1", "callback_no_answer"),
                           ("callback", "c1", "failed")]
    asyncio.run(main())


def test_web_callback_joins_through_the_runtime():
    async def main():
        rt = FakeLine()
        call_id = CallbackLine(rt).request_web("555", "q")
        await asyncio.sleep(0.01)
        e = rt.entries[call_id]
        assert e.state is S.WAITING and e.callback.origin == "web" and e.call is None
        with pytest.raises(KeyError):
            CallbackLine(rt).request_web("555", "nope")
    asyncio.run(main())
