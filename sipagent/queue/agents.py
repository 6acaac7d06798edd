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


def agent_rows(lines: Mapping[str, AgentLine], scheduler,
               talking: Iterable[QueueEntry]) -> list[dict]:
    """One row per agent line: its ACD state and the call it is on, if any."""
    on_call = {e.agent_id: e for e in talking}
    out = []
    for agent_id, line in lines.items():
        e = on_call.get(agent_id)
        out.append({"agent": agent_id, "uri": line.uri,
                    "state": scheduler.agent_state(agent_id),
                    "pause_reason": scheduler.agent_pause_reason(agent_id),
                    "call": None if e is None else {"call_id": e.call_id, "queue": e.queue,
                                                    "caller": e.caller}})
    return out


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
