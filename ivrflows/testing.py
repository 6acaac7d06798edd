"""The flow test kit: run a flow against a scripted caller, on virtual time.

::

    from ivrflows import main_menu
    from ivrflows.testing import run_flow, hangup

    def test_english_then_sales():
        run = run_flow(main_menu.flow, ["1", "2"], vars={"queue_sales": "sales"})
        assert run.queued == ["sales"]
        print(run)          # the transcript, as `sipacd flows simulate` shows it

    def test_abandon_after_half_a_minute():
        run = run_flow(main_menu.flow, ["1", "1", hangup(after=30)])
        assert run.ended == "caller hung up" and run.surveys == []

Theory of operation
-------------------
The flow runs on an asyncio loop whose clock is virtual: when every task is
waiting, the loop jumps straight to the next timer instead of sleeping, so a
five-second timeout or a two-minute queue wait passes at once and the same
script always gives the same transcript.  A flow whose tasks all wait for
something no timer will ever bring is reported as stalled.

The caller follows a script of steps.  A step is taken each time the flow
starts listening (a gather try, a barge-in prompt, a recording) and the
caller is not still busy with the previous step or with keys typed ahead:
``"12"`` presses 1 then 2, ``silence()`` lets the flow's timeout run,
``speak(8, then="#")`` talks into a recording, ``hangup()`` hangs up.  A
queue takes a step only if it is a ``hangup()`` (an abandon) or the queue's
:class:`QueueScript` has an exit key; other keys wait for the next question.  A step with ``at=`` happens at that call time
instead, and ``hangup(during="name")`` when that prompt starts.  Once the
script runs out the caller stays silent.  Everything the flow and the caller
do lands in :attr:`FlowRun.transcript`.
"""
from __future__ import annotations

import asyncio
import selectors
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping

from ivrflows.call import Recording, VoicemailMessage
from ivrflows.schedule import Schedule

Flow = Callable[[Any], Awaitable[None]]

# A fixed Monday morning: a kit run must not depend on the day the tests run.
DEFAULT_START = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


class FlowStalled(RuntimeError):
    """Every task waits for something no timer will bring: the flow hangs."""


class FlowMistake(AssertionError):
    """The flow did something the real engine would refuse (playing before
    answering, an unknown queue, schedule or flow)."""


# -- the caller's script ---------------------------------------------------------------

@dataclass(frozen=True)
class Press:
    keys: str
    after: float = 0.5      # seconds after the flow starts listening
    gap: float = 0.3        # between keys
    at: float | None = None


@dataclass(frozen=True)
class Silence:
    pass


@dataclass(frozen=True)
class Speak:
    """Talk for ``seconds`` (what a recording hears), then press ``then``."""
    seconds: float
    then: str = ""


@dataclass(frozen=True)
class Hangup:
    after: float = 0.0
    at: float | None = None
    during: str | None = None


Step = Press | Silence | Speak | Hangup | str


def press(keys: str, *, after: float = 0.5, gap: float = 0.3, at: float | None = None) -> Press:
    return Press(keys, after, gap, at)


def silence() -> Silence:
    return Silence()


def speak(seconds: float, then: str = "") -> Speak:
    return Speak(seconds, then)


def hangup(*, after: float = 0.0, at: float | None = None, during: str | None = None) -> Hangup:
    return Hangup(after, at, during)


def parse_digits(text: str) -> list[Step]:
    """The CLI's ``--digits 1,2,#``: one step per comma; an empty item is
    silence and ``h`` a hang-up, so ``1,,h`` means: 1, then nothing, then gone."""
    steps: list[Step] = []
    for item in text.split(",") if text else []:
        item = item.strip()
        steps.append(silence() if not item else hangup() if item.lower() == "h" else press(item))
    return steps


@dataclass(frozen=True)
class QueueScript:
    """What a queue does with the caller: ``result`` after ``wait`` seconds
    (``answered``: ``agent`` talks for ``talk`` seconds, then hangs up).
    Pressing ``exit_key`` while waiting leaves with ``exit_key``."""
    result: str = "answered"
    wait: float = 20.0
    agent: str = "agent-1"
    talk: float = 60.0
    exit_key: str | None = None


@dataclass
class FakeMailbox:
    """A voicemail box of the fake world.  ``run_flow`` works on a copy; the
    box as the call left it is in :attr:`FlowRun.mailboxes`.  After
    ``pin_attempts`` wrong PINs the box is ``locked`` for the rest of the
    run (the engine's lockout lasts a configured time)."""
    pin: str = "1234"
    max_messages: int = 100
    max_length: float = 120.0
    min_length: float = 1.0
    silence: float = 5.0
    pin_attempts: int = 3
    greetings: dict[str, str] = field(default_factory=dict)
    messages: list[VoicemailMessage] = field(default_factory=list)
    failures: int = 0
    locked: bool = False

    def folder(self, name: str) -> list[VoicemailMessage]:
        return [m for m in self.messages if m.folder == name]


