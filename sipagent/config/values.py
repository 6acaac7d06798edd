"""The value types and validators that the configuration sections share.

Each validator raises ValueError with a message that reads well after the
key's dotted path ("must be ...", "not a SIP URI: ..."): ``sipagent.config.load``
prints the two together.
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, NamedTuple

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationInfo, field_validator)

from sipagent.store.database import is_postgres_url

class ConfigProblems(ValueError):
    """Problems found by our own validators, each under a key path.

    The path is relative to where pydantic reports the error, so a model can
    name its own fields without knowing where it sits in the file.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(_join(loc, msg) for loc, msg in problems))


def _join(loc: tuple[str | int, ...], msg: str) -> str:
    return ".".join(str(p) for p in loc) + ": " + msg if loc else msg


# --- scalar types -----------------------------------------------------------

def as_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; strict tuples would reject them.
    return tuple(value) if isinstance(value, list) else value


def lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def uppercase(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def matching(pattern: re.Pattern[str], complaint: str) -> Callable[[str], str]:
    """A validator: the value if ``pattern`` matches all of it, else
    ValueError(``complaint``), where ``{!r}`` stands for the value."""
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(complaint.format(value))
        return value
    return check


_NAME = re.compile(r"[A-Za-z0-9_-]+")
_check_name = matching(_NAME, "bad name {!r}: use only letters, digits, '_' and '-'")


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None


def check_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value))
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"bad CIDR network {value!r}: {exc}") from None
        raise ValueError(f"bad CIDR network {value!r}: host bits set, did you mean '{loose}'?") from None


_SIP_URI = re.compile(
    r"""(?P<scheme>sips?):
        (?:(?P<user>[A-Za-z0-9\-_.!~*'()&=+$,?/%]+)@)?
        (?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)
        (?::(?P<port>[0-9]{1,5}))?
        (?:;[^\s;]+)*""",
    re.VERBOSE,
)


def _check_sip_uri(value: str, *, need_user: bool) -> str:
    m = _SIP_URI.fullmatch(value)
    if not m or (need_user and not m["user"]):
        shape = "sip:user@host[:port]" if need_user else "sip:host[:port]"
        raise ValueError(f"not a SIP URI: {value!r} (expected {shape})")
    if m["port"] and not 1 <= int(m["port"]) <= 65535:
        raise ValueError(f"bad SIP URI {value!r}: port {m['port']} out of range 1..65535")
    if m["host"].startswith("["):
        try:
            ipaddress.IPv6Address(m["host"][1:-1])
        except ValueError:
            raise ValueError(f"bad SIP URI {value!r}: bad IPv6 host") from None
    return value


_FLOW_SPEC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z_][A-Za-z0-9_]*)?")
_check_flow_spec = matching(_FLOW_SPEC, "bad flow {!r}: expected 'module' or 'module:function'")


def flow_target(spec: str) -> tuple[str, str]:
    """Split a flow spec into (module, function); a bare module means ``flow``."""
    module, _, function = spec.partition(":")
    return module, function or "flow"


# RFC 3261 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Copying a caller header over one of these would break the agent's dialog.
_DIALOG_HEADERS = frozenset(
    h.lower() for h in (
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Route",
        "Record-Route", "Content-Length", "Content-Type", "Authorization",
        "Proxy-Authorization",
    )
)


def _check_header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"not a SIP header name: {value!r}")
    if value.lower() in _DIALOG_HEADERS:
        raise ValueError(f"{value!r} is managed by the SIP stack and cannot be copied")
    return value


def check_dtmf_key(value: str) -> str:
    if len(value) != 1 or value not in "0123456789*#":
        raise ValueError(f"not a DTMF key: {value!r} (one of 0-9, * or #)")
    return value


def _check_target(value: str) -> str:
    """Where a caller goes when a queue lets go: another queue, a flow, or a
    hang-up after an optional prompt."""
    kind, _, arg = value.partition(":")
    if kind == "queue" and _NAME.fullmatch(arg or ""):
        return value
    if kind == "flow" and _FLOW_SPEC.fullmatch(arg or ""):
        return value
    if kind == "hangup" and (not arg or re.fullmatch(r"[A-Za-z0-9_.-]+", arg)):
        return value
    raise ValueError(f"bad target {value!r}: expected 'queue:NAME', 'flow:MODULE[:FUNCTION]', "
                     "'hangup' or 'hangup:PROMPT'")


