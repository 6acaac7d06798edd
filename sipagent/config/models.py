"""The shape of sipacd's configuration file, as frozen pydantic models.

Theory of operation
-------------------
Each TOML table is one ``*Section`` model.  Models are strict (a string where
a number belongs is an error, never silently converted), frozen (the running
engine cannot drift from the file it was started with) and forbid unknown
keys, because a misspelt key that is silently ignored is the most expensive
kind of configuration bug: the engine starts, and behaves subtly wrong.

Validation runs in two passes.  Pydantic checks every key on its own first;
only when that succeeds does ``Config`` check the references between sections
(a route's queue, an agent's queues, port collisions).  A problem of either
pass carries its own key path; problems found by our validators travel as
``ConfigProblems`` so that ``sipagent.config.load`` can print each one under its
dotted key.

Relative paths are resolved against ``base_dir`` from the validation context
(the config file's folder), so the engine's working directory never changes
which files a config refers to.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from sipagent.config.values import (
    AgentUri,
    ConfigPath,
    ConfigProblems,
    FlowSpec,
    IPAddress,
    Name,
    NonEmptyStr,
    Port,
    PostgresUrl,
    RtpPorts,
    ServerUri,
    TokenRole,
    Section,
    as_tuple,
    check_cidr,
    check_schedule,
    lowercase,
    section,
    uppercase,
)
from sipagent.calls.agent_keypad import KeypadSettings
from sipagent.store.database import StorePlace
from sipagent.config.console import ConsoleSection
from sipagent.config.fax import FaxSection, fax_problems
from sipagent.config.features import FeaturesSection, feature_problems
from sipagent.config.operations import (CallKeysSection, MonitorSection, RecordingSection,
                                        TransferSection)
from sipagent.config.outbound import OutboundSection, outbound_problems
from sipagent.config.people import AuthSection, DesktopSection, UserSection, people_problems
from sipagent.config.events import EventsSection, event_node, events_problems
from sipagent.config.queues import AgentSection, QueueSection
from sipagent.config.cluster import ClusterSection, cluster_problems
from sipagent.config.supervisors import (SupervisorSection, supervisor_directory,
                                         supervisor_keypad_settings, supervisor_problems)
from sipagent.config.voicemail import MailboxSection, VoicemailSection, mailbox_problems

DEFAULT_DATA_DIR = "./sipacd-data"

# pjsua is compiled with PJSUA_MAX_CALLS = 1024 and every bridged call uses
# two legs (caller + agent), so the engine's ceiling stays below that.
MAX_CALL_LEGS = 1000


class SipSection(Section):
    listen: IPAddress = "127.0.0.1"
    port: Port = 5060
    transports: Annotated[
        tuple[Annotated[Literal["udp", "tcp"], BeforeValidator(lowercase)], ...],
        BeforeValidator(as_tuple), Field(min_length=1),
    ] = ("udp",)
    # Counts call legs, not conversations: a caller bridged to an agent is two.
    max_calls: Annotated[int, Field(ge=1, le=MAX_CALL_LEGS)] = 400
    retry_after: Annotated[int, Field(ge=1, le=86400)] = 30
    codecs: Annotated[
        tuple[Annotated[Literal["PCMU", "PCMA"], BeforeValidator(uppercase)], ...],
        BeforeValidator(as_tuple), Field(min_length=1),
    ] = ("PCMU", "PCMA")
    user_agent: NonEmptyStr = "sipacd"
    # Where calls' RTP binds and what the SDP announces (default: listen).
    media_address: IPAddress | None = None
    # The RTP/RTCP ports of calls, "LOW-HIGH" (default: pjsua's own, climbing
    # from 4000 without bound); allocation wraps around inside the range.
    rtp_ports: RtpPorts | None = None
    # The CPU priority of the event loop's thread (sipagent/engine/loop_priority.py).
    loop_priority: Annotated[Literal["normal", "high", "realtime"],
                             BeforeValidator(lowercase)] = "normal"

    @property
    def media_host(self) -> str:
        return self.media_address or self.listen

    @model_validator(mode="after")
    def _rtp_ports_fit(self) -> SipSection:
        ports = self.rtp_ports
        if ports is None:
            return self
        if ports.pairs < self.max_calls:
            raise ConfigProblems([(("rtp_ports",), f"{ports} holds {ports.pairs} RTP/RTCP "
                                   f"pairs, fewer than sip.max_calls ({self.max_calls})")])
        if ports.low <= self.port <= ports.high and _same_host(self.media_host, self.listen):
            raise ConfigProblems([(("rtp_ports",), f"{ports} includes sip.port ({self.port})")])
        return self

    @field_validator("transports", "codecs")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)}")
        return value


class TrunkRegistration(Section):
    registrar: ServerUri
    username: NonEmptyStr
    password: str
    realm: NonEmptyStr = "*"
    expires: Annotated[int, Field(ge=60, le=86400)] = 300


class TrunkSection(Section):
    allow: Annotated[
        tuple[Annotated[str, AfterValidator(check_cidr)], ...], BeforeValidator(as_tuple)
    ] = ("127.0.0.0/8",)
    registration: TrunkRegistration | None = None

    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = PrivateAttr()

    def model_post_init(self, _context: Any) -> None:
        self._networks = tuple(ipaddress.ip_network(n) for n in self.allow)

    def allows(self, address: str) -> bool:
        """Whether an INVITE from this source address may enter."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)


