"""Voicemail while the engine runs: the store, its notifier and the
retention sweep, opened together at start and closed together at stop."""
from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from sipagent.store.database import StorePlace
from sipagent.tasks import cancel_and_wait
from sipagent.voicemail.metrics import VoicemailMetrics
from sipagent.voicemail.notify import VoicemailNotifier
from sipagent.voicemail.store import VoicemailStore, keep_retention

log = structlog.get_logger("sipagent.engine")   # its start-up report, as before the move


class VoicemailRuntime:
    def __init__(self, store: VoicemailStore, notifier: VoicemailNotifier,
                 retention: asyncio.Task):
        self.store = store
        self.notifier = notifier
        self._retention = retention

    @classmethod
    async def open(cls, data_dir: StorePlace | Path, settings, mailboxes,
                   metrics: VoicemailMetrics, *, download_base: str) -> VoicemailRuntime:
        """``settings``: the config's [voicemail]; ``mailboxes``: its boxes
        with their settings (``settings.mailboxes(config.mailboxes)``)."""
        # Opening sweeps what a crash left half done (see voicemail_store).
        store = await asyncio.to_thread(
            VoicemailStore, data_dir, mailboxes, pin_attempts=settings.pin_attempts,
            lockout=settings.lockout, events=metrics.store_event)
        if store.strays_removed:
            log.warning("removed half-filed voicemail files of a previous run",
                        count=store.strays_removed)
        notifier = VoicemailNotifier(store, settings, on_result=metrics.notification,
                                     download_base=download_base)
        await notifier.start()
        retention = asyncio.get_running_loop().create_task(keep_retention(store),
                                                           name="vm-retention")
        return cls(store, notifier, retention)

    async def close(self) -> None:
        await cancel_and_wait(self._retention)
        await self.notifier.stop()
        await asyncio.to_thread(self.store.close)
