"""The agents' side of the queue runtime: their lines, the control commands
the HTTP API sends, and the read-outs a wallboard shows.  Pure functions of
what the runtime passes in; the runtime feeds and logs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from acdcore import events as ev
from sipagent.queue.entry import QueueEntry


@dataclass
class AgentLine:
    agent_id: str
    uri: str
    auto_login: bool = True
    wrap_up: float | None = None      # overrides the queue's
    talk_limit: float | None = None   # overrides the queue's


def wrap_up_of(lines: Mapping[str, AgentLine], agent_id: str | None, queue_wrap_up: float) -> float:
    """The agent's own wrap-up time if it has one, else its queue's."""
    own = lines[agent_id].wrap_up if agent_id in lines else None
    return queue_wrap_up if own is None else own


def command_event(command: str, now: float, agent_id: str, reason: str = ""):
    """The ACD event for an agent control command; KeyError if there is none."""
    return {"login": lambda: ev.AgentLoggedIn(now, agent_id),
            "logout": lambda: ev.AgentLoggedOut(now, agent_id),
            "ready": lambda: ev.AgentReady(now, agent_id),
            "pause": lambda: ev.AgentPaused(now, agent_id, reason or "paused"),
            "end_wrap_up": lambda: ev.WrapUpDone(now, agent_id)}[command]()


def command_log_kind(command: str, before: str) -> str | None:
    """The agent event-log kind of a command, given the agent's state before
    it; None when it changes nothing to log (ending a wrap-up that is not on)."""
    return {"login": "LOGIN", "logout": "LOGOUT", "pause": "PAUSE",
            "ready": "UNPAUSE" if before == "paused" else "READY",
            "end_wrap_up": "WRAPUP_END" if before == "wrap_up" else None}[command]


def agent_rows(lines: Mapping[str, AgentLine], scheduler, talking: Iterable[QueueEntry], *,
               ringing: Iterable[tuple[str, QueueEntry]] = (), times: AgentTimes | None = None,
               t_wall: float = 0.0, now: float = 0.0) -> list[dict]:
    """One row per agent line: its ACD state, since when (wall clock), the
    call it is on (talk seconds by the loop clock ``now``) or is rung with."""
    on_call = {e.agent_id: e for e in talking}
    rung = dict(ringing)
    out = []
    for agent_id, line in lines.items():
        e = on_call.get(agent_id)
        state = scheduler.agent_state(agent_id)
        row = {"agent": agent_id, "uri": line.uri, "state": state,
               "pause_reason": scheduler.agent_pause_reason(agent_id),
               "call": None if e is None else {
                   "call_id": e.call_id, "queue": e.queue, "caller": e.caller,
                   "talk_seconds": round(now - (e.answered_at or now), 3),
                   "on_hold": bool(e.conversation and e.conversation.caller_held)}}
        offered = rung.get(agent_id)
        row["ringing"] = None if offered is None else {
            "call_id": offered.call_id, "queue": offered.queue, "caller": offered.caller}
        if times is not None:
            row.update(times.row(agent_id, state, t_wall))
        out.append(row)
    return out


class AgentTimes:
    """Per agent: when it entered its state and logged in (wall clock), and
    its calls handled and missed today (UTC day).  The runtime tells it
    what it sees: states after each step of the ACD and once a second,
    answered offers and offers the agent let ring out or refused."""

    MISSED = frozenset({"ring_timeout", "rejected", "busy"})

    def __init__(self):
        self._state: dict[str, str] = {}
        self._since: dict[str, float] = {}
        self._login: dict[str, float] = {}
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}   # (agent, kind) -> (day, n)

    def seen(self, agent_id: str, state: str, t: float) -> None:
        before = self._state.get(agent_id)
        if before == state:
            return
        self._state[agent_id], self._since[agent_id] = state, t
        if state == "logged_out":
            self._login.pop(agent_id, None)
        elif before in (None, "logged_out"):
            self._login[agent_id] = t

    def handled(self, agent_id: str, t: float) -> None:
        self._count(agent_id, "handled", t)

    def offer_lost(self, agent_id: str, reason: str, t: float) -> None:
        if reason in self.MISSED:
            self._count(agent_id, "missed", t)

    def forget(self, agent_id: str) -> None:
        for d in (self._state, self._since, self._login):
            d.pop(agent_id, None)

    def row(self, agent_id: str, state: str, t: float) -> dict:
        self.seen(agent_id, state, t)
        return {"since": self._since[agent_id], "login_at": self._login.get(agent_id),
                "handled_today": self._today(agent_id, "handled", t),
                "missed_today": self._today(agent_id, "missed", t)}

    def _count(self, agent_id: str, kind: str, t: float) -> None:
        day = int(t // 86400)
        was_day, n = self._counts.get((agent_id, kind), (day, 0))
        self._counts[(agent_id, kind)] = (day, (n if was_day == day else 0) + 1)

    def _today(self, agent_id: str, kind: str, t: float) -> int:
        day, n = self._counts.get((agent_id, kind), (None, 0))
        return n if day == int(t // 86400) else 0


def queue_snapshot(scheduler, queues: Iterable[str], now: float) -> dict:
    """Waiting counts, agents by state, oldest wait and EWT per queue."""
    queues = list(queues)
    oldest = {}
    for q in queues:
        start = scheduler.oldest_wait_start(q)
        oldest[q] = 0.0 if start is None else max(0.0, now - start)
    return {
        "waiting": {q: scheduler.waiting_count(q) for q in queues},
        "agents": {q: dict(scheduler.agents_by_state(q)) for q in queues},
        "oldest_wait": oldest,
        "ewt": {q: scheduler.queue_ewt(q) for q in queues},
    }