class HttpToken(Section):
    role: TokenRole
    # Bearer tokens are random secrets, not passwords a human reuses.
    token: Annotated[str, Field(min_length=16)]
    agent: Name | None = None
    # A supervisor's phone: where POST /api/calls/{id}/monitor rings.
    phone: AgentUri | None = None
    # The [supervisors.<id>] this token acts as: its phone, queues and id.
    supervisor: Name | None = None


class HttpSection(Section):
    listen: IPAddress = "127.0.0.1"
    port: Port = 8080
    metrics_token: NonEmptyStr | None = None
    tokens: dict[Name, HttpToken] = {}


class DataSection(Section):
    """Where the stores live: files in ``dir``; their tables in SQLite files
    there too, or in one PostgreSQL ``database`` (shared by a cluster's
    nodes: sipagent/store/postgres.py)."""
    dir: ConfigPath = Field(default=DEFAULT_DATA_DIR, validate_default=True)
    database: PostgresUrl | None = None

    @property
    def place(self) -> StorePlace:
        return StorePlace(self.dir, self.database)


def _shipped_flows_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("ivrflows")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class FlowsSection(Section):
    dir: ConfigPath = Field(default=None, validate_default=True)
    prompts_dir: ConfigPath = Field(default=None, validate_default=True)
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")] = "en"

    @field_validator("dir", mode="before")
    @classmethod
    def _default_to_shipped_flows(cls, value: Any) -> Any:
        if value is not None:
            return value
        shipped = _shipped_flows_dir()
        if shipped is None:
            raise ValueError("not set, and the shipped ivrflows package cannot be found")
        return shipped

    @field_validator("prompts_dir", mode="before")
    @classmethod
    def _default_to_data_dir(cls, value: Any) -> Any:
        # Config passes the real data dir; this covers a FlowsSection alone.
        return os.path.join(DEFAULT_DATA_DIR, "prompts") if value is None else value

    @field_validator("dir")
    @classmethod
    def _must_exist(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"no such directory: '{value}'")
        return value


class RouteEntry(Section):
    number: NonEmptyStr
    match: Literal["exact", "regex"] = "exact"
    flow: FlowSpec
    queue: Name | None = None
    fallback: FlowSpec | None = None
    schedule: Name | None = None
    # The call's starting language (prompt set, TTS voice) and variables.
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")] | None = None
    vars: dict[NonEmptyStr, str] = {}
    # Fax media (no frame discard, fixed prefetch) from the first packet.
    fax: bool = False
    # A flow to switch to when a fax machine's calling tone is heard in the
    # first seconds of the call (implies fax media); e.g. "fax_receive".
    fax_detect: FlowSpec | None = None

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> RouteEntry:
        if self.match == "regex":
            try:
                re.compile(self.number)
            except re.error as exc:
                raise ConfigProblems([(("number",), f"bad regex {self.number!r}: {exc}")]) from None
        elif any(c.isspace() for c in self.number):
            raise ConfigProblems([(("number",), f"bad number {self.number!r}: contains whitespace")])
        return self

    def model_post_init(self, _context: Any) -> None:
        # Runs before _compile; a bad pattern is reported there, not here.
        if self.match == "regex":
            try:
                self._pattern = re.compile(self.number)
            except re.error:
                pass

    def matches(self, called: str) -> bool:
        """A regex route must match the whole called number, not a prefix of it."""
        if self._pattern is not None:
            return self._pattern.fullmatch(called) is not None
        return called == self.number


