"""Agents added, changed and removed while the engine runs (the admin API).

Each change applies at once, without a restart, and in this order:

1. the ACD core (``scheduler.add_agent`` / ``remove_agent``; the core only
   removes a logged-out agent, so the agent is logged out first, with its
   LOGOUT row in the event log: KPIs stay right);
2. the runtime: the agent's line (``lines``: phone URI, wrap-up, talk
   limit) and the queues a transfer to it or its click-to-call uses;
3. the agent's record in ``people.sqlite3`` and its audit row, in one
   transaction (``store.agent_book``, which also says how the config
   file's agents and the database combine);
4. ``agent.added|updated|removed`` on the event stream, when there is one;
5. ``on_change`` (the engine renews the keypad's agent numbers and PINs).

An agent who is being rung, on a call or in wrap-up (``AgentBusy``, a 409)
is neither removed nor changed in what the ACD knows (queues, skills,
weight, wrap-up): its call would lose its agent.  A change of the phone
URI, name or talk limit alone applies even then (the next call uses it).
An ACD change of a logged-in agent logs it out and in again (reason
``admin``), and a paused agent stays paused with its reason.

Several nodes (``[cluster]``): an agent's changes are made on the node that
runs its partition (``runs``), which knows whether the agent is on a call;
another node answers ``AgentElsewhere`` (a 409 naming the partition).  The
store and the event stream are shared, so every other node learns of the
change from the stream's ``agent.*`` event and :meth:`AgentAdmin.follow`
brings its own runtime in line from the store, logged out: a node takes
the agent on duty only when its partition comes to it.
"""
from __future__ import annotations

import time
from typing import Callable

import structlog

from acdcore.model import AgentConfig
from sipagent.queue.agents import AgentLine
from sipagent.queue.transfer import agent_skill
from sipagent.store.agent_book import AgentSpec

log = structlog.get_logger("sipagent.queue.agent_admin")

# States in which the agent has, or is about to have, a call.
ENGAGED = frozenset({"offered", "busy", "wrap_up"})


class AgentBusy(Exception):
    """The agent is being rung, talking or wrapping up: try again after."""


class AgentExists(Exception):
    pass


class UnknownAgent(KeyError):
    pass


class AgentElsewhere(AgentBusy):
    """The agent's partition runs on another node: change it there."""


def acd_config(spec: AgentSpec) -> AgentConfig:
    # Every agent has a skill of its own: a transfer to the agent requires it.
    return AgentConfig(agent_id=spec.agent, queues=dict(spec.queues),
                       skills={**spec.skills, agent_skill(spec.agent): 1},
                       wrap_up=spec.wrap_up, weight=spec.weight)


def agent_line(spec: AgentSpec) -> AgentLine:
    return AgentLine(spec.agent, spec.uri, spec.auto_login, spec.wrap_up, spec.talk_limit)


def spec_of(agent_id: str, section) -> AgentSpec:
    """A config file's ``[agents.<id>]`` table (sipagent/config/queues.py) as a spec."""
    return AgentSpec(agent_id, section.uri, section.name, dict(section.queues),
                     dict(section.skills), section.wrap_up, section.auto_login, section.weight,
                     section.talk_limit, section.number, section.pin)


def fit_to_queues(specs: dict[str, AgentSpec], queues) -> dict[str, AgentSpec]:
    """The stored agents as the running config allows: a queue the file no
    longer has is left out of an agent's queues (with a warning), rather
    than stopping the start."""
    out = {}
    for agent_id, spec in specs.items():
        gone = [q for q in spec.queues if q not in queues]
        if gone:
            log.warning("stored agent names queues the config does not have; left out",
                        agent=agent_id, queues=gone)
            spec = spec.with_(queues={q: p for q, p in spec.queues.items() if q in queues})
        out[agent_id] = spec
    return out


