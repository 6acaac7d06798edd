"""The ``[features]`` section: the numbers agents dial to steer their ACD state.

::

    [features]
    login = "*71"                 # agent number and PIN (the PIN only from their phone)
    logout = "*72"
    pause = "*73"
    ready = "*74"
    end_wrap_up = "*75"
    pickup = "*8"                 # the oldest call ringing in one of the agent's queues
    directed_pickup = "**"        # then the ringing agent's number (or dial **1002)
    monitor = "*77"               # supervisors: agent number, then listen (1/2/3 switch)
    pin_attempts = 3              # wrong PINs in a row before...
    lockout = 900                 # ...the agent's keypad login is locked (seconds)
    own_phone_without_pin = true  # logout/pause/ready/done from the agent's phone
    digit_timeout = 8             # seconds to start keying

    [features.pause_reasons]      # reason code (one key) -> reason
    1 = "lunch"
    2 = "training"

    [agents.alice]
    number = "1001"               # what alice keys in; an all-digit agent id is its own
    pin = "4711"                  # hashed at load; or a "scrypt$..." hash

Without a ``[features]`` table there are no feature numbers.  Each number
becomes an exact route to the built-in flow (``sipagent/calls/agent_keypad.py``;
the pickups: ``sipagent/calls/pickup_flow.py``):
it must not be another route's number, and like any exact number it wins over
regex routes.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Mapping

from pydantic import AfterValidator, Field, model_validator

from sipagent.calls.agent_keypad import KeypadAgent, KeypadSettings, feature_flow
from sipagent.calls.pickup_flow import PICKUP_COMMANDS
from sipagent.calls.supervisor_keypad import MONITOR_FLOW
from sipagent.config.values import ConfigProblems, PositiveSeconds, Section, matching
from sipagent.metrics import KEYPAD_COMMANDS

FEATURE_COMMANDS = KEYPAD_COMMANDS + PICKUP_COMMANDS
_FEATURE_NUMBER = re.compile(r"[0-9*#+]{1,32}")
_AGENT_NUMBER = re.compile(r"[0-9]{1,12}")
_check_reason_key = matching(re.compile(r"[0-9]"), "bad reason code {!r}: one key, 0-9")

FeatureNumber = Annotated[str, AfterValidator(matching(
    _FEATURE_NUMBER, "bad feature number {!r}: use digits, '*', '#' and '+' (at most 32)"))]
AgentNumber = Annotated[str, AfterValidator(matching(
    _AGENT_NUMBER, "bad agent number {!r}: 1 to 12 digits"))]


class FeaturesSection(Section):
    login: FeatureNumber = "*71"
    logout: FeatureNumber = "*72"
    pause: FeatureNumber = "*73"
    ready: FeatureNumber = "*74"
    end_wrap_up: FeatureNumber = "*75"
    # Call pickup from the agent's own phone (no PIN): the oldest call ringing
    # in the agent's queues, or ``directed_pickup`` + the ringing agent's number.
    pickup: FeatureNumber = "*8"
    directed_pickup: FeatureNumber = "**"
    # Supervisors monitor an agent's call (sipagent/calls/supervisor_keypad.py).
    monitor: FeatureNumber = "*77"
    # Reasons show in /api/agents and in the event log's PAUSE rows; the
    # API allows 64 characters for one, and so does the file.
    pause_reasons: dict[Annotated[str, AfterValidator(_check_reason_key)],
                        Annotated[str, Field(min_length=1, max_length=64)]] = {}
    pin_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    lockout: PositiveSeconds = 900.0
    own_phone_without_pin: bool = True
    digit_timeout: PositiveSeconds = 8.0

    @model_validator(mode="after")
    def _distinct_numbers(self) -> FeaturesSection:
        first: dict[str, str] = {}
        problems = []
        for command in (*FEATURE_COMMANDS, "monitor"):
            number = getattr(self, command)
            if number in first:
                problems.append(((command,), f"{number!r} is also features.{first[number]}"))
            first.setdefault(number, command)
        if problems:
            raise ConfigProblems(problems)
        return self

    def numbers(self) -> dict[str, str]:
        """Feature number -> the agent command it runs."""
        return {getattr(self, command): command for command in FEATURE_COMMANDS}

    def flows(self) -> dict[str, tuple[str, str]]:
        """Feature number -> (its key here, the built-in flow spec it runs)."""
        out = {number: (command, feature_flow(command))
               for number, command in self.numbers().items()}
        out[self.monitor] = ("monitor", MONITOR_FLOW)
        return out

    def keypad(self, agents: Mapping[str, Any]) -> KeypadSettings:
        """What the keypad flow needs, as it takes it."""
        return KeypadSettings(
            agents=tuple(KeypadAgent(agent_id, a.uri, agent_number(agent_id, a), a.pin)
                         for agent_id, a in agents.items()),
            pause_reasons=dict(self.pause_reasons), pin_attempts=self.pin_attempts,
            lockout=self.lockout, own_phone_without_pin=self.own_phone_without_pin,
            digit_timeout=self.digit_timeout)


def agent_number(agent_id: str, agent) -> str | None:
    """What the agent keys in: ``number``, else an all-digit id itself."""
    if agent.number is not None:
        return agent.number
    return agent_id if _AGENT_NUMBER.fullmatch(agent_id) else None


def feature_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks for ``sipagent.config.models``: feature numbers
    that are also routes, agents that share a keypad number."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if config.features is not None:
        routes = {r.number: i for i, r in reversed(list(enumerate(config.routes)))
                  if r.match == "exact"}
        for number, (command, _) in config.features.flows().items():
            if number in routes:
                problems.append((("features", command),
                                 f"{number!r} is also the number of routes[{routes[number]}]"))
    owner: dict[str, str] = {}
    for agent_id, agent in config.agents.items():
        number = agent_number(agent_id, agent)
        if number is None:
            continue
        first = owner.setdefault(number, agent_id)
        if first != agent_id:
            problems.append((("agents", agent_id, "number"),
                             f"keypad number {number!r} is also agents.{first}'s"))
    return problems
