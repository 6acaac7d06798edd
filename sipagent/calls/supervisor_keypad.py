"""Supervisors monitor an agent's call from a phone keypad: the built-in
feature flow behind ``[features] monitor`` (``*77`` by default).

What the supervisor is asked::

    from another phone        supervisor number #, PIN #   (3 tries a call)
    from their own phone      nothing (unless own_phone_without_pin = false)
    then                      the agent's number #

The engine looks up the agent's connected queue call and the supervisor's
own call becomes the supervisor leg of a monitor session in listen mode:
no second call rings.  From there it is the API's session
(:meth:`sipagent.queue.monitoring.Monitoring.monitor_leg`): digits switch
modes (``[monitor.keys]``), hanging up ends it, and the monitored call's
end hangs the supervisor up.  Refusals are spoken, then the engine hangs
up: no such agent, the agent not on a call, a call outside the
supervisor's ``queues``, a call already monitored.

"Their own phone" is a call whose From user is the user of exactly one
supervisor's ``phone``; wrong PINs count toward the same lockout store as
agents' keypad PINs (under ``supervisor:<id>``, so an agent and a
supervisor with one id do not share a count).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from ivrflows.call import CallerHangup
from sipagent.queue.conversation import Monitor, NotConnected
from sipagent.queue.monitoring import OutOfScope, Supervisor
from sipagent.sip.message import uri_user

if TYPE_CHECKING:
    from sipagent.queue.operations import CallOperations
    from sipagent.store.keypad_lockout import KeypadLockout

FLOW_MODULE = "supervisor_keypad"
MONITOR_FLOW = f"{FLOW_MODULE}:monitor"
LOGIN_TRIES = 3
NUMBER_DIGITS = 12
INTER_DIGIT_TIMEOUT = 4.0


@dataclass(frozen=True)
class SupervisorKeypadSettings:
    supervisors: tuple[Supervisor, ...]
    agent_numbers: Mapping[str, str]          # keypad number -> agent id
    own_phone_without_pin: bool = True
    digit_timeout: float = 8.0


class SupervisorKeypad:
    def __init__(self, settings: SupervisorKeypadSettings, operations: CallOperations,
                 lockout: KeypadLockout):
        self.settings, self.operations, self.lockout = settings, operations, lockout
        self._by_number = {s.number: s for s in settings.supervisors if s.number}
        users: dict[str, list[Supervisor]] = {}
        for s in settings.supervisors:
            if s.phone:
                users.setdefault(uri_user(s.phone), []).append(s)
        self._by_phone = {user: people[0] for user, people in users.items()
                          if user and len(people) == 1}

    def serves(self, spec: str) -> bool:
        return spec == MONITOR_FLOW

    async def run(self, call, spec: str) -> None:
        try:
            await call.answer()
            person, result = await self._identify(call)
            if person is not None:
                result = await self._monitor(call, person)
        except CallerHangup:
            result = "hung_up"
        call.log.info("supervisor keypad monitor", result=result)
        await call.hangup()

    async def _identify(self, call) -> tuple[Supervisor | None, str]:
        own = self._by_phone.get(call.caller or "")
        if own is not None and self.settings.own_phone_without_pin:
            return own, "ok"
        for _ in range(LOGIN_TRIES):
            person = own
            if own is None:
                number = await self._digits(call, "supervisor-enter-number")
                if not number:
                    return None, "no_input"
                person = self._by_number.get(number)
            pin = await self._digits(call, "agent-enter-pin")
            if not pin:
                return None, "no_input"
            # An unknown number costs a PIN check too (no timing oracle).
            key = person and f"supervisor:{person.supervisor_id}"
            check = await asyncio.to_thread(self.lockout.check, key, pin,
                                            person and person.pin_hash)
            if check == "ok":
                return person, "ok"
            if check == "locked":
                await call.play("agent-locked")
                return None, "locked"
            await call.play("supervisor-login-incorrect")
        return None, "wrong_pin"

    async def _monitor(self, call, person: Supervisor) -> str:
        number = await self._digits(call, "supervisor-enter-agent")
        if not number:
            return "no_input"
        agent_id = self.settings.agent_numbers.get(number)
        call_id = agent_id and self.operations.agent_call(agent_id)
        if not call_id:
            await call.play("supervisor-agent-not-on-call")
            return "not_on_call" if agent_id else "unknown_agent"
        try:
            call.log.info("supervisor monitors by keypad", supervisor=person.supervisor_id,
                          agent=agent_id, monitored=call_id)
            await self.operations.monitor_leg(call_id, call.leg, Monitor.LISTEN, person=person)
        except OutOfScope as exc:
            call.log.info("monitor refused", supervisor=person.supervisor_id, error=str(exc))
            await call.play("supervisor-not-your-queue")
            return "refused"
        except NotConnected as exc:      # it ended, or another supervisor is on it
            call.log.info("monitor refused", supervisor=person.supervisor_id, error=str(exc))
            await call.play("supervisor-cannot-monitor")
            return "refused"
        return "ok"

    async def _digits(self, call, prompt: str) -> str:
        return await call.gather(prompt, max_digits=NUMBER_DIGITS,
                                 timeout=self.settings.digit_timeout,
                                 inter_digit_timeout=INTER_DIGIT_TIMEOUT, tries=2,
                                 no_input_prompt="agent-no-input")
