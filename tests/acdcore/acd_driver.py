"""Turns a list of small-integer ops into plausible ACD event sequences.

The driver watches the actions it gets back (offers, connects, cancels) so
most generated events are meaningful -- answering an offer that exists,
ending a call that is talking -- while a few are deliberately stale or
invalid (late answers, unknown ids) to exercise the race and error paths.
"""
from __future__ import annotations

from acdcore import (AcdError, AgentConfig, AgentLoggedIn, AgentLoggedOut, AgentPaused,
                     AgentReady, CallAbandoned, CallArrived, CallbackRequested, CallEnded,
                     CallPickedUp,
                     CallWithdrawn, CancelOffer, Connect, Offer, OfferAnswered,
                     OfferRejected, OfferTimedOut, QueueConfig, Tick, WrapUpDone)
from acdcore import AgentOutbound, OutboundEnded

N_OPS = 18
SKILL_SETS = [(), (("fr", 1),), (("fr", 3),), (("billing", 2), ("fr", 1)), (("de", 5),)]
AGENT_SKILLS = [{}, {"fr": 1}, {"fr": 3, "billing": 2}, {"de": 5}, {"fr": 5, "de": 1}]


def agent_id(k: int, ids: str = "str"):
    """Agent ids: "str" (a0, a1...), "int" (0, 1...) or "mixed" (both in one engine)."""
    if ids == "int" or (ids == "mixed" and k % 2):
        return k
    return f"a{k}"


def call_id(n: int, ids: str = "str"):
    if ids == "int" or (ids == "mixed" and n % 3):
        return n
    return f"c{n}"


def alias(x, j: int, ids: str):
    """With mixed ids, refer to an int id by an equal number of another type
    (5.0, True): a Python dict treats them as one key, so both engines must."""
    if ids == "mixed" and type(x) is int and j % 3 == 1:
        return bool(x) if x in (0, 1) else float(x)
    return x


def make_config(strategies, n_agents: int, variant: int, ids: str = "str"):
    queues = []
    for i, s in enumerate(strategies):
        queues.append(QueueConfig(
            name=f"q{i}", strategy=s, ring_timeout=5.0 + i,
            wrap_up=(0.0, 3.0, 7.5)[(variant + i) % 3],
            max_len=(0, 4, 0)[(variant + i) % 3],
            max_wait=(0.0, 20.0, 45.0)[(variant + 2 * i) % 3],
            join_empty=(variant + i) % 4 != 1,
            leave_when_empty=(variant + i) % 5 == 2,
            weight=i % 3,
            autopause_after=(0, 2, 3)[(variant + i) % 3],
            reject_delay=(0.0, 4.0)[(variant + i) % 2],
            skill_relax=((10.0, 2),) if (variant + i) % 2 else ((5.0, 1), (15.0, 3)),
            skill_any_after=(0.0, 30.0)[(variant + i) % 2],
        ))
    agents = []
    nq = len(queues)
    for k in range(n_agents):
        member = {f"q{j}": (k + j) % 3 for j in range(nq) if (k + j) % 3 != 2 or nq == 1}
        agents.append(AgentConfig(
            agent_id=agent_id(k, ids), queues=member, skills=AGENT_SKILLS[k % len(AGENT_SKILLS)],
            wrap_up=None if k % 4 else 2.0, weight=1 + k % 3))
    return queues, agents


