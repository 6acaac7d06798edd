"""Fax metrics, registered on the engine's registry.

=====================================================  ==========================
``sipacd_fax_total{direction,result}``                 send|receive x ok|failed
``sipacd_fax_pages_total{direction}``                  pages confirmed
``sipacd_fax_seconds{direction}`` (histogram)          line time of one fax
``sipacd_fax_jobs{state}``                             two-call jobs by state
``sipacd_fax_job_overdue_seconds``                     how long the oldest due job
                                                       has waited for its call, while
                                                       delivery is allowed (else 0)
``sipacd_fax_notifications_total{channel,result}``     email|webhook x
                                                       sent|failed|gave_up
``sipacd_fax_t38_rejected_total``                      T.38 offers answered 488
=====================================================  ==========================

``result`` is coarse on purpose (a label per T.30 completion code would be
dozens of mostly empty series); the code and its text are in the fax log.
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from sipagent.fax.records import JOB_STATES
from sipagent.metrics import ScrapeGauges, notification_counter

# A page at 14400 bit/s takes 10-40 s; a fax of many pages, minutes.
_BUCKETS = (15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800)


class FaxMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.faxes = Counter("sipacd_fax", "Faxes by direction and result",
                             ["direction", "result"], registry=registry)
        self.pages = Counter("sipacd_fax_pages", "Fax pages confirmed, by direction",
                             ["direction"], registry=registry)
        self.seconds = Histogram("sipacd_fax_seconds", "Line time of one fax",
                                 ["direction"], buckets=_BUCKETS, registry=registry)
        self.notifications = notification_counter(
            "sipacd_fax_notifications",
            "Received-fax notification attempts by channel and result", registry)
        self.t38_rejected = Counter("sipacd_fax_t38_rejected",
                                    "T.38 offers answered 488 (the call stays on G.711)",
                                    registry=registry)
        for direction in ("send", "receive"):
            self.pages.labels(direction)
            for result in ("ok", "failed"):
                self.faxes.labels(direction, result)

    def fax_done(self, direction: str, result: dict) -> None:
        self.faxes.labels(direction, "ok" if result.get("ok") else "failed").inc()
        self.pages.labels(direction).inc(int(result.get("pages") or 0))
        self.seconds.labels(direction).observe(float(result.get("line_seconds") or 0.0))

    def notification(self, channel: str, result: str) -> None:
        """The notifier's ``on_result`` callback."""
        self.notifications.labels(channel, result).inc()

    def watch_jobs(self, jobs: Callable[[], tuple[dict[str, int], float] | None]) -> None:
        """Report ``jobs()`` at each scrape: (state -> jobs, overdue
        seconds), or None before the engine started.  Register once per
        registry."""
        self.registry.register(ScrapeGauges(jobs, _job_gauges))


def _job_gauges(got: tuple[dict[str, int], float]):
    counts, overdue = got
    jobs = GaugeMetricFamily("sipacd_fax_jobs", "Two-call fax jobs by state",
                             labels=["state"])
    for state in JOB_STATES:
        jobs.add_metric([state], counts.get(state, 0))
    # A gauge of ages, not counts: the dialer claims a due job within
    # seconds, so a job due for long means the dialer is not dialling
    # (or is saturated).  Closed delivery hours are not "overdue".
    late = GaugeMetricFamily("sipacd_fax_job_overdue_seconds",
                             "Seconds the oldest due two-call job has waited for its call "
                             "while delivery is allowed (0: none)")
    late.add_metric([], overdue)
    yield from (jobs, late)
