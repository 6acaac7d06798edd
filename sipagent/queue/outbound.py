"""Click-to-call: an agent's call to a number, placed by the engine.

``POST /api/agents/{id}/dial`` asks the desk to call ``number`` for an
agent.  The number is checked against the call restrictions first
(``restrictions.py``): a refused number rings nothing.  Then:

1. the agent's phone (its line's ``uri``) rings.  From this moment the ACD
   core has the agent BUSY (``AgentOutbound``), so no queue call is
   offered to it;
2. the agent answers: the number is dialled through the trunk from the
   caller-id account (``sipagent/sip/caller_id.py``: the configured
   ``caller_id`` is the From user);
3. the customer answers: the two legs become a ``Conversation`` (hold from
   the agent's phone works as on a queue call) until either hangs up;
4. the call is over (``OutboundEnded``): the agent wraps up as after a
   queue call (its own ``wrap_up``, else its first queue's) and then is
   back where it was -- a paused agent returns to paused.

If the agent does not answer its phone (or it cannot be rung), nothing is
dialled and the agent is back at once, without wrap-up.  A busy or unanswered number hangs up the
agent's leg and the agent wraps up.

Results (``sipacd_outbound_calls_total{result}``): ``answered``, ``busy``,
``no_answer`` (the number rang out, or the agent hung up while it rang),
``failed`` (any other refusal, no media, no account), ``agent_no_answer``
and ``refused`` (a restriction; counted by ``refused()``).

Accounting: agent rows OUTBOUND_START (when the agent's phone rings) and
OUTBOUND_END (``reason``: the result), both with the call id; WRAPUP_START
and WRAPUP_END as after a queue call; a call record with ``outcome``
``outbound`` (answered) or ``outbound_<result>``, ``caller`` = the caller
id, ``called`` = the number and no queue.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, Mapping, Protocol

import structlog

from acdcore import events as ev
from sipagent.queue.conversation import Conversation, Move, media_of
from sipagent.queue.restrictions import NO_RESTRICTIONS, Restrictions
from sipagent.sip.leg import CallLeg, LegEnded, dial

log = structlog.get_logger("sipagent.queue.outbound")

MEDIA_WAIT = 5.0
BUSY_CODES = {486, 600}
NO_ANSWER_CODES = {408, 480, 487}
RESULTS = ("answered", "busy", "no_answer", "failed", "agent_no_answer", "refused")
# States from which an agent may dial (acdcore/states.py, "Outbound calls").
MAY_DIAL = ("available", "paused", "wrap_up")


class OutboundLine(Protocol):
    """What the desk needs from the queue runtime, and nothing more."""

    settings: Mapping[str, Any]       # queue name -> config section
    lines: Mapping[str, Any]          # agent id -> AgentLine
    scheduler: Any
    metrics: Any

    def now(self) -> float: ...
    def feed(self, event) -> None: ...
    def spawn(self, coro: Coroutine) -> asyncio.Task: ...
    def track_leg(self, leg: CallLeg) -> None: ...
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg: ...
    def hold_music(self, queue: str): ...


class OutboundOff(RuntimeError):
    """Click-to-call is not configured (``[outbound] uri``)."""


class Refused(RuntimeError):
    def __init__(self, rule: str):
        super().__init__(f"refused by call restriction {rule!r}")
        self.rule = rule


class NotFree(RuntimeError):
    def __init__(self, agent_id: str, state: str):
        super().__init__(f"agent {agent_id!r} cannot dial while {state}")
        self.agent_state = state


@dataclass
class OutboundCall:
    call_id: str
    agent_id: str
    number: str
    started: float                   # wall clock
    stage: str = "ringing_agent"     # ringing_agent, dialling, talking
    agent_leg: CallLeg | None = None
    customer_leg: CallLeg | None = None
    conversation: Conversation | None = None
    answered_at: float | None = None  # loop clock
    legs: list = field(default_factory=list)

    def row(self) -> dict:
        return {"call_id": self.call_id, "direction": "outbound", "number": self.number,
                "stage": self.stage}


class OutboundDesk:
    def __init__(self, line: OutboundLine, account: Callable[[], Any],
                 queue_order: Mapping[str, list[str]], eventlog=None):
        self.line = line
        self._trunk = account
        self._queue_order = queue_order      # agent -> its queues in config order
        self._log = eventlog
        self.settings = None                 # [outbound], by configure()
        self.restrictions: Restrictions = NO_RESTRICTIONS
        self._sip = self._registration = None
        self._caller_account = None
        self.calls: dict[str, OutboundCall] = {}     # by agent id
        counter = line.metrics.outbound_calls
        for result in RESULTS:
            counter.labels(result)

    def configure(self, settings, sip, registration) -> None:
        """The ``[outbound]`` section, ``[sip]`` and the trunk's registration."""
        if settings is self.settings:
            return
        self.settings, self._sip, self._registration = settings, sip, registration
        self.restrictions = settings.compiled()

    def check_number(self, agent_id: str | None, role: str | None, number: str) -> str | None:
        """The rule that refuses ``number``, or None (see restrictions.py)."""
        return self.restrictions.check_number(agent_id, role, number)

    # -- placing a call ------------------------------------------------------------
    def dial(self, agent_id: str, number: str, role: str) -> OutboundCall:
        """Start calling ``number`` for ``agent_id``; KeyError: no such agent."""
        s = self.settings
        if s is None or not s.uri:
            raise OutboundOff("click-to-call is off: [outbound] uri is not configured")
        if agent_id not in self.line.lines:
            raise KeyError(agent_id)
        rule = self.check_number(agent_id, role, number)
        if rule is not None:
            self.refused(agent_id, number, rule)
            raise Refused(rule)
        state = self.line.scheduler.agent_state(agent_id)
        if state not in MAY_DIAL or agent_id in self.calls:
            raise NotFree(agent_id, state)
        call = OutboundCall(f"outbound-{int(time.time())}-{secrets.token_hex(4)}", agent_id,
                            number, time.time())
        self.calls[agent_id] = call
        self._agent_row(call.started, agent_id, "OUTBOUND_START", call.call_id)
        self._record(call.call_id, start=call.started, caller=s.caller_id, called=number,
                     agent=agent_id)
        self.line.feed(ev.AgentOutbound(self.line.now(), agent_id))
        log.info("click-to-call", call_id=call.call_id, agent=agent_id, number=number,
                 before=state)
        self.line.spawn(self._run(call))
        return call

    def refused(self, agent_id: str, number: str, rule: str) -> None:
        self.line.metrics.outbound_calls.labels("refused").inc()
        log.info("number refused by a call restriction", agent=agent_id, number=number,
                 rule=rule)

    async def _run(self, call: OutboundCall) -> None:
        result, side = "failed", "system"
        try:
            result, side = await self._place(call)
        except Exception:
            log.exception("click-to-call failed", call_id=call.call_id)
        finally:
            for leg in call.legs:
                leg.end()
            self._finish(call, result, side)

    async def _place(self, call: OutboundCall) -> tuple[str, str]:
        s = self.settings
        if self._trunk() is None:
            return "failed", "system"
        uri = self.line.lines[call.agent_id].uri
        agent = self._ring(lambda: self.line.dial_out(
            uri, label=f"{call.call_id}->{call.agent_id}",
            headers={"X-Sipacd-Outbound": call.number}), call)
        if agent is None or not await _answered(agent, s.agent_ring_timeout):
            return "agent_no_answer", "agent"
        call.agent_leg, call.stage = agent, "dialling"
        customer = self._ring(lambda: dial(
            self._account(), s.uri.format(number=call.number),
            label=f"{call.call_id}<-{call.agent_id}",
            headers={"X-Sipacd-Outbound": call.call_id}), call)
        if customer is None:
            return "failed", "system"
        call.customer_leg = customer
        outcome = await _customer_answer(customer, agent, s.ring_timeout)
        if outcome != "answered":
            log.info("number not reached", call_id=call.call_id, result=outcome)
            return outcome, "system"
        call.answered_at = self.line.now()
        self._record(call.call_id, answer=time.time())
        if not await media_of([customer, agent], MEDIA_WAIT):
            return "failed", "system"
        call.stage = "talking"
        call.conversation = Conversation(call.call_id, customer, agent, call.agent_id,
                                         music=self._music(call.agent_id), clock=self.line.now)
        call.conversation.start()
        log.info("click-to-call connected", call_id=call.call_id, agent=call.agent_id)
        await asyncio.wait([customer.ended, agent.ended], return_when=asyncio.FIRST_COMPLETED)
        call.conversation.move(Move.END, by="hangup")
        return "answered", "caller" if customer.is_ended else "agent"

    def _ring(self, place: Callable[[], CallLeg], call: OutboundCall) -> CallLeg | None:
        try:
            leg = place()
        except Exception as exc:
            log.warning("click-to-call leg could not be placed", call_id=call.call_id,
                        error=str(exc))
            return None
        self.line.track_leg(leg)
        call.legs.append(leg)
        return leg

    def _finish(self, call: OutboundCall, result: str, side: str) -> None:
        self.calls.pop(call.agent_id, None)
        self.line.metrics.outbound_calls.labels(result).inc()
        now_wall = time.time()
        talk = 0.0 if call.answered_at is None else self.line.now() - call.answered_at
        self._agent_row(now_wall, call.agent_id, "OUTBOUND_END", call.call_id, result)
        talked = call.agent_leg is not None   # the agent got on the call
        wrap, queue = self.wrap_up(call.agent_id) if talked else (0.0, None)
        if talked:
            self._agent_row(now_wall, call.agent_id, "WRAPUP_START", call.call_id, queue=queue)
            if wrap <= 0:   # the core sends no WrapUpEnded for a zero wrap-up
                self._agent_row(now_wall, call.agent_id, "WRAPUP_END", call.call_id,
                                queue=queue)
        self._record(call.call_id, end=now_wall, talk=talk, wrap_up=wrap, hangup_side=side,
                     outcome="outbound" if result == "answered" else f"outbound_{result}")
        log.info("click-to-call over", call_id=call.call_id, agent=call.agent_id,
                 result=result, talk=round(talk, 3))
        self.line.feed(ev.OutboundEnded(self.line.now(), call.agent_id, wrap_up=talked))

    def wrap_up(self, agent_id: str) -> tuple[float, str | None]:
        """The wrap-up after an outbound call, as the core computes it: the
        agent's own, else its first queue's; and that queue (None: own)."""
        own = self.line.lines[agent_id].wrap_up
        queues = self._queue_order.get(agent_id) or []
        if own is not None:
            return own, None
        if not queues:
            return 0.0, None
        return self.line.settings[queues[0]].wrap_up, queues[0]

    def _music(self, agent_id: str):
        queues = self._queue_order.get(agent_id) or list(self.line.settings)
        return self.line.hold_music(queues[0]) if queues else None

    def _account(self):
        """The caller-id account, opened on first use (on the loop thread)."""
        if self._caller_account is None:
            from sipagent.sip.caller_id import CallerIdAccount

            s = self.settings
            self._caller_account = CallerIdAccount.open(
                self._trunk(), self._sip, self._registration, s.caller_id, s.caller_name)
        return self._caller_account

    # -- read-outs and shutdown ---------------------------------------------------------
    def rows(self) -> dict[str, dict]:
        """Agent id -> its live outbound call, for ``GET /api/agents``."""
        return {agent: call.row() for agent, call in self.calls.items()}

    def stop(self) -> None:
        # The caller-id account stays until the engine drops the runtime (and
        # the desk with it) before libDestroy: its legs are still ending now.
        for call in self.calls.values():
            for leg in call.legs:
                leg.end()

    def _agent_row(self, t: float, agent: str, kind: str, call_id: str,
                   reason: str | None = None, queue: str | None = None) -> None:
        if self._log is not None:
            self._log.agent_event(t, agent, kind, queue=queue, reason=reason, call_id=call_id)

    def _record(self, call_id: str, **fields) -> None:
        if self._log is not None:
            self._log.call_record(call_id, **fields)


async def _answered(leg: CallLeg, timeout: float) -> bool:
    try:
        await leg.until_answered(timeout)
    except (LegEnded, TimeoutError):
        leg.end()
        return False
    return True


async def _customer_answer(customer: CallLeg, agent: CallLeg, timeout: float) -> str:
    """``answered``, or why not: ``busy``, ``no_answer``, ``failed``."""
    waiter = asyncio.ensure_future(asyncio.shield(customer.confirmed))
    try:
        await asyncio.wait([waiter, agent.ended], timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if customer.confirmed.done() and customer.confirmed.exception() is None \
            and not agent.is_ended:
        return "answered"
    if customer.confirmed.done() and isinstance(customer.confirmed.exception(), LegEnded):
        code = customer.confirmed.exception().code
        return "busy" if code in BUSY_CODES else \
            "no_answer" if code in NO_ANSWER_CODES else "failed"
    return "no_answer"    # it rang out, or the agent hung up while it rang
