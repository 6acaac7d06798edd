"""Where a transferred caller goes, and taking them there.

An agent (from the phone's REFER, or the HTTP API) hands a connected
caller to a *target*:

    queue:NAME      back into the ACD, another queue (a new ENTER there)
    agent:ID        the ACD, but only that agent may take the call
    flow:SPEC       a flow (an IVR, a survey)
    mailbox:BOX     the voicemail flow, into that box
    number:DIGITS   out through the trunk (``[transfer] number_uri``)
    sip:URI         straight to a SIP address

A phone names its target by the user part of the Refer-To URI:
``[transfer.extensions]`` first, then a queue's name, then an agent's
id, else a number to dial out.

The agent leaves at once and goes to wrap-up (the runtime's business,
before this module runs).  Then the caller's own task, the one that was
waiting in ``enqueue``, carries the caller on: so the caller's data, IVR
variables and call id travel with it, and the one call record of the call
covers every leg.  A target that is busy or does not answer sends the
caller to the configured fallback (default: back into the queue the call
came from), never to a dead line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import structlog

from sipagent.sip.leg import LegEnded

log = structlog.get_logger("sipagent.queue.transfer")

TARGET_KINDS = ("queue", "agent", "flow", "mailbox", "number", "sip")
_NUMBER = re.compile(r"\+?[0-9*#]{1,32}")


class BadTransferTarget(ValueError):
    """The target names nothing the engine can reach (a 400 to the API)."""


class CallRestricted(BadTransferTarget):
    """A call restriction refuses the number (a 403 to the API, naming the rule)."""


@dataclass(frozen=True)
class TransferTarget:
    kind: str        # one of TARGET_KINDS
    value: str

    def __str__(self) -> str:
        return self.value if self.kind == "sip" else f"{self.kind}:{self.value}"


@dataclass
class TransferOrder:
    target: TransferTarget
    by: str                      # the agent who transferred
    origin: str                  # "api" or "phone"
    mode: str = "blind"          # "blind", "attended" or "conference"
    from_queue: str = ""
    reached: Any = None          # attended: the consulted party's leg, answered already


def parse_target(text: str, *, queues: Mapping, agents: Mapping, number_uri: str | None,
                 extensions: Mapping[str, str] = {}) -> TransferTarget:
    """A target written as ``kind:value``, a SIP URI, or a bare extension."""
    text = text.strip()
    if text.startswith(("sip:", "sips:")):
        return TransferTarget("sip", text)
    kind, sep, value = text.partition(":")
    if not sep:
        return resolve_extension(text, queues=queues, agents=agents, number_uri=number_uri,
                                 extensions=extensions)
    if kind not in TARGET_KINDS:
        raise BadTransferTarget(f"unknown target kind {kind!r}; one of {', '.join(TARGET_KINDS)}")
    if kind == "queue" and value not in queues:
        raise BadTransferTarget(f"no queue named {value!r}")
    if kind == "agent" and value not in agents:
        raise BadTransferTarget(f"no agent named {value!r}")
    if kind == "number":
        if not _NUMBER.fullmatch(value):
            raise BadTransferTarget("a number is digits, * or # (optionally a leading +)")
        if not number_uri:
            raise BadTransferTarget("numbers cannot be dialled: [transfer] number_uri is not set")
    if not value:
        raise BadTransferTarget(f"{kind}: needs a value")
    return TransferTarget(kind, value)


def resolve_extension(user: str, *, queues: Mapping, agents: Mapping, number_uri: str | None,
                      extensions: Mapping[str, str] = {}) -> TransferTarget:
    """What a phone means by the user part of its Refer-To."""
    if user in extensions:
        return parse_target(extensions[user], queues=queues, agents=agents,
                            number_uri=number_uri)
    if user in queues:
        return TransferTarget("queue", user)
    if user in agents:
        return TransferTarget("agent", user)
    return parse_target(f"number:{user}", queues=queues, agents=agents, number_uri=number_uri)


def agent_skill(agent_id: str) -> str:
    """The skill only ``agent_id`` has: a transfer to an agent requires it."""
    return f"agent:{agent_id}"


def dial_uri(target: TransferTarget, number_uri: str | None) -> str | None:
    if target.kind == "sip":
        return target.value
    if target.kind == "number" and number_uri:
        return number_uri.replace("{number}", target.value)
    return None


async def ring(line, uri: str, *, call_id: str, caller: str, timeout: float):
    """Dial a transfer target; the answered leg, or the failure reason."""
    leg = line.dial_out(uri, label=f"{call_id}=>transfer",
                        headers={"X-Sipacd-Call-Id": call_id,
                                 "X-Sipacd-Caller": caller or "anonymous"})
    line.track_leg(leg)
    try:
        await leg.until_answered(timeout)
    except LegEnded as ended:
        return None, "busy" if ended.code in (486, 600) else "failed"
    except TimeoutError:
        leg.end()
        return None, "no_answer"
    return leg, "answered"
