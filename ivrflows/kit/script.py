"""What the scripted caller does: key presses, silence, speech, a hang-up; and
what each queue does with the caller (:class:`QueueScript`)."""
from __future__ import annotations

from dataclasses import dataclass


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
