"""What the fax store holds and refuses: documents, fax records, two-call
jobs, and the errors its methods raise (``sipagent/fax/store.py``)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

DOCUMENT_NUMBER = re.compile(r"[0-9]{1,10}")      # what callers key in
FAX_NUMBER = re.compile(r"\+?[0-9]{2,32}")
JOB_STATES = ("queued", "sending", "done", "failed", "cancelled")
_ID = re.compile(r"[0-9a-f]{32}")      # fax and job ids: uuid4 hex


class FaxStoreError(ValueError):
    """Base of the store's refusals; the message is for users and operators."""


class DocumentRejected(FaxStoreError):
    """Not a document, no pages, too many pages, or conversion failed."""


class DocumentExists(FaxStoreError):
    pass


class NoSuchDocument(LookupError):
    pass


class FaxAccessDenied(PermissionError):
    """A protected document, and the PIN is missing, wrong or locked out."""


class NoSuchFax(LookupError):
    pass


class NoSuchJob(LookupError):
    pass


class JobBusy(FaxStoreError):
    """The job is being sent or is finished, so it cannot be changed."""


@dataclasses.dataclass(frozen=True)
class FaxDocument:
    number: str
    title: str
    pages: int
    protected: bool
    path: Path
    size: int
    added: float
    updated: float


@dataclasses.dataclass(frozen=True)
class FaxRecord:
    """One fax transfer, sent or received."""
    id: str
    direction: str                # send | receive
    ok: bool
    status: int                   # spandsp T.30 completion code
    status_text: str
    pages: int
    bit_rate: int
    resolution: str
    ecm: bool
    remote_ident: str
    seconds: float                # line time of the transfer
    call_id: str
    remote: str
    documents: tuple[str, ...]
    job_id: str | None
    tiff: Path | None
    pdf: Path | None
    started: float
    ended: float


@dataclasses.dataclass(frozen=True)
class FaxJob:
    """Two-call fax-on-demand: an outbound fax owed."""
    id: str
    number: str
    documents: tuple[str, ...]
    state: str                    # queued | sending | done | failed | cancelled
    attempts: int
    pages_total: int
    pages_confirmed: int
    next_attempt: float | None
    last_status: str
    call_id: str | None
    created: float
    updated: float
    path: Path


def check_id(value: str, error: type[Exception]) -> None:
    """A fax or job id, checked before it becomes part of a file name."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise error(f"bad id {value!r}")
