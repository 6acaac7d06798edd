"""Supervisors as the queue runtime knows them: who they are, which
queues' calls they may monitor, and which API tokens speak for them.

Built from ``[supervisors.<id>]`` (sipagent/config/supervisors.py); the
monitor session (sipagent/queue/monitoring.py) checks the scope here, so
the API and the phone keypad refuse the same calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


class OutOfScope(PermissionError):
    """The supervisor may not monitor this queue's calls (403 to the API)."""


@dataclass(frozen=True)
class Supervisor:
    supervisor_id: str
    phone: str | None = None          # where an API session rings
    number: str | None = None         # what they key in from another phone
    pin_hash: str | None = None       # None: no keypad identification from another phone
    queues: frozenset[str] | None = None   # None: every queue

    def check_scope(self, queue: str) -> None:
        if self.queues is not None and queue not in self.queues:
            raise OutOfScope(f"queue {queue!r} is outside supervisor {self.supervisor_id!r}'s "
                             f"queues ({', '.join(sorted(self.queues)) or 'none'})")


@dataclass(frozen=True)
class SupervisorDirectory:
    people: Mapping[str, Supervisor] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)   # API token name -> supervisor id

    def for_token(self, token_name: str) -> Supervisor | None:
        sid = self.tokens.get(token_name)
        return None if sid is None else self.people[sid]
