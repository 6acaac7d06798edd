"""A synthetic call-centre day written into a real event log, the way the
queue runtime logs it (ENTER, OFFER, CONNECT, COMPLETE_*, ABANDON,
WRAPUP_START/_END, LOGIN/LOGOUT), from a small simulation of its own:
first come first served, N identical agents, lognormal talk, exponential
patience, a fixed ring time and wrap-up.  It shares no code with
acdcore's simulator, so a what-if that replays the day through acdcore
checks one model against another."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sipagent.store.eventlog import EventLog


@dataclass
class DayShape:
    t0: float                 # the day's midnight (epoch)
    calls: int = 1500
    agents: int = 10
    open_hours: tuple[float, float] = (8.0, 18.0)
    talk: float = 170.0       # mean seconds
    wrap: float = 10.0
    ring: float = 2.0
    patience: float = 90.0    # mean seconds
    queue: str = "sales"
    seed: int = 1


def arrivals(shape: DayShape, rng) -> np.ndarray:
    """A morning and an afternoon peak inside opening hours."""
    a, b = shape.open_hours
    hours = np.concatenate([rng.normal(10.5, 1.2, shape.calls * 2),
                            rng.normal(15.0, 1.3, shape.calls * 2)])
    hours = hours[(hours >= a) & (hours < b)]
    hours = rng.choice(hours, shape.calls, replace=False)
    return np.sort(shape.t0 + hours * 3600.0)


def write_day(path, shape: DayShape, *, extra_agents: int = 0) -> dict:
    """Writes the day; returns its true per-call outcome counts."""
    rng = np.random.default_rng(shape.seed)
    arrive = arrivals(shape, rng)
    sigma2 = math.log1p(0.8 ** 2)
    talk = rng.lognormal(math.log(shape.talk) - sigma2 / 2, math.sqrt(sigma2), shape.calls)
    patience = rng.exponential(shape.patience, shape.calls)
    names = [f"ag{i:02d}" for i in range(shape.agents + extra_agents)]
    free_at = np.full(shape.agents, shape.t0 + 1.0)
    counts = {"answered": 0, "abandoned": 0}
    with EventLog(path, flush_interval=60, flush_rows=10_000) as log:
        events = []

        def q(t, call, kind, **kw):
            events.append((t, len(events), "q", (shape.queue, call, kind), kw))

        def ag(t, agent, kind, **kw):
            events.append((t, len(events), "a", (agent, kind), kw))

        for name in names:
            ag(shape.t0 + 1.0, name, "LOGIN")
        for i, t in enumerate(arrive):
            call = f"c{i:05d}"
            q(t, call, "ENTER", position=1)
            j = int(np.argmin(free_at))
            offer = max(t, free_at[j])
            connect = offer + shape.ring
            if patience[i] < connect - t:
                gone = t + patience[i]
                if gone > offer:     # it rang the agent, who is free again at the hang-up
                    q(offer, call, "OFFER", agent=names[j])
                    q(gone, call, "RINGNOANSWER", agent=names[j], reason="caller_gone")
                    free_at[j] = gone
                q(gone, call, "ABANDON", wait=float(patience[i]), position=1)
                counts["abandoned"] += 1
                continue
            end = connect + talk[i]
            q(offer, call, "OFFER", agent=names[j])
            q(connect, call, "CONNECT", agent=names[j], wait=float(connect - t))
            q(end, call, "COMPLETE_CALLER", agent=names[j])
            ag(end, names[j], "WRAPUP_START", queue=shape.queue, call_id=call)
            ag(end + shape.wrap, names[j], "WRAPUP_END", queue=shape.queue, call_id=call)
            free_at[j] = end + shape.wrap
            counts["answered"] += 1
        for name in names:
            ag(shape.t0 + 23.5 * 3600, name, "LOGOUT")
        events.sort(key=lambda e: (e[0], e[1]))
        for t, _, side, args, kw in events:
            if side == "q":
                log.queue_event(t, *args, **kw)
            else:
                log.agent_event(t, *args, **kw)
    counts["events"] = len(events)
    return counts
