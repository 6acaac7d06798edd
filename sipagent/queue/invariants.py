"""What must be true of the queue runtime whenever the loop is between two
steps, read without changing anything: each agent in one ACD state that
agrees with the calls it is on, each caller in one place, no leg left over.

Theory of operation
-------------------
The ACD core (acdcore) and the runtime keep two views of the same people:
the core's agent and caller states, and the runtime's entries, ringing
offer legs and conversations.  A bug in how one follows the other shows up
as a stuck agent ("busy" with no call, "offered" with nothing ringing) or a
caller in two places.  :func:`problems` compares the views and says, in a
sentence each, where they disagree; it never raises.  An agent is busy with
exactly one call: a talking queue entry (a callback's included) or its own
click-to-call; one logged out mid-call may still be on it.

Some moves take a few loop steps (a hung-up leg is noticed on the caller's
task; a finished entry leaves ``entries`` when its task resumes), so a
single read can catch one half-done.  Whoever asks at an arbitrary moment
should count only what is still wrong a moment later (tests/engine_proc.py
does); what is stuck stays.

``quiet=True`` adds the checks of an idle engine, after every phone hung up:
no live legs, no entries, offers, conversations or recordings, no agent
busy or ringing.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Collection

from sipagent.queue.bridging import MEDIA_WAIT
from sipagent.queue.conversation import Phase
from sipagent.queue.entry import EntryState

FINAL = (EntryState.OVER, EntryState.EXITED, EntryState.ABANDONED)
# A connected caller has a conversation once both legs have media; the
# runtime gives them MEDIA_WAIT, then ends the silent one.
BRIDGING_GRACE = MEDIA_WAIT + 2.0


def problems(runtime: Any, legs: Collection, *, quiet: bool = False) -> list[str]:
    """Sentences naming each broken invariant; empty when all hold."""
    out: list[str] = []
    out += _scheduler(runtime)
    out += _agents(runtime)
    out += _entries(runtime)
    out += _offers(runtime, legs)
    out += _one_place_per_leg(runtime)
    out += _transfers_by_phone(runtime)
    if quiet:
        out += _idle(runtime, legs)
    return out


def counts(runtime: Any, legs: Collection) -> dict:
    """What the runtime holds now (the debug endpoint shows it beside the problems)."""
    entries = list(runtime.entries.values())
    recordings = runtime.operations.recordings
    return {
        "legs": len(legs),
        "entries": len(entries),
        "offers": len(runtime.offers),
        "conversations": sum(1 for e in entries if e.conversation is not None),
        "recordings": len(recordings.live) if recordings is not None else 0,
        "agents": dict(Counter(_state(runtime, a) for a in runtime.lines)),
    }


def _state(runtime, agent_id: str) -> str:
    try:
        return runtime.scheduler.agent_state(agent_id)
    except Exception as exc:   # an agent line the core does not know
        return f"unknown ({type(exc).__name__})"


def _call_state(runtime, call_id: str) -> str:
    try:
        return runtime.scheduler.call_state(call_id)
    except Exception:          # gone from the core (it forgets finished calls)
        return "gone"


def _scheduler(runtime) -> list[str]:
    try:
        runtime.scheduler.check_invariants()
    except AssertionError as exc:
        return [f"the ACD core's own invariants fail: {exc}"]
    return []


def _outbound_calls(runtime) -> dict:
    """Agent id -> its click-to-call (the runtime's ``outbound`` desk, when it
    has one): the other thing that makes an agent busy."""
    desk = getattr(runtime, "outbound", None)
    return dict(getattr(desk, "calls", None) or {})


def _calls_by_agent(runtime) -> dict[str, list[str]]:
    """Agent id -> the calls it is on: talking queue entries, and its click-to-call."""
    by_agent: dict[str, list[str]] = {}
    for entry in runtime.entries.values():
        if entry.state is EntryState.TALKING and entry.agent_id is not None:
            by_agent.setdefault(entry.agent_id, []).append(entry.call_id)
    for agent_id in _outbound_calls(runtime):
        by_agent.setdefault(agent_id, []).append(f"outbound:{agent_id}")
    return by_agent


def _agents(runtime) -> list[str]:
    out = []
    on_calls = _calls_by_agent(runtime)
    ringing = Counter(agent for _, agent in runtime.offers)
    for agent_id in runtime.lines:
        state = _state(runtime, agent_id)
        calls = on_calls.get(agent_id, [])
        if state.startswith("unknown"):
            out.append(f"agent {agent_id}: {state} to the ACD core")
        elif state == "busy" and len(calls) != 1:
            out.append(f"agent {agent_id} is busy with {len(calls)} calls {calls}")
        elif state not in ("busy", "logged_out") and calls:
            # logged_out: an agent may log out mid-call; the call goes on.
            out.append(f"agent {agent_id} is {state} but talking on {calls}")
        if state == "offered" and not ringing[agent_id]:
            out.append(f"agent {agent_id} is offered but no offer leg rings it")
        if state != "offered" and ringing[agent_id]:
            out.append(f"agent {agent_id} is {state} but {ringing[agent_id]} offer leg(s) "
                       "ring it")
    return out


def _entries(runtime) -> list[str]:
    out = []
    now = runtime.now()
    for key, entry in runtime.entries.items():
        name = f"entry {key} ({entry.state.value}, queue {entry.queue})"
        if entry.call_id != key:
            out.append(f"{name} is filed under another call id ({entry.call_id})")
        core = _call_state(runtime, entry.call_id)
        if entry.state in FINAL:
            out.append(f"{name} is final but still in the runtime's entries")
        elif entry.state in (EntryState.WAITING, EntryState.CALLBACK):
            if core not in ("waiting", "offered"):
                out.append(f"{name} waits, but the ACD core has the call {core}")
        elif entry.state is EntryState.TALKING:
            out += _talking(runtime, entry, name, core, now)
        if entry.state is not EntryState.TALKING and entry.conversation is not None:
            out.append(f"{name} still holds a conversation")
    return out


def _talking(runtime, entry, name: str, core: str, now: float) -> list[str]:
    out = []
    if core != "talking":
        out.append(f"{name} talks, but the ACD core has the call {core}")
    if entry.agent_id is None or entry.agent_leg is None:
        out.append(f"{name} talks with no agent")
        return out
    if entry.callback is not None or entry.call is None:
        return out            # a callback's agent and customer: callback.py's bridge
    caller, agent = entry.call.leg, entry.agent_leg
    conversation = entry.conversation
    if conversation is None:
        if caller.is_ended or agent.is_ended:
            out.append(f"{name} talks but its {'caller' if caller.is_ended else 'agent'} "
                       "leg ended")
        elif now - (entry.answered_at or now) > BRIDGING_GRACE:
            out.append(f"{name} connected {now - entry.answered_at:.1f} s ago and still "
                       "has no conversation")
        return out
    if conversation.call_id != entry.call_id or conversation.agent_id != entry.agent_id:
        out.append(f"{name} holds the conversation of {conversation.call_id} "
                   f"(agent {conversation.agent_id})")
    if conversation.phase is Phase.OVER:
        out.append(f"{name} talks but its conversation is over")
    else:
        ended = [label for label, leg in (("caller", conversation.caller),
                                          ("agent", conversation.agent)) if leg.is_ended]
        if ended:
            out.append(f"{name}: conversation {conversation.phase.value} with the "
                       f"{' and '.join(ended)} leg ended")
    return out


def _offers(runtime, legs: Collection) -> list[str]:
    out = []
    for (call_id, agent_id), leg in runtime.offers.items():
        entry = runtime.entries.get(call_id)
        if entry is None:
            out.append(f"offer of {call_id} to {agent_id} rings for a call no longer "
                       "in line")
        elif entry.state not in (EntryState.WAITING, EntryState.CALLBACK):
            out.append(f"offer of {call_id} to {agent_id} rings for an entry "
                       f"{entry.state.value}")
        if leg not in legs and not leg.is_ended:
            out.append(f"offer leg {leg.label} is not among the engine's legs")
    return out


def _one_place_per_leg(runtime) -> list[str]:
    """A leg rings one offer, or is one entry's caller or agent, never two."""
    places: dict[int, list[str]] = {}
    labels: dict[int, str] = {}

    def put(leg, place: str) -> None:
        if leg is not None:
            places.setdefault(id(leg), []).append(place)
            labels[id(leg)] = getattr(leg, "label", "?")
    for (call_id, agent_id), leg in runtime.offers.items():
        put(leg, f"offer of {call_id} to {agent_id}")
    for entry in runtime.entries.values():
        if entry.state in FINAL:
            continue
        put(getattr(entry.call, "leg", None), f"caller of {entry.call_id}")
        if entry.state is EntryState.TALKING:
            put(entry.agent_leg, f"agent of {entry.call_id}")
    return [f"leg {labels[key]} is in {len(where)} places: {', '.join(where)}"
            for key, where in places.items() if len(where) > 1]


