"""The staffing what-if's data: one queue's logged day read from the event
log into ``acdcore.whatif.DayCalls``, replayed with N agents, and set
beside what happened, interval by interval (see acdcore/whatif.py for
the model and what it cannot know).

Per call (an ENTER into the queue that day): its arrival, its outcome
(CONNECT, ABANDON, or EXIT with a reason: ``timeout``, ``full``, ``empty``
and restarts are the queue's doing, every other reason the caller's), its
wait, and for an answered call its talk (CONNECT to COMPLETE_* or the
agent's TRANSFER) plus the wrap-up that followed (WRAPUP_START to the
agent's WRAPUP_END, READY, PAUSE or LOGOUT).  A call that entered the queue
twice (transferred back into it) counts twice, as in the report.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acdcore.kpi import QueueTally
from acdcore.service_level import ServiceLevelVariant
from acdcore.whatif import (ABANDONED, ANSWERED, LEFT, TIMED_OUT, DayCalls, interval_tallies,
                            predict)
from sipagent.store.day_counters import kpi_figures
from sipagent.store.eventlog import read_only
from sipagent.store.intervals import ReportLimit, Span

__all__ = ["MAX_CALLS", "read_day", "whatif"]

#: A day with more calls than this is refused (benchmarks/console_reports.py: a
#: 5000-call day replays in ~70 ms, log reading included).
MAX_CALLS = 50_000
# Calls of the day still talking or in wrap-up after midnight: read on a little.
_SPILL = 4 * 3600.0
_QUEUE_SIDE = ("SELECT t, kind, call_id, agent, wait, reason FROM event"
               " WHERE t >= ? AND t < ? AND queue = ? AND kind IN ('ENTER', 'OFFER', 'CONNECT',"
               " 'ABANDON', 'EXIT', 'COMPLETE_CALLER', 'COMPLETE_AGENT', 'TRANSFER')"
               " ORDER BY t, id")
_AGENT_SIDE = ("SELECT t, kind, call_id, agent FROM event WHERE t >= ? AND t < ? AND kind IN"
               " ('WRAPUP_START', 'WRAPUP_END', 'READY', 'UNPAUSE', 'PAUSE', 'LOGOUT', 'LOGIN')"
               " ORDER BY t, id")
_COUNT = "SELECT COUNT(*) FROM event WHERE t >= ? AND t < ? AND queue = ? AND kind = 'ENTER'"
_SYSTEM_EXITS = {"timeout", "full", "empty", "shutdown", "engine_restart"}


def read_day(db: str | Path, queue: str, t_from: float, t_to: float, *,
             max_wait: float = 0.0, max_calls: int | None = None) -> DayCalls:
    max_calls = MAX_CALLS if max_calls is None else max_calls
    conn = read_only(db)
    try:
        n = conn.execute(_COUNT, (t_from, t_to, queue)).fetchone()[0]
        if n > max_calls:
            raise ReportLimit("date", f"queue {queue!r} has {n} calls that day, more than the "
                                      f"{max_calls} a what-if replays")
        rows = conn.execute(_QUEUE_SIDE, (t_from, t_to + _SPILL, queue)).fetchall()
        agent_rows = conn.execute(_AGENT_SIDE, (t_from, t_to + _SPILL)).fetchall()
    finally:
        conn.close()
    calls: list[dict[str, Any]] = []
    open_call: dict[str, dict[str, Any]] = {}     # call_id -> its latest ENTER into the queue
    talking: dict[str, dict[str, Any]] = {}       # call_id -> the call while connected
    rings: list[float] = []
    for t, kind, call_id, agent, wait, reason in rows:
        if kind == "ENTER":
            if t < t_to:
                call = {"t": t, "call_id": call_id, "outcome": None, "wait": 0.0,
                        "talk": math.nan, "wrap": 0.0}
                calls.append(call)
                open_call[call_id] = call
            continue
        call = open_call.get(call_id)
        if call is None:
            continue
        if kind == "OFFER":
            call["offer_t"] = t
        elif kind == "CONNECT" and call["outcome"] is None:
            call.update(outcome=ANSWERED, wait=wait or 0.0, connect_t=t, agent=agent)
            if "offer_t" in call:
                rings.append(t - call["offer_t"])
            talking[call_id] = call
        elif kind in ("ABANDON", "EXIT") and call["outcome"] is None:
            code = ABANDONED if kind == "ABANDON" else \
                TIMED_OUT if (reason or "") in _SYSTEM_EXITS else LEFT
            call.update(outcome=code, wait=wait or 0.0)
            del open_call[call_id]
        elif kind in ("COMPLETE_CALLER", "COMPLETE_AGENT", "TRANSFER") and call_id in talking:
            call = talking.pop(call_id)
            call["talk"] = max(0.0, t - call["connect_t"])
            call["end_t"] = t
            del open_call[call_id]
    _wrap_ups(calls, agent_rows)
    kept = [c for c in calls if c["outcome"] is not None]
    arrival = np.array([c["t"] - t_from for c in kept], dtype=np.float64)
    outcome = np.array([c["outcome"] for c in kept], dtype=np.int8)
    wait = np.array([c["wait"] for c in kept], dtype=np.float64)
    handle = np.array([c["talk"] + c["wrap"] for c in kept], dtype=np.float64)
    ring = float(np.median(rings)) if rings else 0.0
    return DayCalls(arrival, outcome, wait, handle, ring=ring, max_wait=max_wait)


def _wrap_ups(calls: list[dict[str, Any]], agent_rows: Sequence[tuple]) -> None:
    """Each answered call's wrap-up: from its WRAPUP_START to the agent's next
    event that ends a wrap-up."""
    by_call = {}
    for c in calls:
        if c["outcome"] == ANSWERED and "end_t" in c:
            by_call[(c["call_id"], round(c["end_t"], 3))] = c
    started: dict[str, tuple[float, dict[str, Any]]] = {}
    for t, kind, call_id, agent in agent_rows:
        if kind == "WRAPUP_START":
            call = by_call.get((call_id, round(t, 3)))
            if call is not None:
                started[agent] = (t, call)
        elif agent in started:
            t0, call = started.pop(agent)
            call["wrap"] = max(0.0, t - t0)


def whatif(db: str | Path, span: Span, queue: str, agents: int, *, seed: int = 0,
           thresholds: tuple[float, ...] = (20.0,), short_abandon: float = 5.0,
           max_wait: float = 0.0, strategy: str = "longest_idle",
           max_calls: int | None = None) -> dict[str, Any]:
    """The what-if's answer: per interval of ``span`` (one day), the actual
    and the predicted SL (offered variant at the queue's first threshold)
    and abandon rate, and the day's totals."""
    day = read_day(db, queue, span.t_from, span.t_to, max_wait=max_wait, max_calls=max_calls)
    guess = predict(day, agents, seed=seed, strategy=strategy)
    edges = [s - span.t_from for s in [*span.starts, span.t_to]]
    threshold = min(thresholds)
    actual = interval_tallies(day.arrival, day.outcome, day.wait, edges, thresholds,
                              short_abandon)
    predicted = interval_tallies(day.arrival, guess.outcome, guess.wait, edges, thresholds,
                                 short_abandon)

    def brief(tally, full: bool) -> dict[str, Any]:
        k = kpi_figures(tally)
        out = {"sl": k["service_level"][f"{ServiceLevelVariant.OFFERED.value}:{threshold:g}"],
               "abandon_rate": k["abandon_rate"], "answered": k["answered"],
               "abandoned": k["abandoned"], "asa": k["asa"], "service_level": k["service_level"]}
        if full:
            out["offered"] = k["offered"]
        return out

    rows = [{"start": span.iso(s), "end": span.iso(e), "start_epoch": s, "end_epoch": e,
             "actual": brief(a, True), "predicted": brief(p, False)}
            for s, e, a, p in zip(span.starts, span.ends(), actual, predicted)]
    total_a, total_p = QueueTally(thresholds, short_abandon), QueueTally(thresholds, short_abandon)
    for a, p in zip(actual, predicted):
        total_a += a
        total_p += p
    return {"queue": queue, "date": span.iso(span.t_from)[:10], "agents": agents, "seed": seed,
            "sl_threshold": threshold, "sl_variant": ServiceLevelVariant.OFFERED.value,
            "calls": int(day.arrival.size), "ring_seconds": day.ring,
            "mean_patience": None if math.isinf(guess.mean_patience) else guess.mean_patience,
            "engine": guess.engine, "intervals": rows,
            "total": {"actual": brief(total_a, True), "predicted": brief(total_p, False)}}