def check_schedule(value: Any) -> Any:
    from ivrflows.schedule import ScheduleError, from_dict

    try:
        return from_dict(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir") or Path.cwd()
    return Path(os.path.normpath(Path(base) / value.expanduser()))


def _check_wav(value: Path) -> Path:
    if value.suffix.lower() != ".wav":
        raise ValueError(f"must be a .wav file: '{value}'")
    if not value.is_file():
        raise ValueError(f"no such file: '{value}'")
    return value


_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
_OWNER = re.compile(r"(agent|queue):[A-Za-z0-9_-]+|person:.+")

check_email = matching(_EMAIL, "not an e-mail address: {!r}")
_check_url_shape = matching(_URL, "not an http(s) URL: {!r}")
# A mailbox owner: 'agent:NAME', 'queue:NAME' or 'person:ANY TEXT'.
check_owner = matching(_OWNER, "bad owner {!r}: expected 'agent:NAME', 'queue:NAME' or "
                               "'person:ANY TEXT'")


def check_url(value: str) -> str:
    """An http(s) URL; a bare host loses its trailing slash."""
    value = _check_url_shape(value)
    return value.rstrip("/") if value.count("/") == 3 else value


class PortRange(NamedTuple):
    """Ports LOW..HIGH, both included."""
    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def pairs(self) -> int:
        """RTP/RTCP pairs that fit: RTP on an even port, RTCP on the next."""
        return (self.high - self.low + 1) // 2


_PORT_RANGE = re.compile(r"\s*([0-9]{1,5})\s*-\s*([0-9]{1,5})\s*")


def _parse_rtp_ports(value: Any) -> Any:
    if isinstance(value, PortRange):
        return value
    m = _PORT_RANGE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"bad port range {value!r}: expected 'LOW-HIGH', such as '10000-20000'")
    low, high = int(m[1]), int(m[2])
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"bad port range {value!r}: needs 1024 <= LOW < HIGH <= 65535")
    if low % 2:
        raise ValueError(f"bad port range {value!r}: LOW must be even (RTP takes an even "
                         "port, RTCP the odd one above it)")
    if high - low < 3:
        raise ValueError(f"bad port range {value!r}: too small, it must hold at least two "
                         "RTP/RTCP port pairs")
    return PortRange(low, high)


Name = Annotated[str, AfterValidator(_check_name)]
IPAddress = Annotated[str, AfterValidator(_check_ip)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(ge=0)]
PositiveSeconds = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Email = Annotated[str, AfterValidator(check_email)]
Url = Annotated[str, AfterValidator(check_url)]
AgentUri = Annotated[str, AfterValidator(lambda v: _check_sip_uri(v, need_user=True))]
ServerUri = Annotated[str, AfterValidator(lambda v: _check_sip_uri(v, need_user=False))]
FlowSpec = Annotated[str, AfterValidator(_check_flow_spec)]
Target = Annotated[str, AfterValidator(_check_target)]
HeaderName = Annotated[str, AfterValidator(_check_header_name)]
# Lax only for the str -> Path conversion; the file still holds a string.
ConfigPath = Annotated[Path, Field(strict=False), AfterValidator(_resolve)]
WavFile = Annotated[ConfigPath, AfterValidator(_check_wav)]
# The RTP ports of calls, written "LOW-HIGH" (RtpPorts("10000-20000")).
RtpPorts = Annotated[PortRange, BeforeValidator(_parse_rtp_ports)]

Strategy = Literal[
    "linear", "round_robin", "ring_all", "longest_idle", "fewest_calls",
    "least_talk_time", "random", "weighted_random", "skills",
]
TokenRole = Literal["admin", "supervisor", "agent", "callback"]


class Section(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def section() -> Any:
    # Validating the empty default too gives defaults the same path
    # resolution (base_dir) as values read from the file.
    return Field(default_factory=dict, validate_default=True)


# --- sections ---------------------------------------------------------------

class NotifySettings(Section):
    """How an outbox notifier sends: the mail server, webhook timeout and
    retries.  ``[voicemail]`` carries them, and received faxes go out through
    the same server (``sipagent.store.outbox_notifier``)."""
    smtp_host: NonEmptyStr | None = None
    smtp_port: Port = 25
    smtp_starttls: bool = False
    smtp_user: NonEmptyStr | None = None
    smtp_password: str | None = Field(default=None, validate_default=True)
    smtp_from: Email = "voicemail@localhost"
    smtp_timeout: PositiveSeconds = 30.0
    # Certificate checks stay on; a private CA is given here instead.
    smtp_ca_file: NonEmptyStr | None = None
    webhook_timeout: PositiveSeconds = 10.0
    # Base of the download URL sent in webhooks (default: the HTTP listener).
    public_url: Url | None = None
    # The first retry after retry_base seconds, doubling up to retry_max;
    # given up (and kept, state 'failed') after notify_attempts.
    notify_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    retry_base: PositiveSeconds = 30.0
    retry_max: PositiveSeconds = 3600.0

    @field_validator("smtp_password")
    @classmethod
    def _login_needs_both(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("smtp_user") is None) != (value is None):
            raise ValueError("smtp_user and smtp_password go together")
        return value


def _postgres_url(value: str) -> str:
    if not is_postgres_url(value):
        raise ValueError("must be a PostgreSQL URL (postgresql://user:password@host/db)")
    return value


PostgresUrl = Annotated[NonEmptyStr, AfterValidator(_postgres_url)]