def fake_message(caller: str = "+15550199", seconds: float = 10.0, *, folder: str = "new",
                 urgent: bool = False, caller_name: str = "", box: str = "200",
                 received: datetime = DEFAULT_START, id: str | None = None) -> VoicemailMessage:
    """A message already in a :class:`FakeMailbox` when the call starts."""
    message_id = id or f"m-{caller.lstrip('+')}-{int(received.timestamp())}"
    return VoicemailMessage(message_id, box, folder, caller, caller_name, "100",  # type: ignore[arg-type]
                            received, seconds, urgent, f"/fake/voicemail/{message_id}.wav")


# -- the transcript --------------------------------------------------------------------

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


# -- virtual time ----------------------------------------------------------------------

class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Instead of blocking until the next timer, moves the clock there."""

    def __init__(self, limit: float) -> None:
        super().__init__()
        self.now = 0.0
        self.limit = limit

    def select(self, timeout: float | None = None):  # type: ignore[override]
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise FlowStalled("the flow waits for something that never happens "
                              "(an Event or Future no timer or caller will set)")
        if self.now + timeout > self.limit:
            self.now = self.limit
            raise FlowMistake(f"the flow is still running after {self.limit:g} s of call "
                              "time (a loop that never ends?)")
        self.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time that stops a run at ``limit`` seconds."""

    def __init__(self, limit: float = float("inf")) -> None:
        self._virtual = _VirtualSelector(limit)
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now

    def close(self) -> None:
        # A stalled or runaway flow leaves tasks behind; cancel them so that
        # their finally blocks run and asyncio does not warn at exit.
        self._virtual.limit = float("inf")
        pending = [t for t in asyncio.all_tasks(self) if not t.done()]
        for task in pending:
            task.cancel()
        if pending and not self.is_closed():
            try:
                self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            except FlowStalled:
                pass
        super().close()


# -- running a flow --------------------------------------------------------------------

def run_flow(flow: Flow, script: Iterable[Step] = (), *, caller: str = "+15550100",
             called: str = "100", headers: Mapping[str, str] | None = None,
             vars: Mapping[str, str] | None = None, language: str = "en",
             now: datetime = DEFAULT_START, open: bool | None = None,
             schedules: Mapping[str, Schedule] | None = None, route_schedule: str | None = None,
             queues: Mapping[str, QueueScript] | None = None,
             known_queues: Iterable[str] | None = None,
             transfers: Mapping[str, bool] | None = None,
             flows: Mapping[str, Flow] | Callable[[str], Flow] | None = None,
             prompt_seconds: float | Mapping[str, float] = 2.0,
             record_dir: str | Path | None = None, max_seconds: float = 3600.0,
             mailboxes: Mapping[str, FakeMailbox] | None = None,
             fax_documents: Mapping[str, Any] | None = None, fax_machine: Any = None,
             fax_two_call: bool = True, raise_errors: bool = True) -> FlowRun:
    """Run ``flow`` on a :class:`FakeCall` until it ends; returns the record.

    ``open`` forces every schedule open or closed; otherwise ``schedules``
    are evaluated at ``now`` plus the call's virtual time (no schedule: open).
    ``queues`` says what each queue does (default :class:`QueueScript`);
    with ``known_queues`` an unknown queue is a :class:`FlowMistake`, as on
    the engine.  ``transfers`` maps a target to whether it answers (default
    yes).  ``flows`` resolves :meth:`goto_flow` (default: ``ivrflows.<module>``).
    ``mailboxes`` are the voicemail boxes (copied; an unknown box is a
    :class:`FlowMistake`); without it any box exists, empty, PIN ``1234``.
    ``fax_documents`` is the fax library (number -> :class:`ivrflows.fakefax.
    FakeFaxDocument`), ``fax_machine`` the caller's fax machine
    (:class:`ivrflows.fakefax.FakeFaxMachine`), ``fax_two_call`` whether
    :meth:`queue_fax` is available.
    An exception from the flow is re-raised unless ``raise_errors`` is false.
    """
    from ivrflows.fakecall import FakeCall

    loop = VirtualLoop(limit=max_seconds)
    try:
        call = FakeCall(script, caller=caller, called=called, headers=headers or {},
                        vars=vars or {}, language=language, now=now, open=open,
                        schedules=schedules or {}, route_schedule=route_schedule,
                        queues=queues or {}, known_queues=known_queues,
                        transfers=transfers or {}, flows=flows,
                        prompt_seconds=prompt_seconds,
                        record_dir=Path(record_dir) if record_dir else None,
                        mailboxes=mailboxes, fax_documents=fax_documents,
                        fax_machine=fax_machine, fax_two_call=fax_two_call)
        return loop.run_until_complete(call.run(flow, raise_errors))
    finally:
        loop.close()


def __getattr__(name: str) -> Any:
    # The fake is built from the types above, so it is imported on first use.
    if name == "FakeCall":
        from ivrflows.fakecall import FakeCall
        return FakeCall
    raise AttributeError(f"module 'ivrflows.testing' has no attribute {name!r}")

__all__ = ["run_flow", "FlowRun", "Entry", "QueueScript", "press", "silence",
           "speak", "hangup", "parse_digits", "FakeMailbox", "fake_message",
           "FlowMistake", "FlowStalled", "VirtualLoop",
           "DEFAULT_START", "Press", "Silence", "Speak", "Hangup"]
