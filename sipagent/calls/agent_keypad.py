"""Agents steer their ACD state from a phone keypad: the built-in feature flow.

An agent dials a feature number at the engine (``[features]``: ``*71`` log
in, ``*72`` log out, ``*73`` pause, ``*74`` ready, ``*75`` wrap-up done by
default); the config turns each number into a route whose flow spec is
``agent_keypad:<command>``, and the engine hands such a call to
:meth:`AgentKeypad.run` instead of the flow library.

What the agent is asked::

    from another phone      agent number #, PIN #       (3 tries a call)
    from the agent's phone  PIN #  to log in; nothing for the other
                            commands unless own_phone_without_pin = false
    pause, with reasons     reason code (one key)       [features.pause_reasons]

"The agent's phone" is a call whose From user is the user of exactly one
agent's ``uri``.  The From header is only as trustworthy as the trunk that
sets it (the engine takes calls from allow-listed sources only), which is
why logging in always needs the PIN: a forged From can at most log an
agent out or pause them, which the agent sees at once.

The command is what ``POST /api/agents/<id>/<command>`` does, through the
same :meth:`QueueRuntime.agent_command` (so the event log gets the same
LOGIN/LOGOUT/PAUSE rows).  A command the agent's state does not allow (pause
while logged out) is refused with a spoken reason and changes nothing.
Wrong PINs count toward the agent's lockout in
:class:`sipagent.store.keypad_lockout.KeypadLockout`.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from acdcore.states import AGENT_INPUT_NAMES, AGENT_STATE_NAMES, AGENT_TRANSITIONS
from ivrflows.call import CallerHangup
from sipagent.calls.pickup_flow import PICKUP_COMMANDS, PhonePickup
from sipagent.metrics import KEYPAD_COMMANDS
from sipagent.sip.message import uri_user
from sipagent.store.database import StorePlace
from sipagent.store.keypad_lockout import KeypadLockout

if TYPE_CHECKING:
    from sipagent.metrics import EngineMetrics
    from sipagent.queue.runtime import QueueRuntime

FLOW_MODULE = "agent_keypad"
LOGIN_TRIES = 3
NUMBER_DIGITS = 12
INTER_DIGIT_TIMEOUT = 4.0

# The ACD input each command is; the agent state table says where it may go.
COMMAND_INPUTS = {"login": "login", "logout": "logout", "ready": "ready", "pause": "pause",
                  "end_wrap_up": "wrap_done"}


def feature_flow(command: str) -> str:
    """The flow spec a feature number's route carries."""
    return f"{FLOW_MODULE}:{command}"


def command_allowed(command: str, state: str) -> bool:
    moves = AGENT_TRANSITIONS[AGENT_STATE_NAMES.index(state)]
    return AGENT_INPUT_NAMES.index(COMMAND_INPUTS[command]) in moves


def state_prompt(state: str) -> str:
    """The prompt that tells an agent the state they are in."""
    return "agent-state-" + state.replace("_", "-")


@dataclass(frozen=True)
class KeypadAgent:
    agent_id: str
    uri: str
    number: str | None = None        # what the agent keys in; None: only from their phone
    pin_hash: str | None = None      # None: no keypad login


@dataclass(frozen=True)
class KeypadSettings:
    agents: tuple[KeypadAgent, ...]
    pause_reasons: Mapping[str, str] = field(default_factory=dict)   # key -> reason
    pin_attempts: int = 3
    lockout: float = 900.0
    own_phone_without_pin: bool = True
    digit_timeout: float = 8.0
    directed_pickup: str = "**"      # the number before the ringing agent's (pickup_flow.py)


