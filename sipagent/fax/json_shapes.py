"""Fax documents, jobs and records as JSON, the same for the HTTP API and
the received-fax webhook.  Times are ISO 8601 in UTC."""
from __future__ import annotations

from datetime import datetime, timezone

from sipagent.fax.records import FaxDocument, FaxJob, FaxRecord


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def document_json(d: FaxDocument) -> dict:
    return {"number": d.number, "title": d.title, "pages": d.pages, "protected": d.protected,
            "size": d.size, "added": _iso(d.added), "updated": _iso(d.updated)}


def job_json(j: FaxJob) -> dict:
    return {"id": j.id, "number": j.number, "documents": list(j.documents), "state": j.state,
            "attempts": j.attempts, "pages_total": j.pages_total,
            "pages_confirmed": j.pages_confirmed, "next_attempt": _iso(j.next_attempt),
            "last_status": j.last_status, "call_id": j.call_id, "created": _iso(j.created),
            "updated": _iso(j.updated)}


def fax_json(f: FaxRecord, *, base: str = "") -> dict:
    """The record as the outside world sees it: links, never paths on our
    disk.  ``base`` prefixes the links (a webhook needs absolute URLs)."""
    log = f"{base}/api/fax/log/{f.id}"
    return {"id": f.id, "direction": f.direction, "ok": f.ok, "status": f.status,
            "status_text": f.status_text, "pages": f.pages, "bit_rate": f.bit_rate,
            "resolution": f.resolution, "ecm": f.ecm, "remote_ident": f.remote_ident,
            "seconds": f.seconds, "call_id": f.call_id, "remote": f.remote,
            "documents": list(f.documents), "job_id": f.job_id,
            "tiff": f"{log}/tiff" if f.tiff else None, "pdf": f"{log}/pdf" if f.pdf else None,
            "started": _iso(f.started), "ended": _iso(f.ended)}
