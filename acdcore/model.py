"""Configuration of queues and agents (frozen, validated at construction).

Strategies
----------
Every strategy ranks the *free* agents of a queue; lower penalty (tier)
always wins first, the strategy orders agents inside a tier:

``linear``          fixed order (membership order), always from the top.
``round_robin``     circular with memory: the agent after the one offered last.
``ring_all``        every free agent of the best tier rings at once; the first
                    to answer wins, the others get CancelOffer.
``longest_idle``    the agent whose last call ended longest ago (login counts
                    as a call end).
``fewest_calls``    fewest answered calls since the scheduler started.
``least_talk_time`` least accumulated talk time.
``random``          uniform among free agents (seeded PRNG).
``weighted_random`` proportional to ``AgentConfig.weight``.
``skills``          highest summed proficiency on the call's required skills,
                    ties by longest idle.

Whatever the strategy, an agent that rejected a call or let it ring out is
passed over for that call until every other free agent that may take it has
failed it too (a "round"; see reference.py), as Asterisk and FreeSWITCH hunt.

Skills are orthogonal to the strategy: a call that carries required skills is
only ever offered to agents that meet them, whatever the strategy.  The
``skills`` strategy additionally *ranks* by proficiency.  Requirements relax
with wait time: ``skill_relax=((after_s, drop), ...)`` lowers every required
minimum by ``drop`` once the call has waited ``after_s`` seconds (the latest
step reached wins; a minimum that reaches 0 is dropped, since an agent without
a skill has proficiency 0), and ``skill_any_after`` (> 0) lets any agent of
the queue take the call after that wait.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Strategy(str, enum.Enum):
    LINEAR = "linear"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"
    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    LEAST_TALK_TIME = "least_talk_time"
    RANDOM = "random"
    WEIGHTED_RANDOM = "weighted_random"
    SKILLS = "skills"


# Stable integer codes (the Cython engine switches on these).
STRATEGY_CODES = {s: i for i, s in enumerate(Strategy)}


@dataclass(frozen=True)
class QueueConfig:
    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout: float = 15.0
    wrap_up: float = 0.0
    max_len: int = 0            # 0 = unlimited (counts waiting + ringing calls)
    max_wait: float = 0.0       # 0 = no timeout
    join_empty: bool = True
    leave_when_empty: bool = False
    weight: int = 0             # only used with Scheduler(fairness="weight")
    autopause_after: int = 0    # consecutive ring timeouts; 0 = off
    reject_delay: float = 0.0   # agent not offered again for this long after a reject
    skill_relax: tuple[tuple[float, int], ...] = ()
    skill_any_after: float = 0.0  # 0 = never ignore skills
    handle_time_hint: float = 180.0  # EWT handle time until real samples exist

    def __post_init__(self):
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        steps = tuple(sorted((float(a), int(d)) for a, d in self.skill_relax))
        object.__setattr__(self, "skill_relax", steps)
        if not self.name:
            raise ValueError("queue name must not be empty")
        if self.ring_timeout <= 0:
            raise ValueError(f"queue {self.name}: ring_timeout must be > 0")
        for key in ("wrap_up", "max_wait", "reject_delay", "skill_any_after"):
            if getattr(self, key) < 0:
                raise ValueError(f"queue {self.name}: {key} must be >= 0")
        if self.max_len < 0 or self.autopause_after < 0:
            raise ValueError(f"queue {self.name}: max_len/autopause_after must be >= 0")
        if self.handle_time_hint <= 0:
            raise ValueError(f"queue {self.name}: handle_time_hint must be > 0")


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    queues: dict[str, int] = field(default_factory=dict)   # queue -> penalty
    skills: dict[str, int] = field(default_factory=dict)   # skill -> proficiency
    wrap_up: float | None = None   # overrides the queue's wrap-up when set
    weight: int = 1                # weighted_random share

    def __post_init__(self):
        if not isinstance(self.queues, dict):
            object.__setattr__(self, "queues", {q: 0 for q in self.queues})
        if self.weight <= 0:
            raise ValueError(f"agent {self.agent_id}: weight must be > 0")
        if self.wrap_up is not None and self.wrap_up < 0:
            raise ValueError(f"agent {self.agent_id}: wrap_up must be >= 0")
