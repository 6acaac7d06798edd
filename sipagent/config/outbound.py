"""The ``[outbound]`` section: click-to-call and call restrictions.

::

    [outbound]
    # How a number is dialled out through the trunk; unset: click-to-call is off.
    uri = "sip:{number}@pbx.example.com"
    caller_id = "+4930123456"      # the From user the called party sees
    caller_name = "ACME Support"   # the From display name; unset: none
    ring_timeout = 30              # seconds the called number may ring
    agent_ring_timeout = 20        # seconds the agent's own phone may ring first

    # Named rules: "deny" patterns refuse a number any of them matches;
    # "allow" patterns (if given) refuse a number none of them matches.
    # Patterns are Python regular expressions searched in the dialled number.
    [outbound.restrictions]
    no_international = { deny = ["^00", "^\\+"] }
    no_premium = { deny = ["^0900", "^0137"] }

    # Which rules apply: to everyone, to a token role's dials, to an agent's.
    [outbound.apply]
    everyone = ["no_premium"]
    roles = { agent = ["no_international"] }
    agents = { alice = ["no_international"] }

A refused number is a 403 naming the rule (``sipagent/queue/restrictions.py``).
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from sipagent.config.values import (ConfigProblems, Name, PositiveSeconds, Section, TokenRole,
                                    as_tuple, matching)
from sipagent.queue.restrictions import Restrictions, Rule

DIAL_PATTERN = r"^sips?:.*\{number\}.*@"
_CALLER_ID = re.compile(r"\+?[0-9A-Za-z*#._-]{1,32}")
# A display name goes between double quotes in From: no quote, backslash or
# control character can break out of them.
_CALLER_NAME = re.compile(r'[^"\\\x00-\x1f\x7f]{1,64}')


def _check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


Pattern = Annotated[str, Field(min_length=1), AfterValidator(_check_pattern)]
Patterns = Annotated[tuple[Pattern, ...], BeforeValidator(as_tuple)]
RuleNames = Annotated[tuple[Name, ...], BeforeValidator(as_tuple)]


class RuleSection(Section):
    deny: Patterns = ()
    allow: Patterns = ()

    @model_validator(mode="after")
    def _says_something(self) -> RuleSection:
        if not self.deny and not self.allow:
            raise ValueError("a rule needs deny or allow patterns")
        return self


class ApplySection(Section):
    everyone: RuleNames = ()
    roles: dict[TokenRole, RuleNames] = {}
    agents: dict[Name, RuleNames] = {}


class OutboundSection(Section):
    uri: Annotated[str, Field(pattern=DIAL_PATTERN)] | None = None
    caller_id: Annotated[str, AfterValidator(matching(
        _CALLER_ID, "bad caller id {!r}: a SIP user part (digits, an optional leading +, "
        "letters, '*#._-'), at most 32 characters"))] | None = None
    caller_name: Annotated[str, AfterValidator(matching(
        _CALLER_NAME, "bad display name {!r}: 1 to 64 characters, no double quote, "
        "backslash or control character"))] | None = None
    ring_timeout: PositiveSeconds = 30.0
    agent_ring_timeout: PositiveSeconds = 20.0
    restrictions: dict[Name, RuleSection] = {}
    apply: ApplySection = Field(default_factory=ApplySection)

    @model_validator(mode="after")
    def _known_rules(self) -> OutboundSection:
        problems = []
        lists = [(("apply", "everyone"), self.apply.everyone)]
        lists += [(("apply", "roles", r), names) for r, names in self.apply.roles.items()]
        lists += [(("apply", "agents", a), names) for a, names in self.apply.agents.items()]
        for where, names in lists:
            for name in names:
                if name not in self.restrictions:
                    problems.append((where, f"unknown rule {name!r} (defined in "
                                     "[outbound.restrictions]: "
                                     f"{', '.join(self.restrictions) or 'none'})"))
        if self.uri and not self.caller_id:
            problems.append((("caller_id",), "required when uri is set (the From user the "
                             "called party sees, e.g. '+4930123456')"))
        if problems:
            raise ConfigProblems(problems)
        return self

    def compiled(self) -> Restrictions:
        """The rules as the runtime checks them (patterns were checked above)."""
        return Restrictions(
            rules={n: Rule.compile(n, r.deny, r.allow) for n, r in self.restrictions.items()},
            everyone=self.apply.everyone, roles=dict(self.apply.roles),
            agents=dict(self.apply.agents))


def outbound_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    return [(("outbound", "apply", "agents", a), f"unknown agent {a!r}")
            for a in config.outbound.apply.agents if a not in config.agents]
