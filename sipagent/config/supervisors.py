"""The ``[supervisors.<id>]`` tables: the people who monitor agents' calls.

::

    [supervisors.sam]
    phone = "sip:sam@10.0.0.21"   # where an API session rings; calls from its
                                  # user need no number or PIN at the keypad
    number = "900"                # what sam keys in from another phone
    pin = "4242"                  # hashed at load; or a "scrypt$..." hash
    queues = ["sales"]            # whose calls sam may monitor; absent: all

    [http.tokens.sam-console]
    role = "supervisor"
    token = "..."
    supervisor = "sam"            # the token acts as sam: phone and queues from here

Monitoring by phone is the ``[features] monitor`` number
(sipagent/config/features.py, sipagent/calls/supervisor_keypad.py).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

from sipagent.calls.supervisor_keypad import SupervisorKeypadSettings
from sipagent.config.features import AgentNumber, agent_number
from sipagent.config.values import AgentUri, Name, Section, as_tuple
from sipagent.config.voicemail import PinHash
from sipagent.queue.monitoring import Supervisor, SupervisorDirectory

SUPERVISOR_ROLES = ("supervisor", "admin")


class SupervisorSection(Section):
    phone: AgentUri | None = None
    number: AgentNumber | None = None
    pin: PinHash | None = None
    # None: every queue; [] would be no queue at all, which is allowed but odd.
    queues: Annotated[tuple[Name, ...], BeforeValidator(as_tuple)] | None = None

    def person(self, supervisor_id: str) -> Supervisor:
        return Supervisor(supervisor_id, self.phone, self.number, self.pin,
                          None if self.queues is None else frozenset(self.queues))


def supervisor_directory(config) -> SupervisorDirectory:
    """The supervisors and the API tokens that name one, for the runtime."""
    return SupervisorDirectory(
        people={sid: s.person(sid) for sid, s in config.supervisors.items()},
        tokens={name: tok.supervisor for name, tok in config.http.tokens.items()
                if tok.supervisor is not None})


def supervisor_keypad_settings(config, agents=None) -> SupervisorKeypadSettings | None:
    """What the monitor feature flow needs; None without ``[features]``.
    ``agents``: the running ones (file and admin API), else the file's."""
    if config.features is None:
        return None
    numbers = {}
    for agent_id, agent in (config.agents if agents is None else agents).items():
        number = agent_number(agent_id, agent)
        if number is not None:
            numbers[number] = agent_id
    return SupervisorKeypadSettings(
        supervisors=tuple(s.person(sid) for sid, s in config.supervisors.items()),
        agent_numbers=numbers, own_phone_without_pin=config.features.own_phone_without_pin,
        digit_timeout=config.features.digit_timeout)


def supervisor_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks: queues that exist, keypad numbers one supervisor
    owns, tokens that name a known supervisor."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    known = ", ".join(config.queues) or "none"
    owner: dict[str, str] = {}
    for sid, s in config.supervisors.items():
        for i, queue in enumerate(s.queues or ()):
            if queue not in config.queues:
                problems.append((("supervisors", sid, "queues", i),
                                 f"unknown queue {queue!r} (defined queues: {known})"))
        if s.number is not None:
            first = owner.setdefault(s.number, sid)
            if first != sid:
                problems.append((("supervisors", sid, "number"),
                                 f"keypad number {s.number!r} is also supervisors.{first}'s"))
    for name, token in config.http.tokens.items():
        if token.supervisor is None:
            continue
        where = ("http", "tokens", name, "supervisor")
        if token.role not in SUPERVISOR_ROLES:
            problems.append((where, f"only allowed for roles {' and '.join(SUPERVISOR_ROLES)}, "
                                    f"not {token.role!r}"))
        elif token.supervisor not in config.supervisors:
            problems.append((where, f"unknown supervisor {token.supervisor!r} (defined "
                                    f"supervisors: {', '.join(config.supervisors) or 'none'})"))
    return problems
