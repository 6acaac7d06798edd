"""The public event vocabulary, translated from the event log's facts.

Theory of operation
-------------------
The runtime states every fact once, through ``EventLog.queue_event``,
``agent_event`` and ``call_record`` (the kinds are documented in
``eventlog``).  ``EventLog.on_fact`` hands each fact to
:meth:`Translator.translate`, which returns the public events it means
(``resource.verb``, docs/events.md), so every mapping lives here, and
nothing else in the engine has to remember to publish.  Pure: no I/O, no
clock, no randomness; the stream (``event_stream``) numbers and stores
what comes out.

What the facts do not say outright is kept here, per call and per agent:

- offers: an OFFER opens an offer with a stable ``offer_id``
  (``<call id>#<n>``, n counting the call's offers); RINGNOANSWER or CONNECT
  closes it (timeout, rejected, canceled, accepted), the call's end closes
  any left open (canceled, ``call_ended``);
- a queue entry's original position and queue, so ``queue.left`` can say
  ``original_position``, and later events of the call carry the queue;
- the agents a call was offered or connected to (``agents_of``), which
  decides what an agent-role SSE client may see;
- each agent's ACD state.

Agent states are derived from the rows, through the ACD core's own
transition table (``acdcore.states``), not read from the scheduler: the
runtime logs some rows before it feeds the core (a LOGIN, a call's end and
wrap-up start), others after, so the scheduler's state at the moment of a
row is sometimes the old one and sometimes the new one; the rows, in their
order, are the one consistent account, and the same table the core uses
gives the same states.  What the table alone does not hold is added as the
core does it: a pause asked for while busy is kept pending and applied when
the wrap-up ends, and an outbound call from a paused agent makes the pause
pending.  A row the table has no entry for (a wrap-up row of an agent
logged out mid-call) changes nothing.  An agent never seen before (a fresh
file) has an unknown state: its first row moves it to that row's usual
target and ``previous`` is null.  ``wrapup.started``/``ended`` are emitted
when the state enters and leaves ``wrap_up``, so they always pair,
whatever ended the wrap-up (its timer, ready, pause, logout).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from acdcore.errors import InvalidTransition
from acdcore.states import (A_ANSWER, A_CALL_END, A_CANCEL, A_DECLINE, A_LOGIN, A_LOGOUT,
                            A_OFFER, A_OUTBOUND, A_PAUSE, A_PICKUP, A_READY, A_WRAP_DONE,
                            AGENT_INPUT_NAMES, AGENT_STATE_NAMES, AVAILABLE, BUSY, LOGGED_OUT,
                            OFFERED, PAUSED, WRAP_UP, agent_next)

__all__ = ["PublicEvent", "Translator", "EVENT_TYPES", "ENVELOPE_KEYS", "SCHEMA"]

#: The envelope's schema version (docs/events.md).
SCHEMA = 1
ENVELOPE_KEYS = frozenset({"seq", "type", "t", "time", "node", "schema", "call_id", "queue",
                           "agent", "offer_id"})

EVENT_TYPES = frozenset({
    "call.started", "call.answered", "call.ended", "call.held", "call.resumed",
    "queue.joined", "queue.left",
    "offer.created", "offer.accepted", "offer.rejected", "offer.timeout", "offer.canceled",
    "bridge.started", "bridge.ended",
    "agent.state_changed", "agent.added", "agent.updated", "agent.removed",
    "wrapup.started", "wrapup.ended", "wrapup.disposition",
    "transfer.completed", "transfer.failed",
    "monitor.started", "monitor.mode_changed", "monitor.ended",
    "recording.started", "recording.paused", "recording.resumed", "recording.stopped",
    "callback.requested", "callback.attempted", "callback.no_answer", "callback.connected",
})

# RINGNOANSWER reasons that are the agent's doing; any other is the engine
# withdrawing the offer (answered elsewhere, the caller left...).
_REJECTED = frozenset({"rejected", "busy"})
_RECORDING = {"RECORDING_START": "recording.started", "RECORDING_PAUSE": "recording.paused",
              "RECORDING_RESUME": "recording.resumed", "RECORDING_STOP": "recording.stopped"}
_CALLBACK = {"CALLBACK_REQUESTED": "callback.requested", "CALLBACK_ATTEMPT": "callback.attempted",
             "CALLBACK_NO_ANSWER": "callback.no_answer",
             "CALLBACK_CONNECTED": "callback.connected"}
_SIDES = {"COMPLETE_CALLER": "caller", "COMPLETE_AGENT": "agent", "COMPLETE_SYSTEM": "system"}
# Where an input takes an agent whose state is unknown (never seen by this file).
_FROM_UNKNOWN = {A_LOGIN: AVAILABLE, A_LOGOUT: LOGGED_OUT, A_READY: AVAILABLE, A_PAUSE: PAUSED,
                 A_OFFER: OFFERED, A_ANSWER: BUSY, A_PICKUP: BUSY, A_DECLINE: AVAILABLE,
                 A_CANCEL: AVAILABLE, A_CALL_END: WRAP_UP, A_WRAP_DONE: AVAILABLE,
                 A_OUTBOUND: BUSY}
_AGENT_INPUTS = {"LOGIN": A_LOGIN, "LOGOUT": A_LOGOUT, "READY": A_READY, "UNPAUSE": A_READY,
                 "PAUSE": A_PAUSE, "WRAPUP_START": A_CALL_END, "WRAPUP_END": A_WRAP_DONE,
                 "OUTBOUND_START": A_OUTBOUND}
#: How many calls are remembered (offers, queue, agents); the oldest
#: untouched are forgotten first, so memory stays bounded.
CALL_MEMORY = 20_000


@dataclass(slots=True)
class PublicEvent:
    type: str
    t: float
    call_id: str | None = None
    queue: str | None = None
    agent: str | None = None
    offer_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Call:
    queue: str | None = None
    agent: str | None = None
    original_position: int | None = None
    offers: dict[str, str] = field(default_factory=dict)   # agent -> open offer id
    n_offers: int = 0
    agents: set[str] = field(default_factory=set)          # offered or connected
    outcome: str | None = None
    hangup_side: str | None = None
    transfer_to: str | None = None
    started: bool = False
    answered: bool = False
    ended: bool = False


@dataclass(slots=True)
class _Agent:
    state: int | None = None       # None: unknown
    reason: str | None = None      # the pause reason while paused
    pending: str | None = None     # a pause to apply after the call and its wrap-up
    wrap_call: str | None = None   # the call whose after-call work this is


class Translator:
    def __init__(self) -> None:
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._agents: dict[str, _Agent] = {}

    # -- what the stream asks ------------------------------------------------------
    def agents_of(self, call_id: str | None) -> frozenset[str]:
        """The agents ``call_id`` was offered or connected to so far."""
        c = self._calls.get(call_id) if call_id else None
        return frozenset(c.agents) if c else frozenset()

    def seed_agent(self, agent: str, state: str, reason: str | None = None) -> None:
        """The agent's last published state (from the file, at start)."""
        if state in AGENT_STATE_NAMES:
            self._agents[agent] = _Agent(AGENT_STATE_NAMES.index(state),
                                         reason if state == "paused" else None)

    def agent_state(self, agent: str) -> str | None:
        a = self._agents.get(agent)
        return None if a is None or a.state is None else AGENT_STATE_NAMES[a.state]

    # -- facts in, events out ----------------------------------------------------------
    def translate(self, source: str, fact: dict) -> list[PublicEvent]:
        if source == "queue":
            return self._queue_fact(fact)
        if source == "agent":
            return self._agent_fact(fact)
        if source == "call":
            return self._call_fact(fact)
        raise ValueError(f"unknown fact source {source!r}")

    def _call(self, call_id: str) -> _Call:
        c = self._calls.get(call_id)
        if c is None:
            c = self._calls[call_id] = _Call()
            if len(self._calls) > CALL_MEMORY:
                self._calls.popitem(last=False)
        else:
            self._calls.move_to_end(call_id)
        return c

    def _queue_fact(self, f: dict) -> list[PublicEvent]:
        kind, t, queue, call_id = f["kind"], f["t"], f["queue"], f["call_id"]
        agent, reason, data = f.get("agent"), f.get("reason"), f.get("data") or {}
        c = self._call(call_id)
        out: list[PublicEvent] = []

        def emit(type_: str, *, agent_: str | None = agent, offer_id: str | None = None,
                 **fields: Any) -> None:
            out.append(PublicEvent(type_, t, call_id, queue, agent_, offer_id, fields))

        if kind == "ENTER":
            c.queue, c.original_position, c.offers = queue, f.get("position"), {}
            emit("queue.joined", agent_=None, position=f.get("position"),
                 priority=data.get("priority"))
        elif kind == "OFFER":
            c.n_offers += 1
            offer_id = c.offers[agent] = f"{call_id}#{c.n_offers}"
            c.agents.add(agent)
            emit("offer.created", offer_id=offer_id)
            out += self._move(agent, A_OFFER, t, "offer", call_id)
        elif kind == "RINGNOANSWER":
            offer_id = c.offers.pop(agent, None)
            if reason == "ring_timeout":
                emit("offer.timeout", offer_id=offer_id, reason=reason)
            elif reason in _REJECTED:
                emit("offer.rejected", offer_id=offer_id, reason=reason)
            else:
                emit("offer.canceled", offer_id=offer_id, reason=reason)
            out += self._move(agent, A_DECLINE, t, reason or "declined", call_id)
        elif kind == "CONNECT":
            offer_id = c.offers.pop(agent, None)
            c.agents.add(agent)
            c.agent = agent
            if offer_id is not None:
                emit("offer.accepted", offer_id=offer_id)
            emit("queue.left", reason="answered", position=None,
                 original_position=c.original_position, wait=f.get("wait"))
            emit("bridge.started", offer_id=offer_id)
            a = self._agents.get(agent)
            picked = a is not None and a.state is not None and a.state != OFFERED
            out += self._move(agent, A_PICKUP if picked else A_ANSWER, t,
                              "pickup" if picked else "answer", call_id)
        elif kind in ("ABANDON", "EXIT"):
            emit("queue.left", agent_=None, reason="abandoned" if kind == "ABANDON" else reason,
                 position=f.get("position"), original_position=c.original_position,
                 wait=f.get("wait"))
        elif kind in _SIDES:
            emit("bridge.ended", hangup_side=_SIDES[kind], reason=reason)
        elif kind == "TRANSFER":
            c.transfer_to = data.get("to")
            emit("bridge.ended", hangup_side="transfer", reason=None)
            emit("transfer.completed", mode=data.get("mode", reason), **{
                "from": data.get("from", agent), "to": data.get("to"),
                "origin": data.get("origin")})
        elif kind == "TRANSFER_FAILED":
            emit("transfer.failed", reason=reason, to=c.transfer_to)
        elif kind == "HOLD":
            emit("call.held")
        elif kind == "UNHOLD":
            emit("call.resumed", seconds=f.get("wait"))
        elif kind == "MONITOR_START":
            emit("monitor.started", supervisor=data.get("supervisor"), mode=reason,
                 via=data.get("via"))
        elif kind == "MONITOR_MODE":
            emit("monitor.mode_changed", supervisor=data.get("supervisor"), mode=reason)
        elif kind == "MONITOR_END":
            emit("monitor.ended", supervisor=data.get("supervisor"), seconds=f.get("wait"))
        elif kind in _RECORDING:
            fields: dict[str, Any] = {"recording": data.get("recording")}
            if kind == "RECORDING_START":
                fields["trigger"] = reason
            elif kind == "RECORDING_STOP":
                fields["seconds"] = f.get("wait")
            emit(_RECORDING[kind], **fields)
        elif kind in _CALLBACK:
            emit(_CALLBACK[kind])
        return out

    def _agent_fact(self, f: dict) -> list[PublicEvent]:
        kind, t, agent = f["kind"], f["t"], f["agent"]
        reason, call_id = f.get("reason"), f.get("call_id")
        if kind == "OUTBOUND_END":
            if reason != "agent_no_answer":
                return []   # WRAPUP_START and WRAPUP_END follow
            # The agent never got on the call: through wrap-up at once, back where it was.
            a = self._agents.setdefault(agent, _Agent())
            before = a.state
            if before != BUSY:
                return []
            if a.pending is not None:
                a.state, a.reason, a.pending = PAUSED, a.pending, None
            else:
                a.state = AVAILABLE
            return [self._changed(agent, before, a, t, reason, call_id)]
        inp = _AGENT_INPUTS.get(kind)
        if inp is None:
            return []
        return self._move(agent, inp, t, reason or AGENT_INPUT_NAMES[inp], call_id)

    def _call_fact(self, f: dict) -> list[PublicEvent]:
        call_id, t = f["call_id"], f["t"]
        c = self._call(call_id)
        for key in ("queue", "agent", "outcome", "hangup_side"):
            if f.get(key) is not None:
                setattr(c, key, f[key])
        out: list[PublicEvent] = []
        if f.get("start") is not None and not c.started:
            c.started = True
            out.append(PublicEvent("call.started", f["start"], call_id, c.queue, None, None, {
                "caller": f.get("caller"), "called": f.get("called"),
                "caller_name": f.get("caller_name")}))
        if f.get("answer") is not None and not c.answered:
            c.answered = True
            out.append(PublicEvent("call.answered", f["answer"], call_id, c.queue, c.agent,
                                   None, {}))
        if f.get("end") is not None and not c.ended:
            c.ended = True
            for agent, offer_id in c.offers.items():
                out.append(PublicEvent("offer.canceled", f["end"], call_id, c.queue, agent,
                                       offer_id, {"reason": "call_ended"}))
            c.offers = {}
            out.append(PublicEvent("call.ended", f["end"], call_id, c.queue, c.agent, None,
                                   {"outcome": c.outcome, "hangup_side": c.hangup_side}))
        return out

    # -- agent states ----------------------------------------------------------------------
    def _move(self, agent: str, inp: int, t: float, cause: str,
              call_id: str | None) -> list[PublicEvent]:
        a = self._agents.setdefault(agent, _Agent())
        before = a.state
        if before is None:
            after = _FROM_UNKNOWN[inp]
        else:
            try:
                after = agent_next(before, inp)
            except InvalidTransition:
                return []
        reason = cause
        if inp == A_PAUSE:
            if after == BUSY:            # asked for during a call: after its wrap-up
                a.pending = cause
                return []
            a.reason = cause
        elif inp == A_READY and before == BUSY:
            a.pending = None
        elif inp in (A_OUTBOUND, A_PICKUP) and before == PAUSED:
            a.pending = a.reason
        elif inp == A_WRAP_DONE and before == WRAP_UP and a.pending is not None:
            after, reason, a.reason, a.pending = PAUSED, a.pending, a.pending, None
        if after == LOGGED_OUT:
            a.pending = None
        out: list[PublicEvent] = []
        if after == WRAP_UP and before != WRAP_UP:
            a.wrap_call = call_id
            out.append(PublicEvent("wrapup.started", t, call_id, None, agent, None, {}))
        if before == WRAP_UP and after != WRAP_UP:
            out.append(PublicEvent("wrapup.ended", t, a.wrap_call, None, agent, None,
                                   {"reason": cause}))
            a.wrap_call = None
        if after == before and not (after == PAUSED and inp == A_PAUSE):
            return out
        a.state = after
        if after != PAUSED:
            a.reason = None
        out.append(self._changed(agent, before, a, t, reason, call_id))
        return out

    @staticmethod
    def _changed(agent: str, before: int | None, a: _Agent, t: float, reason: str | None,
                 call_id: str | None) -> PublicEvent:
        return PublicEvent("agent.state_changed", t, call_id, None, agent, None, {
            "previous": None if before is None else AGENT_STATE_NAMES[before],
            "current": AGENT_STATE_NAMES[a.state],
            "reason": a.reason if a.state == PAUSED else reason})
