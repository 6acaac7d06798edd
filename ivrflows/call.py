"""The verbs a flow may use on a call.

This Protocol is the whole contract between flows and the engine.  The SIP
engine implements it on a real call (``sipagent.calls.sip_call.SipCall``); the test
kit implements it on a fake (``ivrflows.testing``).  Keep it small: every
verb here is one a flow author reaches for on a real IVR.

Rules every implementation follows, so a flow behaves the same on both:

- Every awaitable verb raises :class:`CallerHangup` once the caller is gone,
  whether they hung up before or during the verb.  One exception, on
  purpose: :meth:`Call.record` returns normally when the caller hangs up
  *while recording*, because hanging up is how most callers finish a
  voicemail; the next verb raises.
- After the flow's own :meth:`Call.hangup`, or a :meth:`Call.transfer` that
  succeeded, the call is no longer the flow's: further verbs raise
  :class:`CallerHangup` too, so ``finally`` blocks are the place for clean-up.
- The bookkeeping verbs (:meth:`Call.leave_voicemail`,
  :meth:`Call.request_callback`, :meth:`Call.record_survey`, :attr:`Call.vars`,
  :meth:`Call.is_open`, the ``voicemail_*`` mailbox verbs, and the fax
  library verbs :meth:`Call.fax_document`, :meth:`Call.fax_unlock` and
  :meth:`Call.queue_fax`) never raise :class:`CallerHangup`: they touch no
  media, and a message or an answer must still be filed after the caller
  has gone, typically from an ``except CallerHangup`` or ``finally`` block.
- Prompt names are resolved in :attr:`Call.language`.  A name ending in
  ``.wav`` is a file path and is played as it is.
- Keys pressed while nobody listens are kept, in order, for the next verb
  that listens (type-ahead): a caller who knows the menus may press ``1 2``
  during the first prompt and land two levels down.
- :meth:`Call.gather` retries by one shared policy, :func:`gather_with_tries`,
  so the fake and the real call cannot drift apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from ivrflows.fax_types import FaxDocumentInfo, FaxResult


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


RecordingEnd = Literal["terminator", "silence", "max_length", "hangup"]


@dataclass(frozen=True)
class Recording:
    """A finished recording: ``path`` is a complete 8 kHz mono WAV file (it
    was written under a temporary name and renamed), never half a file."""
    path: str
    duration: float          # seconds of audio in the file
    ended_by: RecordingEnd

    @property
    def empty(self) -> bool:
        # Under a second is a caller who hung up at the beep, not a message.
        return self.duration < 1.0


Prompt = str | Sequence[str]


# -- voicemail ---------------------------------------------------------------------------

GreetingKind = Literal["unavailable", "busy", "name", "temporary"]
GREETING_KINDS: tuple[GreetingKind, ...] = ("unavailable", "busy", "name", "temporary")
VoicemailFolder = Literal["new", "saved"]
MarkAs = Literal["new", "saved", "deleted"]
LoginResult = Literal["ok", "wrong", "locked"]


class MailboxFull(Exception):
    """The box holds its maximum number of messages: nothing was filed."""


class MessageTooShort(Exception):
    """The recording is shorter than the box's minimum length: discarded."""


@dataclass(frozen=True)
class VoicemailBox:
    """What a flow may know about a mailbox before and after a deposit.

    ``greetings`` holds the recorded greetings only (kind -> WAV path); a
    kind that is missing is spoken by the flow's default text.  The limits
    are the box's own, config defaults applied."""
    number: str
    new: int
    saved: int
    max_messages: int
    max_length: float            # seconds a message may last
    min_length: float            # shorter messages are discarded
    silence: float = 5.0         # seconds of quiet that end a message
    greetings: Mapping[str, str] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.new + self.saved >= self.max_messages


@dataclass(frozen=True)
class VoicemailMessage:
    """One message in a box; ``path`` is the complete WAV to play."""
    id: str
    box: str
    folder: VoicemailFolder
    caller: str
    caller_name: str
    called: str
    received: datetime           # aware
    duration: float
    urgent: bool
    path: str


