"""The two-call dialer's view of its jobs, without SIP: what is overdue
and when delivery is allowed (the calls themselves: test_fax_engine_sip)."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from faxkit import make_document
from ivrflows.schedule import from_dict
from sipagent.fax.dialer import FaxDialer
from sipagent.fax.store import FaxStore

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc).timestamp()
OFFICE = from_dict({"timezone": "UTC", "hours": {"mon-fri": "08:00-18:00"}})


def _dialer(store, schedule=None):
    service = SimpleNamespace(store=store)
    return FaxDialer(service, SimpleNamespace(max_concurrent=1), account=lambda: None,
                     track_leg=lambda leg: None, schedule=schedule)


def test_a_due_job_is_overdue_only_while_delivery_is_allowed(tmp_path):
    doc = make_document(tmp_path / "doc.tif", pages=1, lines=2)
    store = FaxStore(tmp_path / "data", clock=lambda: MONDAY_NOON)
    try:
        store.add_document("101", doc)
        assert _dialer(store, OFFICE).overdue(MONDAY_NOON) == 0.0       # no job yet
        store.create_job("5550123", ["101"], not_before=MONDAY_NOON - 600)
        assert _dialer(store).overdue(MONDAY_NOON) == 600.0
        assert _dialer(store, OFFICE).overdue(MONDAY_NOON) == 600.0
        evening = MONDAY_NOON + 8 * 3600                                # 20:00, closed
        assert not _dialer(store, OFFICE).delivering(evening)
        assert _dialer(store, OFFICE).overdue(evening) == 0.0
        # A retry not yet due is not overdue either.
        job = store.claim_due_job(MONDAY_NOON)
        store.finish_attempt(job.id, pages_confirmed=0, state="queued",
                             next_attempt=MONDAY_NOON + 120, status="busy")
        assert _dialer(store).overdue(MONDAY_NOON) == 0.0
    finally:
        store.close()