class LogSection(Section):
    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(lowercase)] = "info"
    format: Annotated[Literal["auto", "json", "console"], BeforeValidator(lowercase)] = "auto"
    pjsip_level: Annotated[int, Field(ge=0, le=6)] = 2


class Config(Section):
    sip: SipSection = section()
    trunk: TrunkSection = section()
    http: HttpSection = section()
    data: DataSection = section()
    flows: FlowsSection = section()
    routes: Annotated[tuple[RouteEntry, ...], BeforeValidator(as_tuple)] = ()
    queues: dict[Name, QueueSection] = {}
    agents: dict[Name, AgentSection] = {}
    # Business hours: validated by ivrflows.schedule, which flows also use.
    schedules: dict[Name, Annotated[Any, AfterValidator(check_schedule)]] = {}
    voicemail: VoicemailSection = section()
    mailboxes: dict[str, MailboxSection] = {}
    fax: FaxSection = section()
    transfer: TransferSection = section()
    monitor: MonitorSection = section()
    recording: RecordingSection = section()
    call_keys: CallKeysSection = section()
    outbound: OutboundSection = section()
    # Absent: no feature numbers (sipagent/config/features.py).
    features: FeaturesSection | None = None
    supervisors: dict[Name, SupervisorSection] = {}    # sipagent/config/supervisors.py
    console: ConsoleSection = section()                # sipagent/config/console.py
    # Absent: one engine on its own (sipagent/config/cluster.py).
    cluster: ClusterSection | None = None
    # Console logins and the agent desktop: sipagent/config/people.py.
    auth: AuthSection = section()
    users: dict[Name, UserSection] = {}
    desktop: DesktopSection = section()
    events: EventsSection = section()                  # sipagent/config/events.py
    log: LogSection = section()

    _exact_routes: dict[str, RouteEntry] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_prompts_dir(cls, data: Any) -> Any:
        # The one default that depends on another section: prompts live in
        # the data folder unless the file says otherwise.
        if not isinstance(data, dict):
            return data
        flows, section = data.get("flows", {}), data.get("data", {})
        if not isinstance(flows, dict) or not isinstance(section, dict) or "prompts_dir" in flows:
            return data
        data_dir = section.get("dir", DEFAULT_DATA_DIR)
        if not isinstance(data_dir, str):
            return data
        flows = {**flows, "prompts_dir": os.path.join(data_dir, "prompts")}
        return {**data, "flows": flows}

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        problems = _broken_references(self)
        if problems:
            raise ConfigProblems(problems)
        return self

    def model_post_init(self, _context: Any) -> None:
        self._exact_routes = {r.number: r for r in self.routes if r.match == "exact"}
        if self.features is not None:   # a clash with a route is a problem reported above
            for number, (_, flow) in self.features.flows().items():
                self._exact_routes.setdefault(number, RouteEntry(number=number, flow=flow))

    @property
    def event_node(self) -> str:
        """The events' node: [events] node_id, else [cluster] node_id, else the host name."""
        return event_node(self)

    def keypad_settings(self, agents=None) -> KeypadSettings | None:
        """The agents' keypad flow's settings; None without ``[features]``.
        ``agents``: the running ones (file and admin API), else the file's."""
        return None if self.features is None else \
            self.features.keypad(self.agents if agents is None else agents)

    def supervisor_directory(self):
        return supervisor_directory(self)

    def supervisor_keypad_settings(self, agents=None):
        """The monitor feature flow's settings; None without ``[features]``."""
        return supervisor_keypad_settings(self, agents)

    def route_for(self, called: str) -> RouteEntry | None:
        """Exact numbers win over patterns; patterns are tried in file order."""
        route = self._exact_routes.get(called)
        if route is not None:
            return route
        if self.features is not None and self.features.directed_pickup:
            # "**1002": a directed pickup dialled in one go.
            prefix = self.features.directed_pickup
            if called.startswith(prefix) and called[len(prefix):].isdigit() \
                    and prefix in self._exact_routes:
                return self._exact_routes[prefix]
        return next((r for r in self.routes if r.match == "regex" and r.matches(called)), None)


