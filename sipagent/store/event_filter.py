"""Which stream events a consumer gets: its filters and its role's scope.

One predicate for every path an event takes (SSE live, SSE replay from the
file, history, webhooks), so a client that reconnects sees exactly what it
would have seen had it stayed.

- ``types``: exact names (``agent.state_changed``) or ``resource.*``;
- ``queues``: the event's queue is one of them; an event with no queue
  (an agent's state, say) passes when its agent serves one of them
  (``queues_of``, asked at send time);
- ``agents``: the event is about the agent, or about a call the agent was
  offered or connected to (as of that event; ``StreamItem.audience``),
  except another agent's own ``agent.*`` and ``wrapup.*`` events;
- the caller's scope narrows further by the same two rules: an agent-role
  caller is ``agents = {itself}``, a supervisor scoped to queues is
  ``queues = its queues``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from sipagent.store.public_events import EVENT_TYPES

__all__ = ["StreamItem", "EventFilter", "BadFilter", "parse_types"]

_PATTERN = re.compile(r"[a-z_]+\.(\*|[a-z_]+)")
# About one agent: never shown to another for sharing a call with it.
_PERSONAL = ("agent.", "wrapup.")
_RESOURCES = frozenset(t.split(".")[0] for t in EVENT_TYPES)


class BadFilter(ValueError):
    """A filter value that names nothing; the message says which and why."""


@dataclass(slots=True)
class StreamItem:
    """One committed event: its columns, its JSON and (live only) the agents
    of its call at the time it was published."""
    seq: int
    type: str
    queue: str | None
    agent: str | None
    call_id: str | None
    body: str
    audience: frozenset[str] | None = None   # None: not known in memory (read from the file)
    _wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The event as an SSE frame, encoded once for every client."""
        if self._wire is None:
            self._wire = f"id: {self.seq}\nevent: {self.type}\ndata: {self.body}\n\n".encode()
        return self._wire

    def as_dict(self) -> dict:
        return json.loads(self.body)


def parse_types(values: Iterable[str], key: str = "type") -> frozenset[str]:
    """Type filters, each an exact known type or ``resource.*``."""
    out = set()
    for value in values:
        value = value.strip()
        if not _PATTERN.fullmatch(value):
            raise BadFilter(f"{key}: {value!r} is not an event type (resource.verb or resource.*)")
        resource, verb = value.split(".")
        if verb == "*" and resource not in _RESOURCES:
            raise BadFilter(f"{key}: no event type starts with {resource + '.'!r}")
        if verb != "*" and value not in EVENT_TYPES:
            raise BadFilter(f"{key}: unknown event type {value!r}")
        out.add(value)
    return frozenset(out)


class EventFilter:
    def __init__(self, *, types: frozenset[str] = frozenset(),
                 queues: frozenset[str] | None = None, agents: frozenset[str] | None = None,
                 queues_of: Callable[[str], Iterable[str]] = lambda agent: ()):
        self.exact = frozenset(t for t in types if not t.endswith(".*"))
        self.prefixes = tuple(t[:-1] for t in types if t.endswith(".*"))
        self.any_type = not types
        self.queues = queues
        self.agents = agents
        self.queues_of = queues_of

    @property
    def everything(self) -> bool:
        return self.any_type and self.queues is None and self.agents is None

    def narrowed(self, *, queues: frozenset[str] | None = None,
                 agents: frozenset[str] | None = None) -> EventFilter:
        """This filter within a caller's scope (intersections)."""
        f = EventFilter(queues_of=self.queues_of)
        f.exact, f.prefixes, f.any_type = self.exact, self.prefixes, self.any_type
        f.queues = _meet(self.queues, queues)
        f.agents = _meet(self.agents, agents)
        return f

    def type_ok(self, type_: str) -> bool:
        return self.any_type or type_ in self.exact or type_.startswith(self.prefixes)

    def match(self, item: StreamItem, audience: Callable[[StreamItem], frozenset[str]]) -> bool:
        """``audience(item)``: the agents of the item's call as of the item."""
        if not self.type_ok(item.type):
            return False
        if self.queues is not None:
            if item.queue is not None:
                if item.queue not in self.queues:
                    return False
            elif item.agent is None or not self.queues.intersection(self.queues_of(item.agent)):
                return False
        if self.agents is not None and item.agent not in self.agents:
            if item.call_id is None or item.type.startswith(_PERSONAL) \
                    or not self.agents.intersection(audience(item)):
                return False
        return True


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    return a if b is None else a & b
