"""Queueing formulas for staffing: Erlang B, Erlang C (M/M/N) and Erlang A (M/M/N+M).

Everything is exact — state-probability sums and closed forms — with no
approximations (no Garnett/Halfin-Whitt, no "Erlang C with a patience fudge").
Units are free as long as they agree: arrival rate per second with handle
time and patience in seconds, or per minute with minutes.

Theory of operation for Erlang A (Palm's model; Mandelbaum & Zeltyn 2005,
"The impact of customers' patience on delay and abandonment"):

* Arrivals Poisson(λ), N agents, service Exp(μ), each waiting caller
  abandons after an Exp(θ) patience.  Above N the birth-death chain has
  death rate Nμ + kθ with k callers waiting, so the queue-length tail
  q_m = Π_{k=1..m} λ / (Nμ + kθ) decays faster than geometrically and an
  exact sum needs only a few hundred terms past its peak.  We sum it in
  logs, so loads of thousands of Erlangs neither overflow nor underflow.
* By PASTA an arrival finds m callers ahead with probability π_{N+m}.  Its
  *virtual* wait V (the wait if it were infinitely patient) is the sum of
  Exp(Nμ + iθ), i = 0..m.  Partial fractions give the density
  θ (x)_{m+1}/m! · e^{-xθt} (1 - e^{-θt})^m with x = Nμ/θ, i.e.
  U = e^{-θV} ~ Beta(x, m+1).  The caller is answered iff its patience
  outlasts V, which has probability E[e^{-θV}] = E[U]; so every quantity we
  need is a Beta moment with an integer second parameter, and those are
  finite negative-binomial sums:
    P(answered, wait ≤ T | m) = x/(x+m+1) · (1 − F_m)
    P(abandoned, wait ≤ t | m) = Σ_{j≤m} x/((x+j)(x+j+1)) · (1 − F_j)
    E[wait · 1{answered} | m] = x/(x+m+1) · Σ_{i=1..m+1} 1/(x+i) / θ
  where F_j is the NegBin(x+1, 1−e^{-θT}) CDF at j.  T → ∞ recovers
  P(abandon | m) = (m+1)/(x+m+1), which the tests check against the
  independent identity P(abandon) = θ·E[queue length]/λ.

Service level "over offered" in Erlang A means answered within T divided
by all offered calls (= answered + abandoned, since the model has no other
exit): the OFFERED variant of ``service_level``.  Other variants are
available through ``QueueModel.service_level``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from acdcore.service_level import ServiceLevelVariant, service_level

__all__ = [
    "erlang_b",
    "erlang_c",
    "ErlangC",
    "ErlangA",
    "QueueModel",
    "queue_model",
]

# A tail term this many nats below the largest adds < 1e-19 relative mass.
_TAIL_NATS = 45.0


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/N/N with ``load`` Erlangs offered.

    The classic recursion B(n) = A·B(n−1) / (n + A·B(n−1)) only ever forms
    ratios in [0, 1], so it is stable for any N and A (unlike A^N/N!).
    """
    if agents < 0 or load < 0 or not math.isfinite(load):
        raise ValueError(f"need agents >= 0 and a finite load >= 0, got {agents}, {load}")
    b = 1.0
    for n in range(1, agents + 1):
        ab = load * b
        b = ab / (n + ab)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that an arrival waits in M/M/N (1.0 when the queue is unstable)."""
    if load >= agents:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


class QueueModel:
    """Steady-state predictions shared by ErlangC and ErlangA.

    Subclasses provide the probabilities; this class turns them into the
    KPIs the staffing table shows, using the same service-level variants
    as the live KPIs.
    """

    agents: int
    arrival_rate: float
    aht: float

    @property
    def load(self) -> float:
        """Offered load in Erlangs."""
        return self.arrival_rate * self.aht

    # Subclasses implement these five.
    @property
    def p_wait(self) -> float:
        raise NotImplementedError

    @property
    def p_abandon(self) -> float:
        raise NotImplementedError

    @property
    def asa(self) -> float:
        """Mean wait of answered calls (including the zero waits)."""
        raise NotImplementedError

    def answered_within(self, t: float) -> float:
        """P(an offered call is answered with wait ≤ t)."""
        raise NotImplementedError

    def abandoned_within(self, t: float) -> float:
        """P(an offered call abandons with wait ≤ t)."""
        raise NotImplementedError

    @property
    def p_answered(self) -> float:
        return 1.0 - self.p_abandon

    @property
    def occupancy(self) -> float:
        """Busy agents / agents: carried load (answered calls only) over N."""
        return min(1.0, self.arrival_rate * self.p_answered * self.aht / self.agents)

    def service_level(
        self,
        threshold: float,
        variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED,
        short_abandon: float = 5.0,
    ) -> float:
        """Steady-state SL in the given variant (default: answered within T
        over all offered calls).  Erlang C has no abandons, so its four
        variants coincide."""
        return service_level(
            variant,
            answered=self.p_answered,
            answered_within=self.answered_within(threshold),
            abandoned=self.p_abandon,
            abandoned_within=self.abandoned_within(threshold),
            short_abandoned=self.abandoned_within(short_abandon),
        )


@dataclass(frozen=True)
class ErlangC(QueueModel):
    """M/M/N with infinitely patient callers."""

    agents: int
    arrival_rate: float
    aht: float

    def __post_init__(self) -> None:
        _check(self.agents, self.arrival_rate, self.aht)

    @property
    def stable(self) -> bool:
        return self.load < self.agents

    @cached_property
    def p_wait(self) -> float:  # type: ignore[override]
        return erlang_c(self.agents, self.load)

    @property
    def p_abandon(self) -> float:
        return 0.0

    @property
    def asa(self) -> float:
        if not self.stable:
            return math.inf
        return self.p_wait * self.aht / (self.agents - self.load)

    def answered_within(self, t: float) -> float:
        if not self.stable:
            return 0.0
        return 1.0 - self.p_wait * math.exp(-(self.agents - self.load) * t / self.aht)

    def abandoned_within(self, t: float) -> float:
        return 0.0


@dataclass(frozen=True)
class ErlangA(QueueModel):
    """M/M/N+M: exponential patience with mean ``patience`` (same unit as aht)."""

    agents: int
    arrival_rate: float
    aht: float
    patience: float

    def __post_init__(self) -> None:
        _check(self.agents, self.arrival_rate, self.aht)
        if not (self.patience > 0 and math.isfinite(self.patience)):
            raise ValueError(f"patience must be finite and > 0, got {self.patience}")

    @property
    def _theta(self) -> float:
        return 1.0 / self.patience

    @property
    def _x(self) -> float:
        """Nμ/θ: the first Beta parameter of e^{-θV}."""
        return self.agents * self.patience / self.aht

    @cached_property
    def _waiting(self) -> np.ndarray:
        """π_{N+m}, m = 0..M-1: P(an arrival finds m callers waiting ahead of it)."""
        lam, n_mu, theta = self.arrival_rate, self.agents / self.aht, self._theta
        if lam == 0:
            return np.zeros(1)
        peak = max(0.0, (lam - n_mu) / theta)
        size = int(peak + 10.0 * math.sqrt(lam / theta) + 64)
        while True:
            k = np.arange(1, size, dtype=np.float64)
            log_q = np.concatenate(([0.0], np.cumsum(math.log(lam) - np.log(n_mu + k * theta))))
            if log_q[-1] < log_q.max() - _TAIL_NATS and log_q[-1] < log_q[-2]:
                break
            size *= 2
        log_sum_q = float(np.logaddexp.reduce(log_q))
        b = erlang_b(self.agents, self.load)
        if b == 0.0:
            return np.zeros(1)
        # π_N = B / (1 − B + B·S): the M/M/N/N states below N keep their
        # Erlang-B proportions, the queue states add S = Σ q_m relative to π_N.
        log_pi_n = math.log(b) - float(np.logaddexp(math.log1p(-b) if b < 1 else -np.inf,
                                                      math.log(b) + log_sum_q))
        return np.exp(log_pi_n + log_q)

    @cached_property
    def _m(self) -> np.ndarray:
        return np.arange(self._waiting.size, dtype=np.float64)

    @cached_property
    def _p_answer_given_m(self) -> np.ndarray:
        return self._x / (self._x + self._m + 1.0)

    @cached_property
    def p_wait(self) -> float:  # type: ignore[override]
        return min(1.0, float(self._waiting.sum()))

    @cached_property
    def p_abandon(self) -> float:  # type: ignore[override]
        return min(1.0, float(np.dot(self._waiting, 1.0 - self._p_answer_given_m)))

    @cached_property
    def asa(self) -> float:  # type: ignore[override]
        x = self._x
        harmonic = np.cumsum(1.0 / (x + self._m + 1.0))  # Σ_{i=1..m+1} 1/(x+i)
        answered_wait = float(np.dot(self._waiting, self._p_answer_given_m * harmonic)) / self._theta
        return answered_wait / self.p_answered

    @property
    def mean_abandon_wait(self) -> float:
        """Mean wait of abandoned calls.

        E[min(V, τ)] = P(abandon)/θ (the abandon hazard is θ while waiting),
        minus the answered part, leaves the abandoned part.
        """
        if self.p_abandon == 0:
            return math.nan
        answered_part = self.asa * self.p_answered
        return (self.p_abandon / self._theta - answered_part) / self.p_abandon

    def _negbin_survival(self, t: float) -> np.ndarray:
        """1 − F_j for j = 0..M-1, F = NegBin(x+1, 1−e^{-θt}) CDF, in logs."""
        if t <= 0:
            return np.zeros(self._m.size)
        if math.isinf(t):
            return np.ones(self._m.size)
        a = self._x + 1.0
        theta_t = self._theta * t
        w = -math.expm1(-theta_t)
        if w <= 0.0:  # t so small that θt underflows: nobody has been answered yet
            return np.zeros(self._m.size)
        log_u = -theta_t
        log_w = math.log(w)
        j = self._m
        log_pmf = a * log_u + j * log_w
        log_pmf[1:] += np.cumsum(np.log((a - 1.0 + j[1:]) / j[1:]))
        log_cdf = np.logaddexp.accumulate(log_pmf)
        return -np.expm1(np.minimum(log_cdf, 0.0))

    def answered_within(self, t: float) -> float:
        waited = float(np.dot(self._waiting, self._p_answer_given_m * self._negbin_survival(t)))
        return (1.0 - self.p_wait) + waited

    def abandoned_within(self, t: float) -> float:
        x, j = self._x, self._m
        # Σ_m π_m Σ_{j≤m} g_j  ==  Σ_j g_j Σ_{m≥j} π_m : one pass instead of M².
        tail = np.cumsum(self._waiting[::-1])[::-1]
        g = x / ((x + j) * (x + j + 1.0)) * self._negbin_survival(t)
        return float(np.dot(g, tail))


def _check(agents: int, arrival_rate: float, aht: float) -> None:
    if agents < 1:
        raise ValueError(f"need at least one agent, got {agents}")
    if not (arrival_rate >= 0 and math.isfinite(arrival_rate)):
        raise ValueError(f"arrival rate must be finite and >= 0, got {arrival_rate}")
    if not (aht > 0 and math.isfinite(aht)):
        raise ValueError(f"handle time must be finite and > 0, got {aht}")


def queue_model(agents: int, arrival_rate: float, aht: float, patience: float | None = None) -> QueueModel:
    """Erlang A when a finite mean patience is given, Erlang C otherwise."""
    if patience is None or math.isinf(patience):
        return ErlangC(agents, arrival_rate, aht)
    return ErlangA(agents, arrival_rate, aht, patience)