def _broken_references(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    known = ", ".join(config.queues) or "none"

    first_at: dict[str, int] = {}
    for i, route in enumerate(config.routes):
        if route.queue is not None and route.queue not in config.queues:
            problems.append(
                (("routes", i, "queue"), f"unknown queue {route.queue!r} (defined queues: {known})")
            )
        if route.match == "exact":
            if route.number in first_at:
                problems.append((("routes", i, "number"),
                                 f"duplicate route for {route.number!r} (first at routes[{first_at[route.number]}])"))
            first_at.setdefault(route.number, i)

    for i, route in enumerate(config.routes):
        if route.schedule is not None and route.schedule not in config.schedules:
            problems.append((("routes", i, "schedule"), f"unknown schedule {route.schedule!r} "
                             f"(defined schedules: {', '.join(config.schedules) or 'none'})"))
    if config.sip.max_calls <= len(config.agents):
        problems.append((("sip", "max_calls"),
                         f"must exceed the number of agents ({len(config.agents)}): one leg per "
                         "agent is kept free so that agents can always be rung"))
    for name, queue in config.queues.items():
        for key in ("on_timeout", "on_full", "on_empty"):
            target = getattr(queue, key)
            if target and target.startswith("queue:") and target[6:] not in config.queues:
                problems.append((("queues", name, key),
                                 f"unknown queue {target[6:]!r} (defined queues: {known})"))
        if queue.callback_key and not queue.callback_uri:
            problems.append((("queues", name, "callback_uri"),
                             "required when callback_key is set (how to dial the caller back, "
                             "e.g. 'sip:{number}@pbx.example.com')"))
        if queue.callback_key and queue.callback_key == queue.exit_key:
            problems.append((("queues", name, "callback_key"), "same key as exit_key"))
        problems += _callback_slot_problems(config, name, queue)

    uri_owner: dict[str, str] = {}
    for agent_id, agent in config.agents.items():
        for queue in agent.queues:
            if queue not in config.queues:
                problems.append((("agents", agent_id, "queues", queue),
                                 f"unknown queue {queue!r} (defined queues: {known})"))
        owner = uri_owner.setdefault(agent.uri.lower(), agent_id)
        if owner != agent_id:
            problems.append((("agents", agent_id, "uri"), f"same URI as agents.{owner}: {agent.uri!r}"))

    for name, token in config.http.tokens.items():
        if token.role == "agent" and token.agent is None:
            problems.append((("http", "tokens", name, "agent"), "required key missing for role 'agent'"))
        elif token.role != "agent" and token.agent is not None:
            problems.append((("http", "tokens", name, "agent"), f"only allowed for role 'agent', not {token.role!r}"))
        elif token.agent is not None and token.agent not in config.agents:
            problems.append((("http", "tokens", name, "agent"), f"unknown agent {token.agent!r}"))

    problems += mailbox_problems(config)
    problems += fax_problems(config)
    problems += feature_problems(config)
    problems += outbound_problems(config)
    problems += supervisor_problems(config)
    problems += cluster_problems(config)
    problems += people_problems(config)
    problems += events_problems(config)

    if config.http.port == config.sip.port and _same_host(config.http.listen, config.sip.listen):
        problems.append((("http", "port"),
                         f"{config.http.port} collides with sip.port on {config.http.listen}"))
    return problems


def _callback_slot_problems(config: Config, name: str, queue: QueueSection) -> list:
    where = ("queues", name)
    schedules = ", ".join(config.schedules) or "none"
    if queue.callback_schedule is not None and queue.callback_schedule not in config.schedules:
        return [((*where, "callback_schedule"), f"unknown schedule {queue.callback_schedule!r} "
                 f"(defined schedules: {schedules})")]
    if not queue.callback_slots:
        return []
    if not queue.callback_key:
        return [((*where, "callback_slots"), "needs callback_key (the slot menu follows "
                 "the callback key)")]
    if queue.callback_schedule is None:
        return [((*where, "callback_schedule"), "required when callback_slots is set (slots "
                 f"are offered only in its open hours; defined schedules: {schedules})")]
    return []


def _same_host(a: str, b: str) -> bool:
    # A wildcard listener takes the port on every address, including the other's.
    return a == b or ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified
