"""Call restrictions: which numbers an agent may dial out.

A *rule* has a name and number patterns (regular expressions, searched in
the number as dialled, e.g. ``^00`` or ``^\\+``):

* ``deny``: the rule refuses a number that any of them matches;
* ``allow``: when given, the rule refuses a number that none of them
  matches (a white list: "local numbers only").

Which rules apply to a dial is the union of the rules for everyone, for the
role of the token that asked (``admin``, ``supervisor``, ``agent``), and for
the agent whose phone the call is placed from.  A number is refused by the
first applicable rule that refuses it, in that order (everyone, role, agent;
inside each, as listed), and nothing is dialled; the refusal names the rule.

Pure (no I/O): the click-to-call desk checks every number with it before an
agent's phone rings, and a transfer to a number can do the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Rule:
    name: str
    deny: tuple[re.Pattern, ...] = ()
    allow: tuple[re.Pattern, ...] = ()

    @classmethod
    def compile(cls, name: str, deny: Iterable[str] = (), allow: Iterable[str] = ()) -> "Rule":
        """re.error for a bad pattern (the config names the key)."""
        return cls(name, tuple(re.compile(p) for p in deny), tuple(re.compile(p) for p in allow))

    def refuses(self, number: str) -> bool:
        if any(p.search(number) for p in self.deny):
            return True
        return bool(self.allow) and not any(p.search(number) for p in self.allow)


@dataclass(frozen=True)
class Restrictions:
    rules: Mapping[str, Rule] = field(default_factory=dict)
    everyone: tuple[str, ...] = ()
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    agents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applying(self, agent_id: str | None, role: str | None) -> list[Rule]:
        names = [*self.everyone, *self.roles.get(role or "", ()),
                 *self.agents.get(agent_id or "", ())]
        return [self.rules[n] for n in dict.fromkeys(names)]

    def check_number(self, agent_id: str | None, role: str | None, number: str) -> str | None:
        """The name of the rule that refuses ``number`` for this agent and
        role, or None when it may be dialled."""
        for rule in self.applying(agent_id, role):
            if rule.refuses(number):
                return rule.name
        return None


NO_RESTRICTIONS = Restrictions()