class Driver:
    def __init__(self, n_queues: int, n_agents: int, ids: str = "str"):
        self.t = 0.0
        self.n_queues = n_queues
        self.ids = ids
        self.agents = [agent_id(k, ids) for k in range(n_agents)]
        self.calls: list[str] = []
        self.offers: list[tuple[str, str]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.talking: list[str] = []
        self.dialling: list = []       # agents on an outbound call

    def event(self, op):
        kind, i, j, dt = op
        self.t += dt * 0.5
        t = self.t
        ag = self.agents[i % len(self.agents)]
        if kind == 0:
            cid = call_id(len(self.calls), self.ids)
            self.calls.append(cid)
            return CallArrived(t, cid, f"q{i % self.n_queues}", priority=j % 3,
                               skills=SKILL_SETS[(i // 3 + j) % len(SKILL_SETS)],
                               callback=(j % 7 == 6))
        if kind in (1, 2) and self.offers:
            c, a = self.offers[i % len(self.offers)]
            return OfferAnswered(t, c, a) if kind == 1 else OfferRejected(t, c, a, busy=j % 2 == 1)
        if kind == 3 and self.talking:
            return CallEnded(t, self.talking[i % len(self.talking)])
        if kind in (4, 5, 12) and self.calls:
            c = alias(self.calls[-1 - (i % min(len(self.calls), 4))], j, self.ids)
            if kind == 4:
                return CallAbandoned(t, c)
            if kind == 5:
                return CallWithdrawn(t, c, "exit_key")
            return CallbackRequested(t, c)
        if kind == 6:
            return AgentLoggedIn(t, ag)
        if kind == 7:
            return AgentLoggedOut(t, ag)
        if kind == 8:
            return AgentReady(t, ag)
        if kind == 9:
            return AgentPaused(t, ag, ("lunch", "break")[j % 2])
        if kind == 10:
            return WrapUpDone(t, ag)
        if kind == 13 and self.cancelled:
            c, a = self.cancelled[i % len(self.cancelled)]
            return OfferAnswered(t, c, a) if j % 2 else OfferRejected(t, c, a)
        if kind == 14:
            return OfferAnswered(t, alias(call_id(i, self.ids), j, self.ids), ag)  # mostly invalid
        if kind == 15:
            return AgentOutbound(t, ag)       # invalid while offered, busy or logged out
        if kind == 16:
            # Mostly the end of a real outbound call, sometimes a bogus one.
            if self.dialling and j % 4:
                return OutboundEnded(t, self.dialling[i % len(self.dialling)],
                                     wrap_up=j % 3 != 0)
            return OutboundEnded(t, ag)
        if kind == 17:
            # Mostly a ringing call, by any agent (its state decides); else any
            # call at all (answered, gone, waiting: refused).
            if self.offers and j % 8:
                return CallPickedUp(t, self.offers[i % len(self.offers)][0],
                                    self.agents[(i + j) % len(self.agents)])
            if self.calls:
                return CallPickedUp(t, alias(self.calls[-1 - (j % min(len(self.calls), 4))],
                                             j, self.ids), ag)
        return Tick(t)

    def observe(self, actions):
        for act in actions:
            if isinstance(act, Offer):
                self.offers.append((act.call_id, act.agent_id))
            elif isinstance(act, (CancelOffer, OfferTimedOut)):
                pair = (act.call_id, act.agent_id)
                if pair in self.offers:
                    self.offers.remove(pair)
                self.cancelled.append(pair)
                del self.cancelled[:-8]
            elif isinstance(act, Connect):
                if (act.call_id, act.agent_id) in self.offers:   # not so for a pickup
                    self.offers.remove((act.call_id, act.agent_id))
                self.talking.append(act.call_id)
    def after_event(self, ev, actions, failed=False):
        if isinstance(ev, AgentOutbound) and not failed:
            self.dialling.append(ev.agent_id)
        if isinstance(ev, OutboundEnded) and ev.agent_id in self.dialling:
            self.dialling.remove(ev.agent_id)
        if isinstance(ev, OfferRejected) and (ev.call_id, ev.agent_id) in self.offers:
            self.offers.remove((ev.call_id, ev.agent_id))
        if isinstance(ev, CallEnded) and ev.call_id in self.talking:
            self.talking.remove(ev.call_id)
        self.observe(actions)


def run(scheduler_factory, strategies, n_agents, variant, ops, seed=0, check=True, ids="str"):
    """Feeds ``ops`` to a scheduler; returns the transcript of (event, outcome)."""
    queues, agents = make_config(strategies, n_agents, variant, ids)
    s = scheduler_factory(queues, agents, seed=seed,
                          fairness="weight" if variant % 3 == 2 else "oldest")
    d = Driver(len(queues), n_agents, ids)
    transcript = []
    for op in ops:
        ev = d.event(op)
        # Before a reject, fire due timers on their own, so the reject's own
        # actions are not mixed with a timeout's (the world-rule check in the
        # differential test needs to tell them apart).
        for ev in ([Tick(ev.t), ev] if isinstance(ev, OfferRejected) else [ev]):
            _step(s, d, ev, queues, check, transcript)
    positions = []
    for cid in d.calls:
        try:
            positions.append((cid, s.queue_position(cid), s.ewt(cid)))
        except AcdError:
            positions.append((cid, None, "gone"))
    transcript.append(("positions", positions))
    return transcript


def _step(s, d, ev, queues, check, transcript):
    failed = False
    try:
        actions = s.handle(ev)
        outcome = [(type(a).__name__,) + tuple(a) for a in actions]
    except AcdError as exc:
        failed = True
        actions = list(getattr(exc, "actions", []))
        outcome = ("error", type(exc).__name__,
                   [(type(a).__name__,) + tuple(a) for a in actions])
    d.after_event(ev, actions, failed)
    if check:
        s.check_invariants()
    snapshot = (s.next_deadline(),
                tuple(tuple(sorted(s.agents_by_state(q.name).items())) for q in queues),
                tuple(s.waiting_count(q.name) for q in queues),
                tuple(s.oldest_wait_start(q.name) for q in queues),
                tuple(s.queue_ewt(q.name) for q in queues))
    transcript.append((ev, outcome, snapshot))
