"""Fixtures for the ACD core tests: every rule runs against both engines."""
from __future__ import annotations

import pytest

from acdcore import AgentConfig, AgentLoggedIn, QueueConfig, ReferenceScheduler
from acdcore.scheduler import COMPILED, InternedScheduler, Scheduler

ENGINES = [pytest.param(ReferenceScheduler, id="reference")]
_NOT_BUILT = pytest.mark.skipif(
    not COMPILED, reason="Cython engine not built (python setup.py build_ext --inplace)")
ENGINES.append(pytest.param(Scheduler, id="cython", marks=_NOT_BUILT))
# What the runtime uses: str ids mapped to ints in C, the core's int path.
ENGINES.append(pytest.param(InternedScheduler, id="interned", marks=_NOT_BUILT))


@pytest.fixture(params=ENGINES)
def engine(request):
    """The scheduler class under test (reference or compiled)."""
    return request.param


class Centre:
    """A scheduler plus terse helpers, so each test reads like a call flow."""

    def __init__(self, cls, queues, agents, seed=0, fairness="oldest", login=True):
        self.s = cls(queues, agents, seed=seed, fairness=fairness)
        self.log: list = []
        if login:
            for a in agents:
                self(AgentLoggedIn(0.0, a.agent_id))

    def __call__(self, ev):
        actions = self.s.handle(ev)
        self.s.check_invariants()
        self.log.extend(actions)
        return actions


@pytest.fixture
def centre(engine):
    """``centre(strategy, n_agents, **queue_kwargs)``: one queue "q", agents
    a0..a{n-1} (penalty 0, logged in at t=0)."""
    def build(strategy="longest_idle", n_agents=3, seed=0, login=True, agent_kw=None,
              **qkw):
        q = QueueConfig("q", strategy, **qkw)
        agents = [AgentConfig(f"a{i}", {"q": 0}, **(agent_kw or {})) for i in range(n_agents)]
        return Centre(engine, [q], agents, seed=seed, login=login)
    return build
