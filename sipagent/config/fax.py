"""The ``[fax]`` section of the config.

::

    [fax]
    ident = "SIPACD"                 # our fax station id (TSI/CSI), at most 20 characters
    header = "ACME Corp"             # printed atop each page we send; unset: none
    ecm = true                       # offer error correction mode
    v17 = true                       # allow V.17 (14400 bit/s); false: V.29/V.27ter only
    paper = "a4"                     # page size documents are rendered to: a4 | letter
    max_pages = 50                   # the most pages a library document may have
    timeout = 900                    # seconds one fax may take before it is cut
    jitter_ms = 240                  # fixed jitter-buffer prefetch of fax calls
    # Two-call fax-on-demand: how to dial a fax number (unset: two-call is off).
    dial = "sip:{number}@pbx.example.com"
    delivery_schedule = "office"     # a [schedules] entry; unset: any time
    max_attempts = 4                 # calls per job before it is marked failed
    retry_base = 120                 # seconds before the first retry, doubling...
    retry_max = 3600                 # ...up to this
    max_concurrent = 2               # outbound fax calls at once
    ring_timeout = 60                # seconds an outbound fax call may ring
    # Received faxes (the PDF is attached to the mail; SMTP as in [voicemail]).
    receive_email = ["faxes@example.com"]
    receive_webhook = "https://crm.example.com/hooks/fax"

A route carries fax from its first packet with ``fax = true`` (its own
jitter-buffer settings, fixed when the call's media is created).
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.config.values import Email, NonEmptyStr, PositiveSeconds, Section, Url, as_tuple

_IDENT = re.compile(r"[ -~]{1,20}")
DIAL_PATTERN = r"^sips?:.*\{number\}.*@"


def _check_ident(value: str) -> str:
    if not _IDENT.fullmatch(value):
        raise ValueError("a fax station id is 1 to 20 printable ASCII characters")
    return value


class FaxSection(Section):
    ident: Annotated[str, AfterValidator(_check_ident)] = "SIPACD"
    header: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    ecm: bool = True
    v17: bool = True
    paper: Literal["a4", "letter"] = "a4"
    max_pages: Annotated[int, Field(ge=1, le=1000)] = 50
    timeout: PositiveSeconds = 900.0
    jitter_ms: Annotated[int, Field(ge=40, le=1000)] = 240
    dial: Annotated[str, Field(pattern=DIAL_PATTERN)] | None = None
    delivery_schedule: NonEmptyStr | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 4
    retry_base: PositiveSeconds = 120.0
    retry_max: PositiveSeconds = 3600.0
    max_concurrent: Annotated[int, Field(ge=1, le=100)] = 2
    ring_timeout: PositiveSeconds = 60.0
    receive_email: Annotated[tuple[Email, ...], BeforeValidator(as_tuple)] = ()
    receive_webhook: Url | None = None


def fax_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    fax = config.fax
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if fax.delivery_schedule and fax.delivery_schedule not in config.schedules:
        problems.append((("fax", "delivery_schedule"),
                         f"unknown schedule {fax.delivery_schedule!r} "
                         f"(defined schedules: {', '.join(config.schedules) or 'none'})"))
    if fax.receive_email and not config.voicemail.smtp_host:
        problems.append((("fax", "receive_email"), "needs voicemail.smtp_host to send through"))
    if fax.retry_base > fax.retry_max:
        problems.append((("fax", "retry_base"), f"longer than retry_max ({fax.retry_max:g})"))
    return problems