class AgentKeypad:
    def __init__(self, settings: KeypadSettings, queues: QueueRuntime, lockout: KeypadLockout,
                 metrics: EngineMetrics):
        self.settings, self.queues, self.lockout, self.metrics = settings, queues, lockout, metrics
        self._by_number = {a.number: a for a in settings.agents if a.number}
        users: dict[str, list[KeypadAgent]] = {}
        for a in settings.agents:
            users.setdefault(uri_user(a.uri), []).append(a)
        # A user part two agents share names neither: they are asked who they are.
        self._by_phone = {user: agents[0] for user, agents in users.items()
                          if user and len(agents) == 1}
        # Pickup shares who-is-calling: the agent whose phone it is.
        self.pickup = PhonePickup(self._by_phone, self._by_number, queues,
                                  directed_prefix=settings.directed_pickup,
                                  digit_timeout=settings.digit_timeout)

    @classmethod
    def open(cls, data_dir: StorePlace | Path, settings: KeypadSettings | None,
             queues: QueueRuntime, metrics: EngineMetrics) -> AgentKeypad | None:
        """None when the config has no ``[features]``."""
        if settings is None:
            return None
        lockout = KeypadLockout(data_dir, pin_attempts=settings.pin_attempts,
                                lockout=settings.lockout)
        return cls(settings, queues, lockout, metrics)

    def close(self) -> None:
        self.lockout.close()

    def serves(self, spec: str) -> bool:
        module, _, command = spec.partition(":")
        return module == FLOW_MODULE and (command in KEYPAD_COMMANDS
                                          or command in PICKUP_COMMANDS)

    # -- the call ------------------------------------------------------------------------
    async def run(self, call, spec: str) -> None:
        command = spec.partition(":")[2]
        if command in PICKUP_COMMANDS:
            return await self.pickup.run(call, command)
        try:
            await call.answer()
            agent, result = await self._identify(call, command)
            if agent is not None:
                result = await self._apply(call, agent, command)
        except CallerHangup:
            self._count(call, command, "hung_up")
            raise
        self._count(call, command, result)
        await call.hangup()

    def _count(self, call, command: str, result: str) -> None:
        self.metrics.keypad_commands.labels(command, result).inc()
        call.log.info("agent keypad command", command=command, result=result)

    async def _identify(self, call, command: str) -> tuple[KeypadAgent | None, str]:
        """The agent the caller proved to be, or None and why not."""
        own = self._by_phone.get(call.caller or "")
        if own is not None and command != "login" and self.settings.own_phone_without_pin:
            return own, "ok"
        for _ in range(LOGIN_TRIES):
            agent = own
            if own is None:
                number = await self._digits(call, "agent-enter-number")
                if not number:
                    return None, "no_input"
                agent = self._by_number.get(number)
            pin = await self._digits(call, "agent-enter-pin")
            if not pin:
                return None, "no_input"
            # An unknown number costs a PIN check too: the answer and its
            # timing must not tell a guesser which numbers exist.
            check = await asyncio.to_thread(self.lockout.check, agent and agent.agent_id, pin,
                                            agent and agent.pin_hash)
            if check == "ok":
                call.log.info("agent keypad login", agent=agent.agent_id)
                return agent, "ok"
            if check == "locked":
                await call.play("agent-locked")
                return None, "locked"
            await call.play("agent-login-incorrect")
        return None, "wrong_pin"

    async def _digits(self, call, prompt: str) -> str:
        return await call.gather(prompt, max_digits=NUMBER_DIGITS,
                                 timeout=self.settings.digit_timeout,
                                 inter_digit_timeout=INTER_DIGIT_TIMEOUT, tries=2,
                                 no_input_prompt="agent-no-input")

    async def _apply(self, call, agent: KeypadAgent, command: str) -> str:
        reason = ""
        if command == "pause" and self.settings.pause_reasons:
            if not await self._allowed(call, agent, command):
                return "refused"
            keys = "".join(sorted(self.settings.pause_reasons))
            code = await call.gather("agent-enter-reason", max_digits=1,
                                     timeout=self.settings.digit_timeout, tries=2,
                                     valid=f"[{keys}]", invalid_prompt="invalid",
                                     no_input_prompt="agent-no-input")
            if not code:
                return "no_input"
            reason = self.settings.pause_reasons[code]
        # Checked again with no await before the command: the state may have
        # moved (a call offered, say) while the agent was keying.
        if not await self._allowed(call, agent, command):
            return "refused"
        self.queues.agent_command(agent.agent_id, command, reason)
        after = self.queues.scheduler.agent_state(agent.agent_id)
        if command == "pause" and after != "paused":
            await call.play("agent-pause-pending")     # on a call: paused when it ends
        else:
            await call.play(state_prompt(after))
        if reason:
            await call.say(reason)
        return "ok"

    async def _allowed(self, call, agent: KeypadAgent, command: str) -> bool:
        state = self.queues.scheduler.agent_state(agent.agent_id)
        if command_allowed(command, state):
            return True
        call.log.info("agent keypad command refused", agent=agent.agent_id, command=command,
                      state=state)
        await call.play("agent-not-now", state_prompt(state))
        return False
