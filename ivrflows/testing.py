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

from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ivrflows.kit.errors import FlowMistake, FlowStalled
from ivrflows.kit.fakecall import FakeCall
from ivrflows.kit.mailbox import FakeMailbox, fake_message
from ivrflows.kit.run import Entry, Flow, FlowRun
from ivrflows.kit.script import (Hangup, Press, QueueScript, Silence, Speak, Step, hangup,
                                 parse_digits, press, silence, speak)
from ivrflows.kit.virtual_time import DEFAULT_START, VirtualLoop
from ivrflows.schedule import Schedule


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
    ``fax_documents`` is the fax library (number -> :class:`ivrflows.kit.fakefax.
    FakeFaxDocument`), ``fax_machine`` the caller's fax machine
    (:class:`ivrflows.kit.fakefax.FakeFaxMachine`), ``fax_two_call`` whether
    :meth:`queue_fax` is available.
    An exception from the flow is re-raised unless ``raise_errors`` is false.
    """
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


__all__ = ["run_flow", "FlowRun", "Entry", "QueueScript", "press", "silence",
           "speak", "hangup", "parse_digits", "FakeCall", "FakeMailbox", "fake_message",
           "FlowMistake", "FlowStalled", "VirtualLoop", "Flow", "Step",
           "DEFAULT_START", "Press", "Silence", "Speak", "Hangup"]
