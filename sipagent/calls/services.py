"""What a call may touch: the one object the engine hands each :class:`SipCall`.

A call reaches nothing else of the engine; reading this class is reading
everything a flow can reach through its call.

The engine builds it once, in ``start()``, after every part exists (event
log, voicemail, fax, queue runtime): a call is only admitted after that, and
``stop()`` ends every call before it closes any part, so a call sees the
same parts as the engine's attributes hold meanwhile.  One exception:
``account`` is asked for at each use, because it is the one pjsua2 object
here and must be free to go when the engine drops it before destroying the
library, even if a call cut short by shutdown is still referenced.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, TypeVar

if TYPE_CHECKING:
    from ivrflows.schedule import Schedule
    from sipagent.fax.service import FaxService
    from sipagent.media.prompts import PromptLibrary
    from sipagent.metrics import EngineMetrics
    from sipagent.queue.runtime import QueueRuntime
    from sipagent.sip.account import TrunkAccount
    from sipagent.sip.leg import CallLeg
    from sipagent.store.eventlog import EventLog
    from sipagent.voicemail.notify import VoicemailNotifier
    from sipagent.voicemail.store import VoicemailStore

_Part = TypeVar("_Part")


@dataclass(frozen=True)
class CallServices:
    prompts: PromptLibrary
    queues: QueueRuntime
    schedules: Mapping[str, Schedule]
    account: Callable[[], TrunkAccount | None]      # transfers dial out from it
    track_leg: Callable[[CallLeg], None]            # count a new leg toward capacity
    run_flow: Callable[[Any, str], Awaitable[None]]  # (call, flow spec): goto_flow
    eventlog: EventLog
    metrics: EngineMetrics
    recordings_dir: Path
    voicemail: VoicemailStore | None                # None: no voicemail on this engine
    voicemail_notifier: VoicemailNotifier | None
    fax: FaxService | None                          # None: no fax on this engine

    def voicemail_store(self) -> VoicemailStore:
        return _present(self.voicemail, "voicemail is not configured on this engine")

    def fax_service(self) -> FaxService:
        return _present(self.fax, "fax is not set up on this engine")


def _present(part: _Part | None, missing: str) -> _Part:
    if part is None:
        raise LookupError(missing)
    return part
