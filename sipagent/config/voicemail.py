"""The ``[voicemail]`` and ``[mailboxes.<number>]`` sections of the config.

::

    [voicemail]
    smtp_host = "mail.example.com"
    smtp_port = 587
    smtp_starttls = true
    smtp_user = "sipacd"
    smtp_password = "..."
    smtp_from = "voicemail@example.com"
    public_url = "https://acd.example.com"     # download links in webhooks
    pin_attempts = 3                            # wrong PINs in a row before...
    lockout = 900                               # ...the box is locked (seconds)

    [mailboxes.200]
    owner = "agent:alice"                      # or "queue:support", "person:Front desk"
    pin = "4711"                               # hashed at load; or a "scrypt$..." hash
    email = ["alice@example.com"]
    webhook = "https://crm.example.com/hooks/voicemail"
    max_len = 120                              # seconds; unset: [voicemail] max_len
    min_len = 2
    max_messages = 50
    retention_days = 30

A clear PIN never outlives validation: the model keeps only its scrypt
hash.  A PIN the owner changes by phone or API is kept over this one
(see :class:`sipagent.voicemail.store.VoicemailStore`); an API change of
the other settings is kept over the file too.
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (AfterValidator, BeforeValidator, Field,
                      ValidationInfo, field_validator)

from sipagent.config.values import (Email, NotifySettings, PositiveSeconds, Seconds, Section,
                                     Url, as_tuple, check_owner)
from sipagent.store.pin import PIN_PATTERN, hash_pin, is_pin_hash
from sipagent.voicemail.store import Mailbox

BOX_NUMBER = re.compile(r"[0-9A-Za-z+_-]{1,40}")


def _pin_to_hash(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)      # pin = 4711 unquoted: a type error would print the PIN
    if not isinstance(value, str) or is_pin_hash(value):
        return value
    if not PIN_PATTERN.fullmatch(value):
        # The message must not echo the value: it may be a real PIN mistyped.
        raise ValueError("a PIN is 4 to 12 digits (or a 'scrypt$...' hash)")
    return hash_pin(value)


def _must_be_hash(value: str) -> str:
    if not is_pin_hash(value):
        raise ValueError("a PIN is 4 to 12 digits (or a 'scrypt$...' hash)")
    return value


PinHash = Annotated[str, BeforeValidator(_pin_to_hash), AfterValidator(_must_be_hash)]


class VoicemailSection(NotifySettings):
    # The notification settings (smtp_*, webhook_timeout, public_url,
    # notify_attempts, retry_*) come from NotifySettings; the mailboxes':
    pin_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    lockout: PositiveSeconds = 900.0
    # Defaults for boxes that do not set their own.
    max_len: PositiveSeconds = 180.0
    min_len: Seconds = 2.0
    silence: PositiveSeconds = 5.0
    max_messages: Annotated[int, Field(ge=1)] = 100
    retention_days: Annotated[int, Field(ge=0)] = 0

    @field_validator("min_len")
    @classmethod
    def _shorter_than_max(cls, value: float, info: ValidationInfo) -> float:
        if "max_len" in info.data and value > info.data["max_len"]:
            raise ValueError(f"longer than max_len ({info.data['max_len']:g})")
        return value

    def mailboxes(self, boxes: dict[str, MailboxSection]) -> dict[str, Mailbox]:
        """The boxes as the store takes them, these defaults applied."""
        def pick(own, default):
            return default if own is None else own

        return {number: Mailbox(number, owner=b.owner, pin_hash=b.pin, emails=b.email,
                                webhook=b.webhook, max_length=pick(b.max_len, self.max_len),
                                min_length=pick(b.min_len, self.min_len),
                                max_messages=pick(b.max_messages, self.max_messages),
                                retention_days=pick(b.retention_days, self.retention_days),
                                silence=self.silence)
                for number, b in boxes.items()}


class MailboxSection(Section):
    owner: Annotated[str, AfterValidator(check_owner)]
    pin: PinHash | None = None
    email: Annotated[tuple[Email, ...], BeforeValidator(as_tuple)] = ()
    webhook: Url | None = None
    max_len: PositiveSeconds | None = None
    min_len: Seconds | None = None
    max_messages: Annotated[int, Field(ge=1)] | None = None
    retention_days: Annotated[int, Field(ge=0)] | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _one_address_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def mailbox_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks for ``sipagent.config.models``: box
    numbers usable as folder names, owners that exist, limits that agree."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    vm = config.voicemail
    for number, box in config.mailboxes.items():
        where = ("mailboxes", number)
        if not BOX_NUMBER.fullmatch(number):
            problems.append((where, "a mailbox number uses only letters, digits, '+', '_' "
                                    "and '-' (at most 40)"))
        kind, _, name = box.owner.partition(":")
        known = {"agent": config.agents, "queue": config.queues}.get(kind)
        if known is not None and name not in known:
            problems.append(((*where, "owner"), f"unknown {kind} {name!r}"))
        max_len = vm.max_len if box.max_len is None else box.max_len
        min_len = vm.min_len if box.min_len is None else box.min_len
        if min_len > max_len:
            problems.append(((*where, "min_len"), f"longer than max_len ({max_len:g})"))
        if box.email and not vm.smtp_host:
            problems.append(((*where, "email"), "needs voicemail.smtp_host to send through"))
    return problems
