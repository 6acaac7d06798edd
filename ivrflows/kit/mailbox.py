"""The fake world's voicemail boxes and the messages already in them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ivrflows.call import VoicemailMessage
from ivrflows.kit.virtual_time import DEFAULT_START


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