def open_people(config):
    """The people store, seeded with the config file's users and agents, and
    the agents to run (``store/agent_book.py``: file and database combined)."""
    from sipagent.store.people import PeopleStore, users_from

    auth = config.auth
    people = PeopleStore(config.data.place, session_ttl=auth.session_ttl,
                         lockout_failures=auth.lockout_failures,
                         lockout_seconds=auth.lockout_seconds)
    people.seed_users(users_from(config.users))
    agents = people.agents.seed({n: spec_of(n, a) for n, a in config.agents.items()})
    return people, fit_to_queues(agents, config.queues)


def _acd_part(spec: AgentSpec) -> tuple:
    return dict(spec.queues), dict(spec.skills), spec.weight, spec.wrap_up


class AgentAdmin:
    def __init__(self, runtime, book, *, events=None, max_agents: int | None = None,
                 partition_of: Callable[[AgentSpec], str | None] | None = None,
                 runs: Callable[[str], bool] | None = None):
        self.runtime = runtime
        # A node of several: the partition of an agent's queues (ValueError
        # if they span two), and whether this node runs a partition now.
        self.partition_of, self.runs = partition_of, runs
        self.book = book              # store.agent_book.AgentBook
        self.events = events          # the event stream, or None (not published)
        self.max_agents = max_agents  # legs kept free: one per agent
        # Called with the running agents after each change (the engine's keypads).
        self.on_change: Callable[[dict[str, AgentSpec]], None] | None = None

    # -- read-outs ---------------------------------------------------------------------
    def rows(self) -> list[dict]:
        live = {r["agent"]: r for r in self.runtime.agents()}
        return [{**spec.public(), "live": live.get(agent_id)}
                for agent_id, spec in self.book.specs().items()]

    def get(self, agent_id: str) -> AgentSpec:
        spec = self.book.get(agent_id)
        if spec is None:
            raise UnknownAgent(agent_id)
        return spec

    # -- changes -----------------------------------------------------------------------
    def add(self, spec: AgentSpec, *, who: str) -> AgentSpec:
        rt = self.runtime
        if spec.agent in rt.lines or self.book.get(spec.agent) is not None:
            raise AgentExists(f"agent {spec.agent!r} exists")
        self._check(spec)
        self._here(spec)
        if self.max_agents is not None and len(rt.lines) >= self.max_agents:
            raise AgentBusy(f"the engine has legs for {self.max_agents} agents (sip.max_calls "
                            "keeps one leg per agent free): raise max_calls first")
        rt.scheduler.add_agent(acd_config(spec))
        rt.lines[spec.agent] = agent_line(spec)
        rt.serve_queues(spec.agent, dict(spec.queues))
        if spec.auto_login:
            self._login(spec.agent)
        self.book.put(spec, who=who, action="agent.added", before=None)
        self._changed()
        self._publish("agent.added", spec.agent, who, None, spec)
        log.info("agent added", agent=spec.agent, by=who, queues=dict(spec.queues))
        return spec

    def update(self, spec: AgentSpec, *, who: str) -> AgentSpec:
        rt = self.runtime
        before = self.get(spec.agent)
        self._check(spec)
        self._here(before)
        self._here(spec)
        if _acd_part(spec) != _acd_part(before):
            state = rt.scheduler.agent_state(spec.agent)
            self._not_engaged(spec.agent, "changed (queues, skills, weight, wrap-up)")
            reason = rt.scheduler.agent_pause_reason(spec.agent)
            if state != "logged_out":
                self._logout(spec.agent, "admin")
            rt.scheduler.remove_agent(spec.agent)
            rt.scheduler.add_agent(acd_config(spec))
            if state != "logged_out":
                self._login(spec.agent)
                if state == "paused":
                    rt.agent_command(spec.agent, "pause", reason or "paused")
        rt.lines[spec.agent] = agent_line(spec)
        rt.serve_queues(spec.agent, dict(spec.queues))
        self.book.put(spec, who=who, action="agent.updated", before=before)
        self._changed()
        self._publish("agent.updated", spec.agent, who, before, spec)
        log.info("agent changed", agent=spec.agent, by=who)
        return spec

    def remove(self, agent_id: str, *, who: str) -> AgentSpec:
        rt = self.runtime
        before = self.get(agent_id)
        self._here(before)
        if agent_id in rt.lines:
            self._not_engaged(agent_id, "removed")
            if rt.scheduler.agent_state(agent_id) != "logged_out":
                self._logout(agent_id, "removed")
            rt.scheduler.remove_agent(agent_id)
            del rt.lines[agent_id]
            rt.serve_queues(agent_id, None)
        self.book.remove(agent_id, who=who, before=before)
        self._changed()
        self._publish("agent.removed", agent_id, who, before, None)
        log.info("agent removed", agent=agent_id, by=who)
        return before

    def follow(self, agent_id: str) -> None:
        """Another node changed ``agent_id`` (module doc): take the stored
        agent as it is now, logged out here.  Blocking (reads the store)."""
        rt = self.runtime
        spec = self.book.get(agent_id)
        if agent_id in rt.lines:
            if rt.scheduler.agent_state(agent_id) != "logged_out":
                return      # on duty here: the change was not made elsewhere
            rt.scheduler.remove_agent(agent_id)
            del rt.lines[agent_id]
            rt.serve_queues(agent_id, None)
        if spec is not None:
            rt.scheduler.add_agent(acd_config(spec))
            rt.lines[agent_id] = agent_line(spec)
            rt.serve_queues(agent_id, dict(spec.queues))
        self._changed()
        log.info("agent change followed", agent=agent_id, removed=spec is None)

    # -- steps -------------------------------------------------------------------------
    def _here(self, spec: AgentSpec) -> None:
        if self.partition_of is None:
            return
        partition = self.partition_of(spec)
        if partition is not None and not self.runs(partition):
            raise AgentElsewhere(f"agent {spec.agent!r} is in partition {partition!r}, which "
                                 "another node runs: make the change there")

    def _check(self, spec: AgentSpec) -> None:
        unknown = [q for q in spec.queues if q not in self.runtime.settings]
        if unknown:
            raise ValueError(f"queues: unknown queue {unknown[0]!r} (defined queues: "
                             f"{', '.join(self.runtime.settings) or 'none'})")
        for other, line in self.runtime.lines.items():
            if other != spec.agent and line.uri.lower() == spec.uri.lower():
                raise ValueError(f"uri: same URI as agent {other!r}: {spec.uri!r}")
        if spec.number is not None:
            for other, stored in self.book.specs().items():
                if other != spec.agent and stored.number == spec.number:
                    raise ValueError(f"number: keypad number {spec.number!r} belongs to "
                                     f"agent {other!r}")

    def _not_engaged(self, agent_id: str, what: str) -> None:
        rt = self.runtime
        state = rt.scheduler.agent_state(agent_id)
        if state in ENGAGED or agent_id in rt.outbound.calls:
            raise AgentBusy(f"agent {agent_id!r} is {state.replace('_', '-')} and cannot be "
                            f"{what} now: try again after its call and wrap-up")

    def _login(self, agent_id: str) -> None:
        self.runtime.agent_command(agent_id, "login")

    def _logout(self, agent_id: str, reason: str) -> None:
        # The LOGOUT row closes the agent's logged-in time in the event log.
        self.runtime.agent_command(agent_id, "logout", reason)

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.book.specs())
            except Exception:     # the change stands; its keypad numbers wait for a restart
                log.exception("keypad settings not renewed after an agent change")

    def _publish(self, kind: str, agent_id: str, who: str, before: AgentSpec | None,
                 after: AgentSpec | None) -> None:
        if self.events is None:
            return
        try:
            self.events.publish(kind, agent=agent_id, by=who, t=time.time(),
                                before=before and before.public(),
                                after=after and after.public())
        except Exception:       # the change is made and stored; the stream is told best-effort
            log.exception("agent change not published", agent=agent_id, kind=kind)
