"""Who hears whom in one conversation, kept true on the conference bridge.

A conversation (a caller, an agent, maybe a consulted party or a listening
supervisor) says which sources each listener should hear; ``Mix.hear``
connects what is new and disconnects what is gone, so a hold, a whisper
or a conference is one call that describes the whole picture, never a
sequence of hand-made startTransmit calls that can leave a stray path
behind (a whisper heard by the caller).

A source or a listener is anything with ``audio()`` returning a pjsua2
AudioMedia: a call leg, or the music on hold.  A re-INVITE may rebuild a
leg's stream under a new conference slot, which drops its connections:
``refresh`` connects again every path of that leg.
"""
from __future__ import annotations

from typing import Iterable, Protocol

import structlog

from sipagent.sip.endpoint import pj_error_text

log = structlog.get_logger("sipagent.media.mix")


class Audible(Protocol):
    def audio(self): ...


Path = tuple[Audible, Audible]   # (source, listener)


class Mix:
    def __init__(self, label: str = ""):
        self.label = label
        self.paths: set[Path] = set()

    def hear(self, paths: Iterable[Path]) -> None:
        """Make exactly ``paths`` the audio paths of this conversation."""
        wanted = set(paths)
        for source, listener in self.paths - wanted:
            _transmit(source, listener, False, self.label)
        for source, listener in wanted - self.paths:
            _transmit(source, listener, True, self.label)
        self.paths = wanted

    def refresh(self, party: Audible) -> None:
        """``party``'s stream was rebuilt: connect its paths again."""
        for source, listener in self.paths:
            if party is source or party is listener:
                _transmit(source, listener, True, self.label)

    def clear(self) -> None:
        self.hear(())


def _transmit(source: Audible, listener: Audible, on: bool, label: str) -> None:
    # A leg that has ended (or has no media yet) has no slot: nothing to
    # connect, and its paths died with it.
    if getattr(source, "is_ended", False) or getattr(listener, "is_ended", False):
        return
    try:
        if on:
            source.audio().startTransmit(listener.audio())
        else:
            source.audio().stopTransmit(listener.audio())
    except Exception as exc:
        log.debug("audio path not changed", conversation=label, connect=on,
                  error=pj_error_text(exc))
