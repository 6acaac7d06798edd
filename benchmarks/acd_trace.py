"""The synthetic ACD trace that benchmarks/acd_core.py replays.

A trace is recorded once, closed-loop, against a real scheduler: agents log
in, calls arrive until every agent talks and ``n_waiting`` calls wait, then
a churn phase keeps the queue that deep — calls end and the freed agent
takes the oldest call, new calls arrive, waiting callers abandon, every
tenth queue has a wrap-up timer, and a Tick comes every 100 events.  Every
``Offer`` is answered at once, so the trace holds the runtime's side of the
conversation as ``handle_raw`` argument tuples ``(code, t, call, agent,
queue)`` and can be replayed open-loop into any engine that follows the
same rules.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from acdcore import events as E
from acdcore.actions import Connect, Offer
from acdcore.model import AgentConfig, QueueConfig, Strategy

__all__ = ["Trace", "centre", "config_for", "interned", "record"]

# Strategies spread over the 100 queues; random/skills need no special trace.
_STRATEGIES = (Strategy.LONGEST_IDLE, Strategy.ROUND_ROBIN, Strategy.FEWEST_CALLS,
               Strategy.LEAST_TALK_TIME, Strategy.LINEAR, Strategy.RANDOM)


def centre(n_agents: int, n_queues: int) -> tuple[list[QueueConfig], list[AgentConfig]]:
    queues = [
        QueueConfig(f"q{i}", strategy=_STRATEGIES[i % len(_STRATEGIES)],
                    wrap_up=5.0 if i % 10 == 0 else 0.0)
        for i in range(n_queues)
    ]
    # Each agent is primary on one queue and backup (penalty 1) on another,
    # so free agents must choose between queues (the work-conserving path).
    agents = [
        AgentConfig(f"a{i}", queues={f"q{i % n_queues}": 0, f"q{(i * 7 + 3) % n_queues}": 1})
        for i in range(n_agents)
    ]
    return queues, agents


@dataclass
class Trace:
    events: list[tuple]                 # (code, t, call_id, agent_id, queue)
    fill_start: int                     # first arrival that will have to wait
    fill_end: int                       # index after the last fill-phase event
    waiting_at_fill_end: int
    recorder: str
    n_agents: int
    n_queues: int
    phases: dict[str, int] = field(default_factory=dict)


class _Pool:
    """A set with O(1) random removal (swap with the last)."""

    def __init__(self) -> None:
        self.items: list = []
        self.where: dict = {}

    def add(self, x) -> None:
        self.where[x] = len(self.items)
        self.items.append(x)

    def discard(self, x) -> None:
        i = self.where.pop(x, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.where[last] = i

    def pick(self, rnd: random.Random):
        return self.items[rnd.randrange(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)


def record(cls: type, n_agents: int, n_queues: int, n_waiting: int, n_churn: int, seed: int = 7) -> Trace:
    queues, agents = centre(n_agents, n_queues)
    sched = cls(queues, agents, seed=seed)
    rnd = random.Random(seed)
    out: list[tuple] = []
    talking: dict = {}                  # call -> agent
    talking_pool, waiting = _Pool(), _Pool()
    t = 0.0
    next_call = 0

    def feed(code, call=None, agent=None, queue=None) -> None:
        pending = [(code, call, agent, queue)]
        while pending:
            code, call, agent, queue = pending.pop()
            out.append((code, t, call, agent, queue))
            for act in sched.handle_raw(code, t, call, agent, None, queue, 0):
                kind = type(act)
                if kind is Offer:
                    pending.append((E.EV_OFFER_ANSWERED, act.call_id, act.agent_id, None))
                elif kind is Connect:
                    waiting.discard(act.call_id)
                    talking[act.call_id] = act.agent_id
                    talking_pool.add(act.call_id)

    def arrive() -> None:
        nonlocal next_call
        call = f"c{next_call}"
        next_call += 1
        waiting.add(call)
        feed(E.EV_CALL_ARRIVED, call, None, f"q{rnd.randrange(n_queues)}")

    for a in agents:
        feed(E.EV_AGENT_LOGGED_IN, None, a.agent_id)
    fill_start = None
    while len(waiting) < n_waiting:
        t += 1e-4
        if fill_start is None and len(talking) >= n_agents:
            fill_start = len(out)
        arrive()
    fill_end = len(out)
    phases = {"login+fill": fill_end}
    for k in range(n_churn):
        t += 1e-3
        if k % 100 == 0:
            feed(E.EV_TICK)
        r = rnd.random()
        if r < 0.4 and talking_pool:
            call = talking_pool.pick(rnd)
            talking_pool.discard(call)
            del talking[call]
            feed(E.EV_CALL_ENDED, call)
        elif r < 0.9 or not waiting:
            arrive()
        else:
            call = waiting.pick(rnd)
            waiting.discard(call)
            feed(E.EV_CALL_ABANDONED, call)
    phases["churn"] = len(out) - fill_end
    return Trace(out, fill_start or fill_end, fill_end, n_waiting, cls.__name__, n_agents, n_queues, phases)


def config_for(trace: Trace, ids: str = "str") -> tuple[list[QueueConfig], list[AgentConfig]]:
    queues, agents = centre(trace.n_agents, trace.n_queues)
    if ids == "int":
        agents = [replace(a, agent_id=int(a.agent_id[1:])) for a in agents]
    return queues, agents


def _int_id(x):
    return None if x is None else int(x[1:])


def interned(trace: Trace) -> Trace:
    """The same trace with int call and agent ids ("c123" -> 123, "a5" -> 5),
    as a runtime that interns its SIP Call-IDs and agent names would pass
    them (queue names stay strings: a hundred hot keys).  Replay it with
    ``config_for(trace, ids="int")``."""
    events = [(code, t, _int_id(c), _int_id(a), q) for code, t, c, a, q in trace.events]
    return Trace(events, trace.fill_start, trace.fill_end, trace.waiting_at_fill_end,
                 trace.recorder, trace.n_agents, trace.n_queues, dict(trace.phases))