def _transfers_by_phone(runtime) -> list[str]:
    """The REFER lookup (a phone's dialog -> its call) holds connected calls only."""
    out = []
    for sip_call_id, entry in runtime.operations.by_agent_call.items():
        where = f"REFER lookup {sip_call_id} -> {entry.call_id}"
        if runtime.entries.get(entry.call_id) is not entry:
            out.append(f"{where}: the entry is no longer in line")
        elif entry.state is not EntryState.TALKING:
            out.append(f"{where}: the entry is {entry.state.value}")
        elif entry.agent_leg is None or entry.agent_leg.sip_call_id != sip_call_id:
            out.append(f"{where}: not the entry's agent leg")
        elif entry.agent_leg.is_ended:
            out.append(f"{where}: the agent leg ended")
    return out


def _idle(runtime, legs: Collection) -> list[str]:
    out = []
    live = [getattr(leg, "label", "?") for leg in legs]
    if live:
        out.append(f"{len(live)} leg(s) still live: {sorted(live)}")
    if runtime.entries:
        out.append(f"entries still in line: {sorted(runtime.entries)}")
    if runtime.offers:
        out.append(f"offers still ringing: {sorted(runtime.offers)}")
    if _outbound_calls(runtime):
        out.append(f"click-to-calls still on: {sorted(_outbound_calls(runtime))}")
    if runtime.operations.by_agent_call:
        out.append(f"REFER lookup not empty: {sorted(runtime.operations.by_agent_call)}")
    recordings = runtime.operations.recordings
    if recordings is not None and recordings.live:
        out.append(f"recordings still live: {sorted(recordings.live)}")
    for agent_id in runtime.lines:
        state = _state(runtime, agent_id)
        if state in ("busy", "offered"):
            out.append(f"agent {agent_id} is still {state}")
    return out
