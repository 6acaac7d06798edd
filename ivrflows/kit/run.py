"""What a kit run leaves behind: the transcript (:class:`Entry`) and the
:class:`FlowRun` record."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ivrflows.call import Recording
from ivrflows.kit.mailbox import FakeMailbox

Flow = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Entry:
    at: float           # seconds since the call started
    who: str            # flow, caller, queue
    verb: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.at:7.1f}s  {self.who:<6} {self.verb:<9} {self.detail}".rstrip()


@dataclass
class FlowRun:
    """What happened on one call; ``str(run)`` is the readable transcript."""
    transcript: list[Entry]
    ended: str = "returned"     # returned, caller hung up, flow hung up, transferred
    vars: dict[str, str] = field(default_factory=dict)
    language: str = "en"
    hangup_cause: int | None = None
    recordings: list[Recording] = field(default_factory=list)
    voicemails: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    enqueues: list[dict[str, Any]] = field(default_factory=list)
    mailboxes: dict[str, FakeMailbox] = field(default_factory=dict)   # as the call left them
    prompt_uses: list[tuple[str, str]] = field(default_factory=list)   # (language, name)
    faxes: list[dict[str, Any]] = field(default_factory=list)          # send_fax/receive_fax
    fax_jobs: list[dict[str, Any]] = field(default_factory=list)       # queue_fax

    def details(self, verb: str) -> list[str]:
        return [e.detail for e in self.transcript if e.verb == verb and e.who == "flow"]

    @property
    def verbs(self) -> list[str]:
        return [e.verb for e in self.transcript if e.who == "flow"]

    @property
    def prompts(self) -> list[str]:
        """Every prompt the caller heard (or started to hear), in order."""
        return self.details("play")

    @property
    def said(self) -> list[str]:
        return self.details("say")

    @property
    def heard_digits(self) -> list[str]:
        """What each gather try collected ('' for nothing)."""
        return ["" if d == "no input" else d.strip("'") for d in self.details("digits")]

    @property
    def queued(self) -> list[str]:
        return [q["queue"] for q in self.enqueues]

    @property
    def transfers(self) -> list[str]:
        return self.details("transfer")

    @property
    def flows(self) -> list[str]:
        return self.details("goto")

    @property
    def duration(self) -> float:
        return self.transcript[-1].at if self.transcript else 0.0

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.transcript)

    def __repr__(self) -> str:
        # What pytest prints when an assertion on a run fails: the story.
        return f"<FlowRun ended={self.ended!r}:\n{self}\n>"