@runtime_checkable
class Call(Protocol):
    call_id: str
    caller: str          # the calling number (user part of From)
    called: str          # the dialled number (user part of the request URI / To)
    headers: Mapping[str, str]   # headers of the INVITE, names as received
    vars: dict[str, str]         # call variables: start as the route's ``vars`` plus
                                 # ``queue``; travel with the call to agents
    language: str                # prompt set and TTS voice: starts as the route's
                                 # ``language`` (or [flows] language); a flow may change it

    # -- the line ---------------------------------------------------------------------
    async def answer(self, *, early_media: bool = False) -> None:
        """Answer (200), or with ``early_media`` send 183 and play before answering."""

    async def hangup(self, cause: int = 200) -> None:
        """End the call.  Before the answer ``cause`` is the SIP final response
        sent (486 busy, 480 unavailable, 603 decline); after it, a BYE."""

    # -- saying things ------------------------------------------------------------------
    async def play(self, *prompts: str, barge_in: bool = False) -> str | None:
        """Play prompts (names from the prompt library, or WAV paths) in order.

        With ``barge_in`` a key press stops playback; the digit is returned
        and left for the next :meth:`gather`."""

    async def say(self, text: str, *, language: str | None = None, voice: str | None = None,
                  barge_in: bool = False) -> str | None:
        """Speak ``text`` with text-to-speech (default: :attr:`language`).

        Numbers, digits and durations read best when spelt out first with
        :mod:`ivrflows.speech`.  Barge-in as for :meth:`play`."""

    # -- listening ----------------------------------------------------------------------
    async def gather(self, prompt: Prompt | None = None, *, max_digits: int = 1,
                     timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                     terminators: str = "#", min_digits: int = 1, tries: int = 1,
                     valid: str | None = None, invalid_prompt: str | None = None,
                     no_input_prompt: str | None = None, barge_in: bool = True) -> str:
        """Collect DTMF digits; returns them, or ``''`` for no (valid) input.

        Each try plays ``prompt`` (interruptible unless ``barge_in`` is
        false; keys pressed during a non-interruptible prompt are dropped),
        then waits ``timeout`` seconds for the first key and
        ``inter_digit_timeout`` for each next one.  A key in ``terminators``
        ends the input and is not returned; so does reaching ``max_digits``.
        Input shorter than ``min_digits`` or not matching the regex ``valid``
        (whole string) is invalid: ``invalid_prompt`` plays and the next try
        starts; no input at all plays ``no_input_prompt`` instead.  After
        ``tries`` failed tries the answer is ``''``.  See
        :func:`gather_with_tries`."""

    async def record(self, prompt: Prompt | None = None, *, beep: bool = True,
                     max_length: float = 120.0, silence: float = 5.0,
                     terminators: str = "#") -> Recording:
        """Record the caller into a new WAV file.

        Plays ``prompt``, then a beep, then records until a terminator key,
        ``silence`` seconds of quiet (the trailing quiet is cut off),
        ``max_length`` seconds, or the caller hanging up, which here returns
        normally (``ended_by='hangup'``) so a voicemail is kept."""

    # -- where the call goes -----------------------------------------------------------
    async def enqueue(self, queue: str, *, priority: int = 0,
                      skills: Mapping[str, int] | None = None,
                      data: Mapping[str, str] | None = None) -> QueueOutcome:
        """Wait in an ACD queue (with music on hold) until an agent takes the
        call or the queue lets the caller go; see :class:`QueueOutcome`.
        ``data`` shows on the agent's screen; a caller who hangs up while
        waiting raises :class:`CallerHangup` (an abandon)."""

    async def transfer(self, target: str) -> bool:
        """Blind transfer to a SIP URI (``sip:user@host``) or a number (sent
        to the trunk).  True: the call has left (the flow should return; any
        later verb raises :class:`CallerHangup`).  False: the target was
        busy, did not answer or refused, and the caller is still here."""

    async def goto_flow(self, flow: str) -> None:
        """Continue this call in another flow (``'module'`` or
        ``'module:function'`` from the flows folder); returns when that flow
        returns, so ``return await call.goto_flow('after_hours')`` hands over."""

    # -- the business ------------------------------------------------------------------
    def is_open(self, schedule: str | None = None) -> bool:
        """Whether the named schedule (default: the route's ``schedule``) is
        open now.  A route without a schedule is always open.  Pure: no
        await, no I/O; see :mod:`ivrflows.schedule`."""

    async def leave_voicemail(self, recording: Recording, *, mailbox: str,
                              urgent: bool = False) -> str:
        """File a recording in a voicemail box; returns the message id.  The
        recording's file is moved into the data folder.  Raises
        :class:`MailboxFull` or :class:`MessageTooShort` (the recording is
        then discarded) and :class:`LookupError` for an unknown box."""

    # -- voicemail boxes ----------------------------------------------------------------
    # Few verbs on purpose: the deposit and retrieval flows in
    # ivrflows/voicemail.py and ivrflows/voicemail_retrieval.py are built
    # from these and the media verbs above, so they run on the test kit too.
    async def voicemail(self, box: str, *, greeting: str | None = None) -> str | None:
        """Take a message for ``box`` the standard way (greeting, beep,
        record, review, file: :func:`ivrflows.voicemail.deposit`); returns
        the message id, or None when nothing was filed (box full, too short).
        ``greeting`` is a greeting kind (``unavailable``, ``busy``) or a
        prompt to play instead of the box's greeting."""

    async def voicemail_box(self, box: str) -> VoicemailBox:
        """The box's counts, limits and recorded greetings; raises
        :class:`LookupError` for an unknown box."""

    async def voicemail_login(self, box: str, pin: str) -> LoginResult:
        """Check the owner's PIN.  ``ok`` opens the box to the message verbs
        for the rest of the call; ``wrong`` (also for an unknown box, so a
        caller cannot probe box numbers); ``locked`` after too many wrong
        PINs, until the lockout time passes, whatever PIN is given."""

    async def voicemail_messages(self, box: str, folder: VoicemailFolder = "new"
                                 ) -> list[VoicemailMessage]:
        """The messages of a box opened by :meth:`voicemail_login`, urgent
        first, then oldest first (the order a caller hears them)."""

    async def voicemail_mark(self, box: str, message_id: str,
                             folder: MarkAs) -> None:
        """Move a message of an opened box to ``saved`` (or back to ``new``),
        or delete it (``deleted``: file and index entry are gone)."""

    async def voicemail_set_greeting(self, box: str, kind: GreetingKind,
                                     recording: Recording | None) -> None:
        """Make ``recording`` the box's greeting of ``kind`` (its file is
        moved); None removes it, so the default text is spoken again."""

    async def voicemail_set_pin(self, box: str, pin: str) -> None:
        """Change the PIN of an opened box (4 to 12 digits; ValueError else)."""

    # -- fax ------------------------------------------------------------------------
    # The library's documents are known by the number callers key in; see
    # ivrflows/fax_on_demand.py for a whole flow built from these verbs.
    async def fax_document(self, number: str) -> FaxDocumentInfo | None:
        """The library document ``number`` (title, pages, whether a PIN
        protects it), or None when there is no such document."""

    async def fax_unlock(self, number: str, pin: str) -> bool:
        """Check the PIN of a protected document.  True opens it to
        :meth:`send_fax` and :meth:`queue_fax` for the rest of the call."""

    async def send_fax(self, documents: Sequence[str]) -> FaxResult:
        """One-call fax-on-demand: transmit the documents, in order and as
        one fax, on this call now.  The caller's machine must be ready to
        receive, so tell them to press Start first: the engine takes T.30's
        calling role although it answered the call.  Raises
        :class:`ivrflows.fax_types.FaxRefused` (before anything is sent) for
        an unknown document or a protected one not unlocked.  A caller who
        hangs up mid-fax gets a failed result, not :class:`CallerHangup`
        (the next verb raises)."""

    async def receive_fax(self) -> FaxResult:
        """Receive a fax on this call (the engine answers in T.30).  The
        pages are stored, as TIFF and PDF, with the result and delivered as
        the ``[fax]`` section says (e-mail, webhook).  The result reports a
        failed or partial fax too."""

    async def queue_fax(self, number: str, documents: Sequence[str]) -> str:
        """Two-call fax-on-demand: send the documents to fax ``number`` by a
        new call, within the delivery hours, retried until confirmed (each
        retry resumes at the first unconfirmed page).  Returns the job id.
        Raises :class:`ivrflows.fax_types.FaxRefused` as :meth:`send_fax`,
        ValueError for a number that is not a phone number, and
        :class:`ivrflows.fax_types.FaxUnavailable` when two-call is off."""

    async def request_callback(self, number: str, *, queue: str,
                               data: Mapping[str, str] | None = None,
                               at: datetime | None = None) -> str:
        """Book a callback to ``number`` in ``queue``; returns its id.  It
        joins the line at ``at`` (aware), by default now if the route's
        schedule is open, else when it next opens (see
        :func:`ivrflows.schedule.next_opening`)."""

    async def record_survey(self, score: int, *, scale: int = 5,
                            question: str = "satisfaction") -> None:
        """Store a survey answer (1..``scale``) with this call's record, for
        the satisfaction and participation KPIs.  The engine links it to
        the queue and agent of the call's last answered :meth:`enqueue`;
        a score counts as satisfied by :func:`ivrflows.survey.is_satisfied`."""


