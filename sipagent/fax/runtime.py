"""Fax while the engine runs: the store, its notifier, the service calls
send and receive through, and the two-call dialer when configured; opened
together at start and closed together at stop (the engine starts, halts and
stops the dialer itself, around the calls)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable, Mapping

import structlog

from sipagent.fax.dialer import FaxDialer
from sipagent.fax.metrics import FaxMetrics
from sipagent.fax.notify import FaxNotifier
from sipagent.fax.service import FaxService
from sipagent.fax.store import FaxStore
from sipagent.store.database import StorePlace, as_place

log = structlog.get_logger("sipagent.engine")   # its start-up report, as before the move


class FaxRuntime:
    def __init__(self, store: FaxStore, notifier: FaxNotifier, service: FaxService):
        self.store = store
        self.notifier = notifier
        self.service = service

    @classmethod
    async def open(cls, data_dir: StorePlace | Path, settings, notify_settings,
                   metrics: FaxMetrics, *, download_base: str, account: Callable[[], object],
                   track_leg: Callable[[object], None], schedules: Mapping) -> FaxRuntime:
        """``settings``: the config's [fax]; ``notify_settings``: its
        [voicemail] (mail and webhooks go out the same way)."""
        # Opening sweeps half-written files and requeues jobs a crash cut short.
        store = await asyncio.to_thread(FaxStore, data_dir, max_pages=settings.max_pages,
                                        paper=settings.paper)
        if store.strays_removed or store.jobs_resumed:
            log.warning("fax store recovered from a previous run",
                        strays_removed=store.strays_removed, jobs_resumed=store.jobs_resumed)
        notifier = FaxNotifier(store, notify_settings, on_result=metrics.notification,
                               download_base=download_base)
        await notifier.start()
        service = FaxService(store, settings, metrics, data_dir=as_place(data_dir).dir,
                             wake_notifier=notifier.wake)
        if settings.dial:
            schedule = schedules[settings.delivery_schedule] if settings.delivery_schedule \
                else None
            service.dialer = FaxDialer(service, settings, account=account, track_leg=track_leg,
                                       schedule=schedule)
        return cls(store, notifier, service)

    @property
    def dialer(self) -> FaxDialer | None:
        return self.service.dialer

    def job_gauges(self) -> tuple[dict[str, int], float]:
        """(state -> jobs, overdue seconds) for the fax job metrics."""
        dialer = self.service.dialer
        return self.store.job_counts(), dialer.overdue(time.time()) if dialer else 0.0

    async def close(self) -> None:
        await self.notifier.stop()
        await asyncio.to_thread(self.store.close)
