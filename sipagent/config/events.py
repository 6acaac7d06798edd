"""The ``[events]`` section: the public event stream and its webhooks.

::

    [events]
    node_id = "acd-1"          # the envelope's "node"; default: [cluster] node_id,
                               # else the host name
    heartbeat = 15             # seconds between SSE heartbeats
    client_buffer = 10000      # events an SSE client may lag behind before it is
                               # disconnected (it reconnects with Last-Event-ID)
    webhook_timeout = 10       # seconds one POST may take
    retry_base = 1             # first retry after this many seconds, doubling ...
    retry_max = 300            # ... up to this; a webhook is retried forever

    [[events.webhooks]]
    name = "crm"               # the delivery cursor's name; default: the url
    url = "https://crm.example.com/hooks/sipacd"
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"   # Standard Webhooks key
    types = ["call.*", "queue.left"]     # absent: every type
    queues = ["support"]                 # absent: every queue

Docs: docs/events.md.
"""
from __future__ import annotations

import base64
import binascii
import re
import socket
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.config.values import Name, PositiveSeconds, Section, Url, as_tuple
from sipagent.store.event_filter import BadFilter, parse_types
from sipagent.store.webhook_delivery import Subscription

_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _default_node() -> str:
    host = socket.gethostname().split(".")[0] or "sipacd"
    return host if _NODE.fullmatch(host) else "sipacd"


def _check_node(value: str) -> str:
    if not _NODE.fullmatch(value):
        raise ValueError("letters, digits, '.', '_' or '-' (at most 63), starting with a "
                         "letter or digit")
    return value


def _check_secret(value: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 to 64 random bytes."""
    if not value.startswith("whsec_"):
        raise ValueError("must start with 'whsec_' (then the key in base64)")
    try:
        key = base64.b64decode(value[6:], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after 'whsec_' is not base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"the key is {len(key)} bytes; Standard Webhooks wants 24 to 64")
    return value


def _check_types(value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        parse_types(value, "types")
    except BadFilter as exc:
        raise ValueError(str(exc).removeprefix("types: ")) from None
    return value


class WebhookSection(Section):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    url: Url
    secret: Annotated[str, AfterValidator(_check_secret)]
    types: Annotated[tuple[str, ...], BeforeValidator(as_tuple),
                     AfterValidator(_check_types)] = ()
    queues: Annotated[tuple[Name, ...], BeforeValidator(as_tuple)] | None = None

    def subscription(self) -> Subscription:
        return Subscription(self.name or self.url, self.url, self.secret,
                            frozenset(self.types),
                            None if self.queues is None else frozenset(self.queues))


class EventsSection(Section):
    node_id: Annotated[str, AfterValidator(_check_node)] | None = None   # see event_node
    heartbeat: PositiveSeconds = 15.0
    client_buffer: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    webhook_timeout: PositiveSeconds = 10.0
    retry_base: PositiveSeconds = 1.0
    retry_max: PositiveSeconds = 300.0
    webhooks: Annotated[tuple[WebhookSection, ...], BeforeValidator(as_tuple)] = ()


def event_node(config) -> str:
    """The node id every event carries: ``[events] node_id``, else the
    cluster's node id (one name per engine in leases and events), else the
    host name."""
    if config.events.node_id:
        return config.events.node_id
    cluster = getattr(config, "cluster", None)
    return cluster.node_id if cluster is not None else _default_node()


def events_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks: webhook queues that exist, cursor names used once."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    known = ", ".join(config.queues) or "none"
    seen: dict[str, int] = {}
    for i, hook in enumerate(config.events.webhooks):
        for j, queue in enumerate(hook.queues or ()):
            if queue not in config.queues:
                problems.append((("events", "webhooks", i, "queues", j),
                                 f"unknown queue {queue!r} (defined queues: {known})"))
        name = hook.name or hook.url
        if name in seen:
            problems.append((("events", "webhooks", i, "name"),
                             f"{name!r} is also webhook {seen[name]}'s; give each a name"))
        seen.setdefault(name, i)
    return problems
