"""Voicemail metrics, registered on the engine's registry.

Counters are fed by the store's events (so a deposit counts the same from
a flow or from a test) and by the notifier's results; the usage gauges are
read from the store at scrape time.  No label carries a box number: a box
is often a person (an agent's own box), and DESIGN.md keeps those out of
labels; per-box numbers are in the HTTP API.

======================================================  ====================
``sipacd_voicemail_deposits_total{result}``             deposited, full, too_short
``sipacd_voicemail_notifications_total{channel,result}`` email|webhook x
                                                        sent|failed|gave_up
``sipacd_voicemail_notifications_pending``              outbox rows waiting
``sipacd_voicemail_pin_failures_total{reason}``         wrong_pin, locked
``sipacd_voicemail_lockouts_total``                     boxes locked
``sipacd_voicemail_messages{folder}``                   new, saved (all boxes)
``sipacd_voicemail_audio_bytes``                        message audio on disk
``sipacd_voicemail_mailboxes_full``                     boxes at max_messages
``sipacd_voicemail_mailbox_fill_ratio_max``             fullest box, 0-1
======================================================  ====================
"""
from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from sipagent.metrics import ScrapeGauges, notification_counter

_STORE_EVENTS = {
    "deposited": ("deposits", "deposited"), "full": ("deposits", "full"),
    "too_short": ("deposits", "too_short"), "pin_wrong": ("pin", "wrong_pin"),
    "pin_locked": ("pin", "locked"),
}


class VoicemailMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.deposits = Counter("sipacd_voicemail_deposits", "Voicemail deposits by result",
                                ["result"], registry=registry)
        self.notifications = notification_counter(
            "sipacd_voicemail_notifications",
            "Voicemail notification attempts by channel and result", registry)
        self.pin_failures = Counter("sipacd_voicemail_pin_failures",
                                    "Voicemail logins refused: wrong PIN, or box locked",
                                    ["reason"], registry=registry)
        self.lockouts = Counter("sipacd_voicemail_lockouts",
                                "Mailboxes locked after too many wrong PINs", registry=registry)
        for result in ("deposited", "full", "too_short"):
            self.deposits.labels(result)
        for reason in ("wrong_pin", "locked"):
            self.pin_failures.labels(reason)

    def store_event(self, kind: str) -> None:
        """The store's ``events`` callback."""
        if kind == "lockout":
            self.lockouts.inc()
            return
        family, label = _STORE_EVENTS.get(kind, (None, None))
        if family == "deposits":
            self.deposits.labels(label).inc()
        elif family == "pin":
            self.pin_failures.labels(label).inc()

    def notification(self, channel: str, result: str) -> None:
        """The notifier's ``on_result`` callback."""
        self.notifications.labels(channel, result).inc()

    def watch_usage(self, store: Callable[[], Any]) -> None:
        """Report the usage of ``store()`` (a VoicemailStore, or None before
        the engine started) at each scrape.  Register once per registry."""
        self.registry.register(ScrapeGauges(store, _usage_gauges))


def _usage_gauges(store):
    usage = store.usage()
    messages = GaugeMetricFamily("sipacd_voicemail_messages",
                                 "Voicemail messages stored, all boxes", labels=["folder"])
    for folder, n in sorted(usage["messages"].items()):
        messages.add_metric([folder], n)
    size = GaugeMetricFamily("sipacd_voicemail_audio_bytes",
                             "Bytes of voicemail audio on disk")
    size.add_metric([], usage["bytes"])
    full = GaugeMetricFamily("sipacd_voicemail_mailboxes_full",
                             "Mailboxes at their max_messages")
    full.add_metric([], usage["full"])
    fill = GaugeMetricFamily("sipacd_voicemail_mailbox_fill_ratio_max",
                             "Messages over max_messages of the fullest box")
    fill.add_metric([], usage["fill_max"])
    pending = GaugeMetricFamily("sipacd_voicemail_notifications_pending",
                                "Voicemail notifications waiting to be sent")
    pending.add_metric([], store.outbox.pending())
    yield from (messages, size, full, fill, pending)
