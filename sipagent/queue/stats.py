"""Counting a queue's outcomes once, for every consumer at the same moment.

Each outcome updates the Prometheus counters (what PromQL recording rules
derive KPIs from), the in-engine sliding windows (what a wallboard shows
without PromQL) and the durable event log (what ``sipacd report`` derives
the same KPIs from), with the same wait value, so the three agree.  Agent time-in-state is sampled once a second from the ACD
core's per-queue head-counts: O(queues) a second instead of a hook on every
agent transition, and accurate to a second, which is what occupancy needs.
"""
from __future__ import annotations

import math
from collections import deque

from acdcore.kpi import KpiWindow
from acdcore.service_level import ServiceLevelVariant
from sipagent.metrics import EngineMetrics

WINDOWS = (("15m", 900.0), ("1h", 3600.0))
SLOTS = 15
BUSY_STATES = ("busy", "wrap_up")
IDLE_STATES = ("available", "offered")


class _StateWindow:
    """Busy and idle agent-seconds in per-slot buckets over a span."""

    def __init__(self, span: float):
        self.width = span / SLOTS
        self.slots: deque[list] = deque()   # [slot index, busy, idle]

    def add(self, t: float, busy: float, idle: float) -> None:
        k = math.floor(t / self.width)
        if not self.slots or self.slots[-1][0] < k:
            self.slots.append([k, 0.0, 0.0])
        while self.slots and self.slots[0][0] <= k - SLOTS:
            self.slots.popleft()
        self.slots[-1][1] += busy
        self.slots[-1][2] += idle

    def occupancy(self, t: float) -> float:
        k = math.floor(t / self.width)
        busy = sum(s[1] for s in self.slots if s[0] > k - SLOTS)
        idle = sum(s[2] for s in self.slots if s[0] > k - SLOTS)
        return busy / (busy + idle) if busy + idle > 0 else math.nan


