"""The ``[transfer]`` and ``[monitor]`` sections: call operations.

::

    [transfer]
    number_uri = "sip:{number}@pbx.example.com"   # how a number is dialled out;
                                                  # unset: numbers are refused
    ring_timeout = 30          # seconds a blind transfer's target may ring
    fallback = "queue:support" # where a caller goes whose target did not answer;
                               # unset: back to the queue the call came from
    mailbox_flow = "voicemail" # the flow a "mailbox:BOX" target runs
    [transfer.extensions]      # what a phone's Refer-To user part means
    "8000" = "queue:sales"
    "8100" = "flow:survey"

    [monitor]
    ring_timeout = 30          # seconds the supervisor's phone may ring
    [monitor.keys]             # digits the supervisor presses to switch modes
    "1" = "listen"
    "2" = "whisper"
    "3" = "barge"

    [call_keys]                # keys the agent presses during a call (agent leg only)
    blind_transfer = "##"      # then the target and # ("" : off)
    attended_transfer = "*2"   # then the target and #: a consultation
    conference = "*3"          # merge the consultation into a conference
    cancel_consult = "*0"      # back to the caller
    recording_pause = "*1"     # pause, or resume, the call's recording
    target_timeout = 8

    [recording]                # conversations (a queue's recording = percent)
    dir = "/var/lib/sipacd/conversations"   # unset: <data dir>/conversations
    retention_days = 90        # 0: kept for ever
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from sipagent.config.values import (ConfigPath, FlowSpec, PositiveSeconds, Section, Target,
                                    check_dtmf_key)

DIAL_PATTERN = r"^sips?:.*\{number\}.*@"


def _check_transfer_target(value: str) -> str:
    kind, sep, rest = value.partition(":")
    kinds = ("queue", "agent", "flow", "mailbox", "number", "sip", "sips")
    if not sep or kind not in kinds or not rest:
        raise ValueError(f"a transfer target is one of {', '.join(k + ':...' for k in kinds)}")
    return value


class TransferSection(Section):
    number_uri: Annotated[str, Field(pattern=DIAL_PATTERN)] | None = None
    ring_timeout: PositiveSeconds = 30.0
    fallback: Target | None = None
    mailbox_flow: FlowSpec = "voicemail"
    extensions: dict[Annotated[str, Field(pattern=r"^[0-9A-Za-z*#+._-]{1,32}$")],
                     Annotated[str, AfterValidator(_check_transfer_target)]] = {}


class RecordingSection(Section):
    # Where conversation recordings go; unset: "conversations" in the data dir.
    dir: ConfigPath | None = None
    # Records and audio older than this many days are deleted (0: kept).
    retention_days: Annotated[float, Field(ge=0)] = 0.0


MonitorMode = Literal["listen", "whisper", "barge"]


class MonitorSection(Section):
    ring_timeout: PositiveSeconds = 30.0
    keys: dict[Annotated[str, AfterValidator(check_dtmf_key)], MonitorMode] = {
        "1": "listen", "2": "whisper", "3": "barge"}


def _check_key_sequence(value: str) -> str:
    if value == "":
        return value              # "": this key is off
    if not 1 <= len(value) <= 4 or any(c not in "0123456789*#ABCD" for c in value):
        raise ValueError("a key sequence is 1 to 4 of 0-9 * # A-D")
    return value


KeySequence = Annotated[str, AfterValidator(_check_key_sequence)]


class CallKeysSection(Section):
    """Keys the agent presses during a connected call.  They are read from
    the agent's leg only (RFC 2833 or SIP INFO), never passed to the caller."""
    blind_transfer: KeySequence = "##"
    attended_transfer: KeySequence = "*2"
    conference: KeySequence = "*3"
    cancel_consult: KeySequence = "*0"
    recording_pause: KeySequence = "*1"   # pauses, or resumes, the recording
    # Seconds to key in a transfer target (ended by #) after the code.
    target_timeout: PositiveSeconds = 8.0