# -- the one gather policy ---------------------------------------------------------------

Attempt = Callable[[Prompt | None], Awaitable[str]]
Player = Callable[..., Awaitable[str | None]]


def input_is_valid(digits: str, *, min_digits: int, valid: str | None) -> bool:
    return (len(digits) >= max(1, min_digits)
            and (valid is None or re.fullmatch(valid, digits) is not None))


async def gather_with_tries(attempt: Attempt, play: Player, prompt: Prompt | None, *,
                            tries: int, min_digits: int, valid: str | None,
                            invalid_prompt: str | None, no_input_prompt: str | None) -> str:
    """Run ``attempt(prompt)`` (one try: prompt, then collect digits) up to
    ``tries`` times until its digits are valid.

    Implementations of :meth:`Call.gather` call this with their own single
    try; keeping the retry rules here is what makes a flow tested on the
    fake behave the same on SIP.  The feedback prompt plays after every
    failed try, the last one too: it tells the caller why the flow moves on.
    """
    if tries < 1:
        raise ValueError(f"tries must be at least 1, not {tries}")
    if valid is not None:
        re.compile(valid)  # a bad pattern fails on the first call, not on the first caller
    for _ in range(tries):
        digits = await attempt(prompt)
        if input_is_valid(digits, min_digits=min_digits, valid=valid):
            return digits
        feedback = invalid_prompt if digits else no_input_prompt
        if feedback:
            await play(feedback)
    return ""
