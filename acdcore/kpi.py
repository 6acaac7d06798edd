"""KPI accumulators: the raw counts behind service level, ASA, AHT, abandonment and occupancy.

These hold counts and sums, never ratios, for two reasons:
* the ratios are derived on demand in every vendor variant (see
  ``service_level``) from the same counts, so the engine stays neutral;
* counts can be added and subtracted, so a sliding window is a ring of
  per-interval tallies: add the newest, subtract the one that fell out.

Waits are compared with ``<=`` against each threshold, the same edge rule as
Prometheus ``le`` buckets, so a report and a PromQL recording rule agree.
Nothing here reads a clock: callers pass waits and timestamps in.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from acdcore.service_level import ServiceLevelVariant, service_level

__all__ = ["WaitTally", "QueueTally", "KpiWindow", "OccupancyMeter"]


class WaitTally:
    """How many calls ended one way (answered, or abandoned), their total
    wait, and how many of them waited at most each threshold."""

    __slots__ = ("thresholds", "count", "wait_sum", "_within")

    def __init__(self, thresholds: Iterable[float]) -> None:
        self.thresholds: tuple[float, ...] = tuple(sorted(set(float(t) for t in thresholds)))
        if any(t < 0 or math.isnan(t) for t in self.thresholds):
            raise ValueError(f"thresholds must be >= 0, got {self.thresholds}")
        self.count = 0
        self.wait_sum = 0.0
        # _within[i] counts waits in (thresholds[i-1], thresholds[i]]; the
        # cumulative view is built on read so each add touches one slot.
        self._within = [0] * len(self.thresholds)

    def add(self, wait: float) -> None:
        self.count += 1
        self.wait_sum += wait
        i = bisect_left(self.thresholds, wait)
        if i < len(self._within):
            self._within[i] += 1

    def add_many(self, waits: Any) -> None:
        """Add an array of waits at once (the simulator's end-of-run path)."""
        w = np.asarray(waits, dtype=np.float64)
        self.count += int(w.size)
        self.wait_sum += float(w.sum())
        if self.thresholds:
            edges = np.searchsorted(np.sort(w), self.thresholds, side="right")
            per_slot = np.diff(edges, prepend=0)
            for i, n in enumerate(per_slot):
                self._within[i] += int(n)

    def within(self, threshold: float) -> int:
        """Calls that waited ≤ threshold; the threshold must be configured."""
        try:
            i = self.thresholds.index(float(threshold))
        except ValueError:
            raise KeyError(
                f"threshold {threshold} s is not configured (have {self.thresholds})"
            ) from None
        return sum(self._within[: i + 1])

    @property
    def mean_wait(self) -> float:
        return self.wait_sum / self.count if self.count else math.nan

    def _check_same(self, other: WaitTally) -> None:
        if other.thresholds != self.thresholds:
            raise ValueError("cannot combine tallies with different thresholds")

    def __iadd__(self, other: WaitTally) -> WaitTally:
        self._check_same(other)
        self.count += other.count
        self.wait_sum += other.wait_sum
        self._within = [a + b for a, b in zip(self._within, other._within)]
        return self

    def __isub__(self, other: WaitTally) -> WaitTally:
        self._check_same(other)
        self.count -= other.count
        self.wait_sum -= other.wait_sum
        self._within = [a - b for a, b in zip(self._within, other._within)]
        return self


class QueueTally:
    """Per-queue counts for one interval (or a whole run).

    ``service_thresholds`` are the SL thresholds configured for the queue;
    ``short_abandon`` is the short-abandon threshold (KPI.md default 5 s).
    """

    __slots__ = ("service_thresholds", "short_abandon", "offered", "answered",
                 "abandoned", "exited", "handled", "talk_sum", "wrap_up_sum")

    def __init__(self, service_thresholds: Iterable[float] = (20.0,), short_abandon: float = 5.0) -> None:
        self.service_thresholds = tuple(sorted(set(float(t) for t in service_thresholds)))
        self.short_abandon = float(short_abandon)
        edges = (*self.service_thresholds, self.short_abandon)
        self.offered = 0
        self.answered = WaitTally(edges)
        self.abandoned = WaitTally(edges)
        self.exited: Counter[str] = Counter()
        self.handled = 0
        self.talk_sum = 0.0
        self.wrap_up_sum = 0.0

    # -- recording -----------------------------------------------------
    def call_offered(self) -> None:
        self.offered += 1

    def call_answered(self, wait: float) -> None:
        self.answered.add(wait)

    def call_abandoned(self, wait: float) -> None:
        self.abandoned.add(wait)

    def call_exited(self, reason: str) -> None:
        """Timeout, queue full, no agents, exit key, voicemail, callback..."""
        self.exited[reason] += 1

    def call_handled(self, talk: float, wrap_up: float = 0.0) -> None:
        """An answered call finished its talk (incl. hold) and wrap-up."""
        self.handled += 1
        self.talk_sum += talk
        self.wrap_up_sum += wrap_up

    # -- derived KPIs --------------------------------------------------
    @property
    def short_abandoned(self) -> int:
        return self.abandoned.within(self.short_abandon)

    def service_level(self, threshold: float,
                      variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED) -> float:
        return service_level(
            variant,
            answered=self.answered.count,
            answered_within=self.answered.within(threshold),
            abandoned=self.abandoned.count,
            abandoned_within=self.abandoned.within(threshold),
            short_abandoned=self.short_abandoned,
        )

    @property
    def asa(self) -> float:
        """True mean wait of answered calls (not Asterisk's moving average)."""
        return self.answered.mean_wait

    @property
    def aht(self) -> float:
        """Talk + hold + wrap-up per handled call."""
        return (self.talk_sum + self.wrap_up_sum) / self.handled if self.handled else math.nan

    @property
    def answer_rate(self) -> float:
        return self.answered.count / self.offered if self.offered else math.nan

    def abandon_rate(self, exclude_short: bool = False) -> float:
        short = self.short_abandoned if exclude_short else 0
        den = self.offered - short
        return (self.abandoned.count - short) / den if den > 0 else math.nan

    def summary(self) -> dict[str, Any]:
        """A JSON-ready snapshot: raw counts and every derived variant."""
        sl = {
            f"{t:g}": {v.value: self.service_level(t, v) for v in ServiceLevelVariant}
            for t in self.service_thresholds
        }
        return {
            "offered": self.offered,
            "answered": self.answered.count,
            "abandoned": self.abandoned.count,
            "short_abandoned": self.short_abandoned,
            "exited": dict(self.exited),
            "service_level": sl,
            "asa": self.asa,
            "mean_abandon_wait": self.abandoned.mean_wait,
            "abandon_rate": self.abandon_rate(),
            "abandon_rate_excluding_short": self.abandon_rate(exclude_short=True),
            "answer_rate": self.answer_rate,
            "aht": self.aht,
        }

    def __iadd__(self, other: QueueTally) -> QueueTally:
        self._combine(other, 1)
        return self

    def __isub__(self, other: QueueTally) -> QueueTally:
        self._combine(other, -1)
        return self

    def _combine(self, other: QueueTally, sign: int) -> None:
        if (other.service_thresholds, other.short_abandon) != (self.service_thresholds, self.short_abandon):
            raise ValueError("cannot combine tallies with different thresholds")
        self.offered += sign * other.offered
        if sign > 0:
            self.answered += other.answered
            self.abandoned += other.abandoned
            self.exited.update(other.exited)
        else:
            self.answered -= other.answered
            self.abandoned -= other.abandoned
            self.exited.subtract(other.exited)
        self.handled += sign * other.handled
        self.talk_sum += sign * other.talk_sum
        self.wrap_up_sum += sign * other.wrap_up_sum


class KpiWindow:
    """A queue's KPIs over the last ``span`` seconds, for live gauges.

    A ring of per-slot tallies: record into ``at(t)``, read ``total(t)``.
    Slots older than the span fall out whole, so the window moves in steps
    of ``span / slots`` (the price of O(1) recording; 15 one-minute slots
    give a 15-minute SL that is at most a minute stale at its trailing edge).
    """

    __slots__ = ("span", "width", "n_slots", "service_thresholds", "short_abandon", "_slots")

    def __init__(self, span: float = 900.0, slots: int = 15,
                 service_thresholds: Iterable[float] = (20.0,), short_abandon: float = 5.0) -> None:
        if span <= 0 or slots < 1:
            raise ValueError(f"need span > 0 and slots >= 1, got {span}, {slots}")
        self.span = float(span)
        self.n_slots = int(slots)
        self.width = self.span / self.n_slots
        self.service_thresholds = tuple(service_thresholds)
        self.short_abandon = short_abandon
        self._slots: deque[tuple[int, QueueTally]] = deque()

    def _new(self) -> QueueTally:
        return QueueTally(self.service_thresholds, self.short_abandon)

    def _expire(self, k: int) -> None:
        while self._slots and self._slots[0][0] <= k - self.n_slots:
            self._slots.popleft()

    def at(self, t: float) -> QueueTally:
        """The tally to record an event at time t into."""
        k = math.floor(t / self.width)
        if self._slots and k <= self._slots[-1][0]:
            # Same slot, or a timestamp a little in the past (clock jitter
            # between threads): it still belongs to the newest slot.
            return self._slots[-1][1]
        self._expire(k)
        tally = self._new()
        self._slots.append((k, tally))
        return tally

    def total(self, t: float) -> QueueTally:
        """A fresh tally summing the slots still inside the window at time t."""
        self._expire(math.floor(t / self.width))
        out = self._new()
        for _, tally in self._slots:
            out += tally
        return out


class OccupancyMeter:
    """Time-integrates how many agents are busy (on a call or in wrap-up)
    and how many are idle and available.

    Occupancy = busy time / (busy + idle time); paused and logged-out time
    count in neither, so agents in those states are simply not reported.
    Callers report changes in the two head-counts at event timestamps; each
    change is O(1), which matters with 10,000 agents.
    """

    __slots__ = ("busy", "idle", "busy_time", "idle_time", "_last")

    def __init__(self, t0: float = 0.0) -> None:
        self.busy = 0
        self.idle = 0
        self.busy_time = 0.0
        self.idle_time = 0.0
        self._last = t0

    def advance(self, t: float) -> None:
        dt = t - self._last
        if dt < 0:
            raise ValueError(f"time went backwards: {t} < {self._last}")
        self.busy_time += self.busy * dt
        self.idle_time += self.idle * dt
        self._last = t

    def change(self, t: float, busy: int = 0, idle: int = 0) -> None:
        """At time t, ``busy`` more agents became busy and ``idle`` more idle (negative: fewer)."""
        self.advance(t)
        self.busy += busy
        self.idle += idle
        if self.busy < 0 or self.idle < 0:
            raise ValueError(f"negative head-count: busy={self.busy} idle={self.idle}")

    @property
    def occupancy(self) -> float:
        total = self.busy_time + self.idle_time
        return self.busy_time / total if total > 0 else math.nan
