"""Agents kept in the people store: the ones the admin API made or changed.

How the config file and the database combine
--------------------------------------------
The file's ``[agents.<id>]`` tables are the seed.  At each start:

- an agent the admin API never touched (``origin`` ``config``) is as the
  file says: edit the file and restart, the change applies;
- once the admin API created or edited an agent (``origin`` ``admin``) the
  database wins: the file's table for that id no longer changes it;
- an agent removed through the admin API stays removed (a tombstone row),
  even though the file still names it, until the admin API creates it
  again;
- an agent of the file that the admin API never touched and that the file
  no longer names is gone (its row follows the file).

So the running set is: the file's agents, minus tombstones, with admin
rows replacing the file's, plus the agents only the database has.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

from sipagent.store.audit import record
from sipagent.store.database import Database


@dataclass(frozen=True)
class AgentSpec:
    """One agent as configured: what the ACD, its line and its keypad need."""
    agent: str
    uri: str
    name: str | None = None
    queues: Mapping[str, int] = field(default_factory=dict)   # queue -> penalty
    skills: Mapping[str, int] = field(default_factory=dict)
    wrap_up: float | None = None
    auto_login: bool = True
    weight: int = 1
    talk_limit: float | None = None
    number: str | None = None
    pin_hash: str | None = None

    def public(self) -> dict:
        """For the API and the audit trail: the PIN hash never, only whether set."""
        out = asdict(self)
        out["queues"], out["skills"] = dict(self.queues), dict(self.skills)
        out["pin"] = out.pop("pin_hash") is not None
        return out

    @property
    def pin(self) -> str | None:
        """The PIN hash, under the name the keypad settings read (config/features.py)."""
        return self.pin_hash

    def with_(self, **changes) -> AgentSpec:
        return replace(self, **changes)


def _load(text: str) -> AgentSpec:
    return AgentSpec(**json.loads(text))


def _dump(spec: AgentSpec) -> str:
    data = asdict(spec)
    data["queues"], data["skills"] = dict(spec.queues), dict(spec.skills)
    return json.dumps(data, sort_keys=True)


class AgentBook:
    def __init__(self, db: Database, clock):
        self.db = db
        self.clock = clock

    def seed(self, from_file: Mapping[str, AgentSpec]) -> dict[str, AgentSpec]:
        """Combine the file's agents with the stored ones (module doc); the
        running set, in file order then the database's own."""
        now = self.clock()
        with self.db.transaction():
            rows = {a: (o, bool(r), s) for a, s, o, r in self.db.execute(
                "SELECT agent, spec, origin, removed FROM agent_record").fetchall()}
            for agent_id, spec in from_file.items():
                if agent_id in rows and rows[agent_id][0] != "config":
                    continue
                self.db.execute(_UPSERT, (agent_id, _dump(spec), "config", 0, now))
            for agent_id, (origin, _, _) in rows.items():
                if origin == "config" and agent_id not in from_file:
                    self.db.execute("DELETE FROM agent_record WHERE agent = ?", (agent_id,))
        out: dict[str, AgentSpec] = {}
        stored = self.specs()
        for agent_id in from_file:
            if agent_id in stored:
                out[agent_id] = stored.pop(agent_id)
        out.update(stored)
        return out

    def specs(self) -> dict[str, AgentSpec]:
        return {a: _load(s) for a, s in self.db.read(
            "SELECT agent, spec FROM agent_record WHERE removed = 0 ORDER BY seq, agent")}

    def get(self, agent_id: str) -> AgentSpec | None:
        row = self.db.one("SELECT spec FROM agent_record WHERE agent = ? AND removed = 0",
                          (agent_id,))
        return None if row is None else _load(row[0])

    def put(self, spec: AgentSpec, *, who: str, action: str, before: AgentSpec | None) -> None:
        """Store ``spec`` (origin ``admin``) and its audit row, in one transaction."""
        now = self.clock()
        with self.db.transaction():
            self.db.execute(_UPSERT, (spec.agent, _dump(spec), "admin", 0, now))
            record(self.db, now, who, action, spec.agent,
                   before and before.public(), spec.public())

    def remove(self, agent_id: str, *, who: str, before: AgentSpec) -> None:
        """A tombstone (module doc), and its audit row."""
        now = self.clock()
        with self.db.transaction():
            self.db.execute(_UPSERT, (agent_id, None, "admin", 1, now))
            record(self.db, now, who, "agent.removed", agent_id, before.public(), None)


# A new agent's ``seq`` is the next (under the store's write lock); a
# changed one keeps its place.
_UPSERT = ("INSERT INTO agent_record (agent, spec, origin, removed, updated, seq)"
           " VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_record))"
           " ON CONFLICT (agent) DO UPDATE SET spec = excluded.spec, origin = excluded.origin,"
           " removed = excluded.removed, updated = excluded.updated")
