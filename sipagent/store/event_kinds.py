"""What the event log's rows may say: the kinds of event, the fields each
must carry, and the checks every row passes before it is queued (in the
caller's thread: a bad row fails there, never in the writer).

Event kinds
-----------
Caller side (``queue_event``; ``queue`` and ``call_id`` always set):

``ENTER``               the call entered ``queue`` (counts as offered).
                        ``position``: its place on entry, 1 = head;
                        ``data.priority``: its priority there.
``OFFER``               ``agent``'s phone starts ringing with the call.
``RINGNOANSWER``        the offer to ``agent`` ended unanswered; ``reason``:
                        ``ring_timeout``, ``rejected``, ``busy``, or a cancel
                        reason of the core (``answered_elsewhere``...).
``CONNECT``             ``agent`` answered; ``wait`` = seconds since ENTER
                        (the value the answer-wait histogram observed).
``COMPLETE_CALLER``     the connected call ended, the caller hung up first.
``COMPLETE_AGENT``      the connected call ended, the agent hung up first.
``COMPLETE_SYSTEM``     the connected call was ended by the engine; ``reason``
                        (``engine_restart``: closed out after a crash, see
                        ``closeout``).  Not counted in AHT.
``ABANDON``             the caller hung up while waiting; ``wait``, and
                        ``position`` at hang-up.
``EXIT``                the call left the queue unanswered for ``reason``:
                        ``timeout``, ``full``, ``empty`` (no agents),
                        ``exit_key``, ``voicemail``, ``callback``,
                        ``shutdown``...; ``wait`` as for ABANDON.
``TRANSFER``            ``agent`` transferred the connected call (it ends the
                        agent's talk, like COMPLETE_AGENT); ``reason``:
                        ``blind`` or ``attended``; ``data``: ``mode``,
                        ``from`` (the agent), ``to`` (the target),
                        ``origin`` (``api`` or ``phone``).  A transfer into
                        another queue is a new ENTER there (offered again,
                        as in app_queue), with the same ``call_id``.
``TRANSFER_FAILED``     the target of that transfer did not take the caller;
                        ``reason``: ``busy``, ``no_answer``, ``failed``; the
                        caller went to the fallback.
``HOLD``, ``UNHOLD``    ``agent`` put the caller on hold / took it off;
                        UNHOLD's ``wait`` is the seconds held.
``MONITOR_START``       a supervisor (``data.supervisor``) joined ``agent``'s
                        call; ``reason``: ``listen``, ``whisper`` or ``barge``.
``MONITOR_MODE``        the supervisor switched to the mode in ``reason``.
``MONITOR_END``         the session ended; ``wait``: its length in seconds.
``RECORDING_START``     the conversation is recorded (``data.recording``: the
                        recording id; ``reason``: ``policy`` or ``demand``).
``RECORDING_PAUSE``,    recording paused (silence in the file) / resumed.
``RECORDING_RESUME``
``RECORDING_STOP``      the recording's record was written; ``wait``: seconds.
``CALLBACK_REQUESTED``  the caller asked to be called back.  Informational:
                        the caller also leaves with EXIT ``callback``.
``CALLBACK_ATTEMPT``    the engine dials the customer back (``agent`` if one
                        is already on the line).
``CALLBACK_NO_ANSWER``  that attempt went unanswered; another follows later.
``CALLBACK_CONNECTED``  the customer answered the callback (``agent``).

A callback request keeps one ``call_id`` through all its attempts, and has
one outcome: a key pressed in the queue is EXIT ``callback`` at once (the
live call's outcome, KPI.md's "callback requested"); a web request is
offered (ENTER) when it joins, and ends in CONNECT when a customer
answers or EXIT ``callback_no_answer`` after the last attempt.  Its call
record's outcome is the last attempt's: ``answered``,
``callback_no_answer`` or the queue's exit reason.

Every ENTER ends in exactly one CONNECT, ABANDON or EXIT (KPI.md's
"answered, abandoned, or exited with a reason").  CONNECT, COMPLETE_*,
OFFER and RINGNOANSWER need ``agent``; CONNECT and ABANDON need ``wait``,
EXIT and COMPLETE_SYSTEM a ``reason``.

Agent side (``agent_event``; ``queue`` only when the event is about one
queue, e.g. a per-queue login):

``LOGIN`` (the agent is available, as in the core), ``LOGOUT``, ``READY``,
``PAUSE`` (``reason``), ``UNPAUSE``, ``WRAPUP_START`` (``call_id`` of the
call whose after-call work this is), ``WRAPUP_END``.  The runtime logs
WRAPUP_START when an agent's call ends and WRAPUP_END when the wrap-up is
over, both at once for a zero wrap-up: a handled call counts (AHT) when
its wrap-up ends.

``OUTBOUND_START`` (``call_id``) the agent's phone starts ringing for a
click-to-call (``sipagent/queue/outbound.py``): from here the agent takes
no queue calls.  ``OUTBOUND_END`` (``call_id``; ``reason``: ``answered``,
``busy``, ``no_answer``, ``failed`` or ``agent_no_answer``) the call is
over; unless the agent never answered its own phone (``agent_no_answer``,
or ``failed`` before it answered) WRAPUP_START and WRAPUP_END follow as
after a queue call, with the same ``call_id`` and the ``queue`` whose
wrap-up time applied (none when the agent's own did).  Its call record has
no queue, ``caller`` = the caller id sent, ``called`` = the number, and
``outcome`` ``outbound`` (answered) or ``outbound_<reason>``: the
direction is in the outcome.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["QUEUE_EVENT_KINDS", "AGENT_EVENT_KINDS", "NEEDS_AGENT", "NEEDS_REASON",
           "NEEDS_WAIT", "opt_str", "req_str", "opt_float", "wall_time"]

QUEUE_EVENT_KINDS = frozenset({
    "ENTER", "OFFER", "RINGNOANSWER", "CONNECT", "COMPLETE_CALLER", "COMPLETE_AGENT",
    "COMPLETE_SYSTEM", "ABANDON", "EXIT", "TRANSFER", "CALLBACK_REQUESTED", "CALLBACK_ATTEMPT",
    "CALLBACK_NO_ANSWER", "CALLBACK_CONNECTED", "TRANSFER_FAILED", "HOLD", "UNHOLD",
    "MONITOR_START", "MONITOR_MODE", "MONITOR_END", "RECORDING_START", "RECORDING_PAUSE",
    "RECORDING_RESUME", "RECORDING_STOP",
})
AGENT_EVENT_KINDS = frozenset({
    "LOGIN", "LOGOUT", "READY", "PAUSE", "UNPAUSE", "WRAPUP_START", "WRAPUP_END",
    "OUTBOUND_START", "OUTBOUND_END",
})
NEEDS_AGENT = frozenset({"OFFER", "RINGNOANSWER", "CONNECT", "COMPLETE_CALLER",
                         "COMPLETE_AGENT", "COMPLETE_SYSTEM", "TRANSFER", "HOLD", "UNHOLD",
                         "MONITOR_START", "MONITOR_MODE", "MONITOR_END", "RECORDING_START",
                         "RECORDING_PAUSE", "RECORDING_RESUME", "RECORDING_STOP"})
NEEDS_REASON = frozenset({"EXIT", "COMPLETE_SYSTEM"})
# The waits the SL and ASA are computed from: the runtime's own measure
# (monotonic clock), the same number its wait histograms observe.
NEEDS_WAIT = frozenset({"CONNECT", "ABANDON"})


def opt_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def req_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


def opt_float(name: str, value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    if math.isnan(f):
        raise ValueError(f"{name} is NaN")
    return f


def wall_time(value: Any) -> float:
    t = float(value)
    if not math.isfinite(t):
        raise ValueError(f"t_wall must be finite, got {value!r}")
    return t
