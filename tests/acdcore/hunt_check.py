"""The hunting property, checked from outside a scheduler (public queries and
actions only) on the differential tests' generated event sequences.

Property: whenever a call is offered to an agent that already failed it in
this round (rejected it or let it ring out), no free agent that may take the
call and has not failed it existed at that moment.  Such an offer starts a
new round, so the harness forgets the call's failures there.

"At that moment" is inside one ``handle`` call, which the harness cannot
see, so it proves the contrary from the two sides of the step instead: an
agent free before the step and still idle after it was free throughout,
provided the step cannot offer an agent and free it again.  That holds when
each step fires timers of one deadline at most (a ring timeout set in the
step is due after it), so timers are fed one deadline at a time here.
"""
from __future__ import annotations

from acd_driver import Driver, make_config

from acdcore import AcdError, CallArrived, Offer, OfferRejected, OfferTimedOut, Tick
from acdcore.skills import eligible, normalize, relax_moments, relaxed


class HuntWatch:
    def __init__(self, s, queues, agents):
        self.s = s
        self.queues = {q.name: q for q in queues}
        self.agents = {a.agent_id: a for a in agents}
        self.max_delay = max(q.reject_delay for q in queues)
        self.tried: dict = {}          # call -> agents that failed it this round
        self.calls: dict = {}          # call -> (queue config, arrival time, requirement)
        self.last_reject: dict = {}    # agent -> time of its last reject (valid or not)
        self.t = float("-inf")
        self.reoffers = 0              # offers that started a new round (coverage)
        self.free_before: set = set()

    def _surely_free(self, a) -> bool:
        # "available" but inside a reject delay is not offerable; the delay is
        # not visible from outside, so an agent that rejected lately is left out.
        return (self.s.agent_state(a) == "available"
                and self.last_reject.get(a, float("-inf")) + self.max_delay <= self.t)

    def _may_take(self, a, call, t: float) -> bool:
        """Whether agent ``a`` meets call's queue and skills as they were at ``t``."""
        q, t_enq, base = self.calls[call]
        if q.name not in self.agents[a].queues:
            return False
        req = base
        waited = t - t_enq - 1e-6   # a relax step is due at its moment, or fires later
        for after, drop in relax_moments(q):
            if after <= waited:
                req = relaxed(base, drop)
        return eligible(self.agents[a].skills, req)

    def before(self, ev) -> None:
        self.free_before = {a for a in self.agents if self._surely_free(a)}

    def after(self, ev, valid_reject: bool, actions) -> None:
        free_before = self.free_before
        if isinstance(ev, OfferRejected):
            self.last_reject[ev.agent_id] = ev.t
            if valid_reject:
                self.tried.setdefault(ev.call_id, set()).add(ev.agent_id)
        if isinstance(ev, CallArrived) and ev.call_id not in self.calls:
            self.calls[ev.call_id] = (self.queues[ev.queue], ev.t, normalize(ev.skills))
        pending = []
        for act in actions:
            if isinstance(act, OfferTimedOut):
                self.tried.setdefault(act.call_id, set()).add(act.agent_id)
            elif isinstance(act, Offer) and act.agent_id in self.tried.get(act.call_id, ()):
                pending.append((act, self.tried.pop(act.call_id)))
                self.reoffers += 1
        t_before, self.t = self.t, max(self.t, ev.t)
        for act, tried in pending:
            passed_over = sorted(b for b in free_before - tried
                                 if self.s.agent_state(b) == "available"
                                 and self._may_take(b, act.call_id, t_before))
            assert not passed_over, (f"{act} re-offers a failed agent (tried {sorted(tried)}) "
                                     f"while {passed_over} idled")


def run_hunt(scheduler_factory, strategies, n_agents, variant, ops, seed=0):
    """Feeds ``ops`` like acd_driver.run, but timers one deadline at a time,
    checking the hunting property after every step; returns the transcript
    and the number of new-round offers seen."""
    queues, agents = make_config(strategies, n_agents, variant)
    s = scheduler_factory(queues, agents, seed=seed,
                          fairness="weight" if variant % 3 == 2 else "oldest")
    d = Driver(len(queues), n_agents)
    watch = HuntWatch(s, queues, agents)
    transcript = []
    for op in ops:
        ev = d.event(op)
        while (due := s.next_deadline()) is not None and due <= ev.t:
            _step(s, d, watch, Tick(due), transcript)
        _step(s, d, watch, ev, transcript)
    return transcript, watch.reoffers


def _step(s, d, watch, ev, transcript):
    valid_reject = isinstance(ev, OfferRejected) and (ev.call_id, ev.agent_id) in d.offers
    watch.before(ev)
    try:
        actions = s.handle(ev)
    except AcdError as exc:
        actions = list(getattr(exc, "actions", []))
    watch.after(ev, valid_reject, actions)
    d.after_event(ev, actions)
    s.check_invariants()
    transcript.append((ev, [(type(a).__name__,) + tuple(a) for a in actions]))