class QueueStats:
    def __init__(self, queues: dict, metrics: EngineMetrics, eventlog=None):
        """``queues``: name -> config section (service_levels, short_abandon)."""
        self.metrics = metrics
        self.log = eventlog
        self.short_abandon = {q: s.short_abandon for q, s in queues.items()}
        self.thresholds = {q: tuple(s.service_levels) for q, s in queues.items()}
        self.windows = {
            q: {name: KpiWindow(span, SLOTS, s.service_levels, s.short_abandon)
                for name, span in WINDOWS}
            for q, s in queues.items()}
        self.state_windows = {q: {name: _StateWindow(span) for name, span in WINDOWS}
                              for q in queues}
        self._last_sample: float | None = None

    def _tallies(self, queue: str, t: float):
        return [w.at(t) for w in self.windows[queue].values()]

    def offered(self, queue: str, t: float, call_id: str, position: int | None = None,
                priority: int = 0) -> None:
        self.metrics.offered.labels(queue).inc()
        for tally in self._tallies(queue, t):
            tally.call_offered()
        if self.log:
            self.log.queue_event(t, queue, call_id, "ENTER", position=position,
                                 data={"priority": priority})

    def answered(self, queue: str, t: float, wait: float, call_id: str, agent: str) -> None:
        self.metrics.answered.labels(queue).inc()
        self.metrics.answer_wait.labels(queue).observe(wait)
        for tally in self._tallies(queue, t):
            tally.call_answered(wait)
        if self.log:
            self.log.queue_event(t, queue, call_id, "CONNECT", agent=agent, wait=wait)
            self.log.call_record(call_id, answer=t, queue=queue, agent=agent, wait=wait,
                                 outcome="answered")

    def abandoned(self, queue: str, t: float, wait: float, call_id: str,
                  position: int | None = None) -> None:
        self.metrics.abandoned.labels(queue).inc()
        self.metrics.abandon_wait.labels(queue).observe(wait)
        if wait <= self.short_abandon[queue]:
            self.metrics.short_abandoned.labels(queue).inc()
        for tally in self._tallies(queue, t):
            tally.call_abandoned(wait)
        if self.log:
            self.log.queue_event(t, queue, call_id, "ABANDON", wait=wait, position=position)
            self.log.call_record(call_id, queue=queue, wait=wait, outcome="abandoned",
                                 hangup_side="caller")

    def exited(self, queue: str, t: float, reason: str, call_id: str, wait: float) -> None:
        self.metrics.exited.labels(queue, reason).inc()
        for tally in self._tallies(queue, t):
            tally.call_exited(reason)
        if self.log:
            self.log.queue_event(t, queue, call_id, "EXIT", reason=reason, wait=wait)
            self.log.call_record(call_id, queue=queue, wait=wait, outcome=reason)

    def handled(self, queue: str, t: float, talk: float, wrap_up: float, call_id: str,
                agent: str, side: str, *, hold: float = 0.0,
                transfer: dict | None = None) -> None:
        """The agent's talk is over (``side`` hung up first, or ``transfer``:
        the agent handed the caller on, ``transfer`` says how and where);
        wrap-up starts now.  ``talk`` is connected time, ``hold`` included
        (KPI.md: AHT = talk + hold + wrap-up, hold being part of the call)."""
        self.metrics.talk_seconds.labels(queue).inc(talk)
        self.metrics.wrap_up_seconds.labels(queue).inc(wrap_up)
        self.metrics.handle_time.labels(queue).observe(talk + wrap_up)
        for tally in self._tallies(queue, t):
            tally.call_handled(talk, wrap_up)
        if self.log:
            if transfer is not None:
                self.log.queue_event(t, queue, call_id, "TRANSFER", agent=agent,
                                     reason=transfer["mode"], data=transfer)
            else:
                kind = "COMPLETE_CALLER" if side == "caller" else "COMPLETE_AGENT"
                self.log.queue_event(t, queue, call_id, kind, agent=agent,
                                     data={"hold": round(hold, 3)} if hold else None)
            self.log.call_record(call_id, talk=talk, wrap_up=wrap_up, hangup_side=side)
        self.wrap_up_started(t, agent, queue, call_id, wrap_up)

    def hold(self, queue: str, t: float, call_id: str, agent: str, held: bool,
             seconds: float = 0.0) -> None:
        """The caller was put on hold, or taken off it after ``seconds``."""
        if held:
            self.metrics.holds.labels(queue).inc()
        else:
            self.metrics.hold_seconds.labels(queue).inc(seconds)
        if self.log:
            self.log.queue_event(t, queue, call_id, "HOLD" if held else "UNHOLD", agent=agent,
                                 wait=None if held else seconds)

    def transfer_result(self, queue: str, t: float, call_id: str, agent: str, mode: str,
                        target_kind: str, result: str) -> None:
        """How a transfer ended: ``done`` (the target took the caller) or why not."""
        self.metrics.transfers.labels(mode, target_kind, result).inc()
        if self.log and result != "done":
            self.log.queue_event(t, queue, call_id, "TRANSFER_FAILED", agent=agent,
                                 reason=result)

    def recording(self, queue: str, t: float, call_id: str, agent: str, kind: str,
                  recording_id: str, trigger: str | None = None,
                  seconds: float | None = None) -> None:
        """RECORDING_START (``trigger``: policy or demand), _PAUSE, _RESUME, _STOP."""
        if kind == "RECORDING_START":
            self.metrics.recordings.labels(queue, trigger or "").inc()
        elif kind == "RECORDING_STOP" and seconds:
            self.metrics.recording_seconds.labels(queue).inc(seconds)
        if self.log:
            self.log.queue_event(t, queue, call_id, kind, agent=agent, reason=trigger,
                                 wait=seconds, data={"recording": recording_id})

    def monitor(self, queue: str, t: float, call_id: str, agent: str, kind: str,
                supervisor: str, mode: str | None, seconds: float | None = None, *,
                via: str | None = None) -> None:
        """A supervisor's session on ``agent``'s call: MONITOR_START, _MODE, _END
        (``via``: how it came, "api" or "keypad")."""
        if kind == "MONITOR_START":
            self.metrics.monitor_sessions.labels(mode or "").inc()
        if self.log:
            self.log.queue_event(t, queue, call_id, kind, agent=agent, reason=mode,
                                 wait=seconds,
                                 data={"supervisor": supervisor, **({"via": via} if via else {})})

    def wrap_up_started(self, t: float, agent: str, queue: str, call_id: str,
                        wrap_up: float) -> None:
        """The ACD put the agent in wrap-up after ``call_id``; a zero wrap-up
        is over at once (the ACD then sends no WrapUpEnded to log its end)."""
        if self.log:
            self.log.agent_event(t, agent, "WRAPUP_START", queue=queue, call_id=call_id)
            if wrap_up <= 0:
                self.log.agent_event(t, agent, "WRAPUP_END", queue=queue, call_id=call_id)

    def record(self, call_id: str, **fields) -> None:
        """Fill in the call's record (``EventLog.call_record``) with no KPI counted."""
        if self.log:
            self.log.call_record(call_id, **fields)

    def offer(self, queue: str, t: float, call_id: str, agent: str) -> None:
        if self.log:
            self.log.queue_event(t, queue, call_id, "OFFER", agent=agent)

    def offer_lost(self, queue: str, t: float, call_id: str, agent: str, reason: str) -> None:
        self.metrics.offers.labels(queue, reason).inc()
        if self.log:
            self.log.queue_event(t, queue, call_id, "RINGNOANSWER", agent=agent, reason=reason)

    def callback(self, queue: str, t: float, call_id: str, result: str,
                 agent: str | None = None) -> None:
        """result: requested, attempted, no_answer, connected, failed, expired."""
        self.metrics.callbacks.labels(queue, result).inc()
        kind = {"requested": "CALLBACK_REQUESTED", "attempted": "CALLBACK_ATTEMPT",
                "no_answer": "CALLBACK_NO_ANSWER", "connected": "CALLBACK_CONNECTED"}.get(result)
        if self.log and kind:
            self.log.queue_event(t, queue, call_id, kind, agent=agent)

    def agent(self, t: float, agent: str, kind: str, reason: str | None = None) -> None:
        """LOGIN, LOGOUT, READY, PAUSE, UNPAUSE, WRAPUP_END."""
        if self.log:
            self.log.agent_event(t, agent, kind, reason=reason)

    def sample_agents(self, t: float, by_queue: dict[str, dict[str, int]]) -> None:
        """Called about once a second with the ACD's head-counts."""
        dt = 0.0 if self._last_sample is None else min(5.0, t - self._last_sample)
        self._last_sample = t
        if dt <= 0:
            return
        for queue, states in by_queue.items():
            for state, n in states.items():
                if n:
                    self.metrics.agent_seconds.labels(queue, state).inc(n * dt)
            busy = sum(states.get(s, 0) for s in BUSY_STATES) * dt
            idle = sum(states.get(s, 0) for s in IDLE_STATES) * dt
            for w in self.state_windows[queue].values():
                w.add(t, busy, idle)

    def window_gauges(self, t: float):
        """(queue, window, kpi, extra labels, value) rows for the live gauges."""
        for queue, windows in self.windows.items():
            for name, window in windows.items():
                tally = window.total(t)
                for threshold in self.thresholds[queue]:
                    for variant in ServiceLevelVariant:
                        yield (queue, name, "service_level",
                               {"threshold": f"{threshold:g}", "variant": variant.value},
                               tally.service_level(threshold, variant))
                yield queue, name, "abandon_rate", {}, tally.abandon_rate()
                yield queue, name, "asa_seconds", {}, tally.asa
                yield queue, name, "aht_seconds", {}, tally.aht
                yield (queue, name, "occupancy", {},
                       self.state_windows[queue][name].occupancy(t))
