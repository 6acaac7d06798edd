"""The verbs a flow may use on a call.

This Protocol is the whole contract between flows and the engine.  The SIP
engine implements it on a real call; a fake implements it for tests.  Keep
it small: every verb here is one a flow author reaches for on a real IVR.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable


class CallerHangup(Exception):
    """The caller hung up.  Raised from whatever verb was running, so the
    flow's ``finally`` blocks run and a dead call cannot be kept alive."""


@dataclass(frozen=True)
class QueueOutcome:
    """How a caller left a queue.

    ``result`` is one of: ``answered`` (talked to ``agent``; returned once the
    agent hung up, the caller still on the line), ``timeout``, ``full``,
    ``empty`` (no agents), ``exit_key``, ``callback``.  A caller who hangs up
    while waiting raises :class:`CallerHangup` instead (that is an abandon).
    """
    result: str
    queue: str
    wait: float
    agent: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.result == "answered"


@runtime_checkable
class Call(Protocol):
    call_id: str
    caller: str          # the calling number (user part of From)
    called: str          # the dialled number (user part of the request URI / To)
    headers: Mapping[str, str]   # headers of the INVITE, names as received
    vars: dict[str, str]         # call variables; travel with the call to agents

    async def answer(self, *, early_media: bool = False) -> None:
        """Answer (200), or with ``early_media`` send 183 and play before answering."""

    async def hangup(self, cause: int = 200) -> None: ...

    async def play(self, *prompts: str, barge_in: bool = False) -> str | None:
        """Play prompts (names from the prompt library, or WAV paths) in order.

        With ``barge_in`` a key press stops playback; the digit is returned
        and left for the next :meth:`gather`."""

    async def gather(self, prompt: str | None = None, *, max_digits: int = 1,
                     timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                     terminators: str = "#") -> str:
        """Collect DTMF digits; returns them ('' when nothing was pressed)."""

    async def enqueue(self, queue: str, *, priority: int = 0,
                      skills: Mapping[str, int] | None = None,
                      data: Mapping[str, str] | None = None) -> QueueOutcome:
        """Wait in an ACD queue (with music on hold) until an agent takes the
        call or the queue lets the caller go."""
