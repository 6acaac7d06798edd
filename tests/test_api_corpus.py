"""Every route of the engine's HTTP app against a corpus of bad input: wrong
JSON types, deep nesting, huge and non-finite numbers, odd unicode, empty
and non-JSON bodies, bad and unknown query parameters.  Nothing may answer
5xx, and what is surely wrong must answer 400 (413 when over the size cap).

The tables below name every route; a route added to the app without an
entry here fails ``test_every_route_has_a_corpus_entry``."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import FormData

from apikit import ADMIN, routes, serve
from portlocks import Ports
from sipagent.api.request_input import MAX_JSON_BODY


@dataclass(frozen=True)
class JsonRoute:
    path: str                   # "{message}": the mailbox's one message id
    valid: dict                 # a body the route accepts (2xx)
    kinds: dict                 # field -> kind (see must_refuse)
    required: tuple = ()
    method: str = "POST"


@dataclass(frozen=True)
class QueryRoute:
    path: str
    kinds: dict                 # parameter -> kind (see query_must_refuse)
    method: str = "GET"


@dataclass(frozen=True)
class FileRoute:                # the body is a file (a WAV, a PDF ...), not JSON
    path: str
    method: str


SOON = (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()

JSON_ROUTES = {
    ("POST", "/api/agents/{agent}/{command}"): JsonRoute(
        "/api/agents/alice/pause", {"reason": "lunch"}, {"reason": "text"}),
    ("POST", "/api/agents/{agent}/dial"): JsonRoute(
        "/api/agents/alice/dial", {"number": "0301234567"}, {"number": "text"},
        required=("number",)),
    ("POST", "/api/callbacks"): JsonRoute(
        "/api/callbacks", {"number": "+15550199", "queue": "support", "at": SOON},
        {"number": "text", "queue": "text", "at": "text?"}, required=("number", "queue")),
    ("PATCH", "/api/voicemail/{box}"): JsonRoute(
        "/api/voicemail/200", {"owner": "agent:alice", "emails": ["a@example.com"],
                               "webhook": None, "max_length": 120, "min_length": 1.5,
                               "max_messages": 50, "retention_days": 30},
        {"owner": "text", "emails": "texts", "webhook": "text?", "max_length": "number",
         "min_length": "number", "max_messages": "count", "retention_days": "count"},
        method="PATCH"),
    ("PUT", "/api/voicemail/{box}/pin"): JsonRoute(
        "/api/voicemail/200/pin", {"pin": "8642"}, {"pin": "text"}, required=("pin",),
        method="PUT"),
    ("PATCH", "/api/voicemail/{box}/messages/{id}"): JsonRoute(
        "/api/voicemail/200/messages/{message}", {"folder": "saved"}, {"folder": "text"},
        required=("folder",), method="PATCH"),
    ("PUT", "/api/fax/documents/{number}/pin"): JsonRoute(
        "/api/fax/documents/1/pin", {"pin": "4711"}, {"pin": "text?"}, required=("pin",),
        method="PUT"),
    ("POST", "/api/login"): JsonRoute(
        "/api/login", {"username": "ann", "password": "ann-password-1"},
        {"username": "text", "password": "text"}, required=("username", "password")),
    ("POST", "/api/admin/agents"): JsonRoute(
        "/api/admin/agents", {"agent": "zed", "uri": "sip:zed@127.0.0.1:9", "name": "Zed",
                              "queues": {"support": 0}, "wrap_up": 5, "weight": 2},
        {"agent": "text?", "uri": "text?", "name": "text?", "wrap_up": "number?",
         "weight": "number?"}),
    ("PUT", "/api/admin/agents/{agent}"): JsonRoute(
        "/api/admin/agents/alice", {"name": "Alice", "uri": "sip:alice@127.0.0.1:9"},
        {"name": "text?", "uri": "text?"},
        method="PUT"),
    ("POST", "/api/admin/users"): JsonRoute(
        "/api/admin/users", {"user": "tim", "role": "supervisor", "password": "tim-password"},
        {"user": "text?", "role": "text?", "password": "text?"}),
    ("PUT", "/api/admin/users/{user}"): JsonRoute(
        "/api/admin/users/sam", {"role": "supervisor"}, {"role": "text?"}, method="PUT"),
    ("POST", "/api/fax/jobs"): JsonRoute(
        "/api/fax/jobs", {"number": "0301234", "documents": ["1"], "pins": {"1": "4711"}},
        {"number": "text", "documents": "texts", "pins": "texts by key?"},
        required=("number", "documents")),
    ("POST", "/api/reports/whatif"): JsonRoute(
        "/api/reports/whatif", {"date": "2026-11-23", "queue": "support", "agents": 3},
        {"date": "text", "queue": "text", "agents": "count"}, required=("date", "queue", "agents")),
}

QUERY_ROUTES = {
    ("GET", "/api/voicemail/{box}/messages"): QueryRoute(
        "/api/voicemail/200/messages", {"folder": "choice", "since": "time", "until": "time",
                                        "caller": "text", "urgent": "flag",
                                        "limit": "capped count"}),
    ("GET", "/api/fax/jobs"): QueryRoute("/api/fax/jobs", {"state": "choice or blank",
                                                           "limit": "count"}),
    ("GET", "/api/fax/log"): QueryRoute("/api/fax/log", {"direction": "choice or blank",
                                                         "limit": "count"}),
    ("GET", "/api/events/history"): QueryRoute(
        "/api/events/history", {"queue": "text", "agent": "text", "type": "text",
                                "after": "text", "limit": "count"}),
    ("POST", "/api/fax/documents/{number}"): QueryRoute(
        "/api/fax/documents/5", {"title": "text", "pin": "text"}, method="POST"),
    ("PUT", "/api/fax/documents/{number}"): QueryRoute(
        "/api/fax/documents/1", {"title": "text"}, method="PUT"),
    ("GET", "/api/debug/invariants"): QueryRoute("/api/debug/invariants", {"quiet": "flag"}),
    ("GET", "/api/admin/audit"): QueryRoute("/api/admin/audit", {"limit": "count",
                                                                 "before": "capped count",
                                                                 "target": "text"}),
    # from and to are required: any one parameter alone is refused.
    ("GET", "/api/reports/intervals"): QueryRoute("/api/reports/intervals", dict.fromkeys(
        ("from", "to", "interval", "queue", "format"), "choice")),
    ("GET", "/api/reports/agents"): QueryRoute("/api/reports/agents", dict.fromkeys(
        ("from", "to", "interval", "queue", "format"), "choice")),
}

FILE_ROUTES = {
    ("PUT", "/api/voicemail/{box}/greetings/{kind}"): FileRoute(
        "/api/voicemail/200/greetings/busy", "PUT"),
    ("POST", "/api/fax/documents/{number}"): FileRoute("/api/fax/documents/6", "POST"),
    ("PUT", "/api/fax/documents/{number}"): FileRoute("/api/fax/documents/1", "PUT"),
}

# Routes that read neither a body nor a query: they must shrug off both.
PLAIN_ROUTES = {
    ("GET", "/metrics"): "/metrics",
    ("GET", "/healthz"): "/healthz",
    ("GET", "/api/openapi.json"): "/api/openapi.json",
    ("GET", "/"): "/",                                          # the console (no token)
    ("GET", "/console/{path}"): "/console/app.js",
    ("GET", "/api/agents"): "/api/agents",
    ("GET", "/api/queues"): "/api/queues",
    ("GET", "/api/wallboard"): "/api/wallboard",
    ("GET", "/api/callbacks"): "/api/callbacks",
    # A stream (it never ends when accepted); here only refusals are sent.
    ("GET", "/api/events"): "/api/events",
    ("GET", "/api/voicemail"): "/api/voicemail",
    ("GET", "/api/voicemail/{box}"): "/api/voicemail/200",
    ("GET", "/api/voicemail/{box}/messages/{id}"): "/api/voicemail/200/messages/{message}",
    ("GET", "/api/voicemail/{box}/messages/{id}/audio"):
        "/api/voicemail/200/messages/{message}/audio",
    ("DELETE", "/api/voicemail/{box}/messages/{id}"): "/api/voicemail/200/messages/0",
    ("GET", "/api/voicemail/{box}/greetings/{kind}"): "/api/voicemail/200/greetings/busy",
    ("DELETE", "/api/voicemail/{box}/greetings/{kind}"): "/api/voicemail/200/greetings/name",
    ("GET", "/api/fax/documents"): "/api/fax/documents",
    ("GET", "/api/fax/documents/{number}"): "/api/fax/documents/1",
    ("GET", "/api/fax/documents/{number}/tiff"): "/api/fax/documents/1/tiff",
    ("DELETE", "/api/fax/documents/{number}"): "/api/fax/documents/9",
    ("GET", "/api/fax/jobs/{id}"): "/api/fax/jobs/x",
    ("DELETE", "/api/fax/jobs/{id}"): "/api/fax/jobs/x",
    ("GET", "/api/fax/log/{id}"): "/api/fax/log/x",
    ("GET", "/api/fax/log/{id}/pdf"): "/api/fax/log/x/pdf",
    ("GET", "/api/fax/log/{id}/tiff"): "/api/fax/log/x/tiff",
    # No call is connected here: each answers 404 before reading its body
    # (test_call_operations.py sends them bad bodies with a call connected).
    ("GET", "/api/calls"): "/api/calls",
    ("POST", "/api/calls/{call}/pickup"): "/api/calls/x/pickup",   # nothing rings
    ("POST", "/api/calls/{call}/hold"): "/api/calls/x/hold",
    ("POST", "/api/calls/{call}/resume"): "/api/calls/x/resume",
    ("POST", "/api/calls/{call}/transfer"): "/api/calls/x/transfer",
    ("POST", "/api/calls/{call}/monitor"): "/api/calls/x/monitor",
    ("POST", "/api/calls/{call}/recording"): "/api/calls/x/recording",
    ("POST", "/api/calls/{call}/consult"): "/api/calls/x/consult",
    ("POST", "/api/calls/{call}/consult/complete"): "/api/calls/x/consult/complete",
    ("POST", "/api/calls/{call}/consult/cancel"): "/api/calls/x/consult/cancel",
    ("POST", "/api/calls/{call}/conference"): "/api/calls/x/conference",
    ("GET", "/api/recordings/{recording}"): "/api/recordings/x",
    ("POST", "/api/calls/{call}/disposition"): "/api/calls/x/disposition",
    ("GET", "/api/calls/{call}/pop"): "/api/calls/x/pop",
    ("GET", "/api/channels"): "/api/channels",
    ("GET", "/api/me"): "/api/me",
    ("GET", "/api/session"): "/api/session",
    ("POST", "/api/logout"): "/api/logout",
    ("GET", "/api/admin/agents"): "/api/admin/agents",
    ("GET", "/api/admin/agents/{agent}"): "/api/admin/agents/alice",
    ("DELETE", "/api/admin/agents/{agent}"): "/api/admin/agents/nobody",
    ("GET", "/api/admin/users"): "/api/admin/users",
    ("GET", "/api/admin/users/{user}"): "/api/admin/users/ann",
    ("DELETE", "/api/admin/users/{user}"): "/api/admin/users/nobody",
    ("GET", "/api/recordings/{recording}/segments/{segment}"): "/api/recordings/x/segments/1",
}

# -- the corpus ------------------------------------------------------------------------

# JSON values put in place of one field of a valid body.
FRAGMENTS = ['null', 'true', 'false', '0', '-1', '1.5', str(2**70), f"-{2**70}", '1e400',
             '-1e400', 'NaN', 'Infinity', '""', '"x"', '"\u65e5\u672c \\u202e \U0001f642"',
             '"\\u0000"', '"\\ud800"', '"\\udc00x"', '"' + 'a' * 10_000 + '"', '[]', '["x"]',
             '[1]', '[null]', '[["x"]]', '{}', '{"a": 1}', '{"1": "x"}', '[' * 60 + ']' * 60]

# Whole bodies no JSON route takes (the second item: over the size cap).
BAD_BODIES = [b"not json", b"{", b'{"a":}', b"[]", b"[1, 2]", b'"text"', b"1", b"1e400",
              b"null", b"true", b"NaN", b"\xff\xfe\x00\x00", b"9" * 5000, b'{"x": 1}',
              b"[" * 200_000, b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
              b"[" * 30_000 + b"]" * 30_000, b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
              b"{" * 20_000, b'{"a": [{"b": ' * 3_000]

# Query values, as they appear in the URL (percent-encoded where needed).
QUERY_VALUES = ["abc", "nan", "NaN", "inf", "-inf", "1e400", "-5", "0", "1.5", "",
                str(2**70), "9" * 5000, "%C3%A9%E2%80%AE", "%00", "%ED%A0%80", "%FF", "+",
                "2024-13-45T99:00", "9999-12-31T23:59:59"]


def _walk(value):
    yield value
    if isinstance(value, list):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)


def must_refuse(kind: str, fragment: str) -> bool:
    """Whether ``fragment`` in a field of ``kind`` is wrong whatever the
    route makes of it (otherwise it only must not be a 5xx)."""
    value = json.loads(fragment)
    for v in _walk(value):
        if isinstance(v, float) and not math.isfinite(v):
            return True
        if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            return True
    if value is None:
        return not kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "text":
        return not isinstance(value, str)
    if kind == "texts":
        return not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    if kind == "texts by key":
        return not isinstance(value, dict) or not all(isinstance(v, str)
                                                      for v in value.values())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if kind == "count" and isinstance(value, float):
        return True
    return abs(value) >= 2**63       # every number the API takes is bounded


def query_must_refuse(kind: str, raw: str) -> bool:
    if kind == "text":
        return False
    if kind == "flag":
        return raw not in ("", "0")
    if kind in ("count", "capped count"):
        if not raw.isdigit() or len(raw) > 4000 or int(raw) < 1:
            return True
        return kind == "count" and int(raw) > 1000
    if kind == "time":
        return raw not in ("-5", "0", "1.5", str(2**70), "9999-12-31T23:59:59")
    return raw != "" or kind == "choice"       # choices: no value in the corpus is one


def body_request(route: JsonRoute, message: str, body: bytes, **kw):
    return dict(method=route.method, path=route.path.format(message=message), data=body,
                headers={**ADMIN, "Content-Type": "application/json"}, **kw)


def with_fragment(valid: dict, key: str, fragment: str) -> bytes:
    parts = [f"{json.dumps(k)}: {fragment if k == key else json.dumps(v)}"
             for k, v in valid.items()]
    return ("{" + ", ".join(parts) + "}").encode()


@pytest.fixture(scope="module")
def answers(tmp_path_factory, port_allocator):
    """Every corpus request's (what, expected, status, text), in one engine app."""
    async def scenario(client, engine):
        out = []

        async def send(what, expect, method, path, **kw):
            r = await client.request(method, path, **kw)
            out.append((what, expect, r.status, (await r.read())[:200].decode(errors="replace")))

        message = engine.message_id
        await send("alice logs in", "2xx", "POST", "/api/agents/alice/login", headers=ADMIN)
        for key, route in JSON_ROUTES.items():
            await send(f"{key} valid", "2xx", **body_request(
                route, message, json.dumps(route.valid).encode()))
        for key, route in JSON_ROUTES.items():
            for name, kind in route.kinds.items():
                for fragment in FRAGMENTS:
                    await send(f"{key} {name}={fragment[:40]}",
                               "400" if must_refuse(kind, fragment) else "not 5xx",
                               **body_request(route, message,
                                              with_fragment(route.valid, name, fragment)))
            for name in route.required:
                rest = {k: v for k, v in route.valid.items() if k != name}
                await send(f"{key} without {name}", "400",
                           **body_request(route, message, json.dumps(rest).encode()))
            await send(f"{key} unknown field", "400", **body_request(
                route, message, json.dumps({**route.valid, "unexpected": 1}).encode()))
            for body in BAD_BODIES:
                expect = "413" if len(body) > MAX_JSON_BODY else "400"
                await send(f"{key} body {body[:30]!r} ({len(body)} bytes)", expect,
                           **body_request(route, message, body))
            path = route.path.format(message=message)
            await send(f"{key} no body at all", "not 5xx" if not route.required else "400",
                       method=route.method, path=path, headers=ADMIN)
            await send(f"{key} as a form", "400", method=route.method, path=path,
                       headers=ADMIN, data={"number": "5550199", "queue": "support"})
            form = FormData()
            form.add_field("file", b"%PDF-1.4", filename="x.pdf")
            await send(f"{key} as multipart", "400", method=route.method, path=path,
                       headers=ADMIN, data=form)
            await send(f"{key} valid JSON as text/plain", "not 5xx", method=route.method,
                       path=path, headers={**ADMIN, "Content-Type": "text/plain"},
                       data=json.dumps(route.valid).encode())
        for key, route in QUERY_ROUTES.items():
            for name, kind in route.kinds.items():
                for raw in QUERY_VALUES:
                    await send(f"{key} ?{name}={raw[:40]}",
                               "400" if query_must_refuse(kind, raw) else "not 5xx",
                               method=route.method, path=f"{route.path}?{name}={raw}",
                               headers=ADMIN)
                await send(f"{key} ?{name} twice", "400", method=route.method,
                           path=f"{route.path}?{name}=1&{name}=2", headers=ADMIN)
            for unknown in ("since=abc", "bogus=1", "%FF=1"):
                await send(f"{key} ?{unknown}", "400", method=route.method,
                           path=f"{route.path}?{unknown}", headers=ADMIN)
        for key, route in FILE_ROUTES.items():
            for body in (b"", b"junk", b"{}", b"\x00" * 200_000):
                await send(f"file {key} {body[:10]!r} ({len(body)} bytes)", "400",
                           method=route.method, path=route.path, data=body, headers=ADMIN)
        for key, path in PLAIN_ROUTES.items():
            await send(f"{key} with junk", "not 5xx", method=key[0],
                       path=f"{path.format(message=message)}?x=%FF&limit=nan",
                       data=b"[" * 100_000, headers=ADMIN)
        return out

    tmp = tmp_path_factory.mktemp("corpus")
    return serve(tmp, Ports(port_allocator), scenario)


def test_every_route_has_a_corpus_entry(tmp_path):
    served = routes(tmp_path)
    listed = {*JSON_ROUTES, *QUERY_ROUTES, *FILE_ROUTES, *PLAIN_ROUTES}
    assert served - listed == set(), "routes without a corpus entry"
    assert listed - served == set(), "corpus entries for routes that are gone"


def test_valid_bodies_are_accepted(answers):
    wrong = [a for a in answers if a[1] == "2xx" and not 200 <= a[2] < 300]
    assert not wrong, "\n".join(map(repr, wrong))


def test_nothing_in_the_corpus_answers_5xx(answers):
    broken = [a for a in answers if a[2] >= 500]
    assert not broken, f"{len(broken)} of {len(answers)}:\n" + "\n".join(map(repr, broken[:40]))


def test_bad_input_is_refused_with_400_or_413(answers):
    lenient = [a for a in answers if a[1] in ("400", "413") and str(a[2]) != a[1]]
    assert not lenient, f"{len(lenient)} of {len(answers)}:\n" + "\n".join(
        map(repr, lenient[:40]))


def test_refusals_of_wrong_input_name_the_field(answers):
    """"field: problem" (the stores' own refusals of well-typed values, such
    as "a PIN is 4 to 12 digits", and of files say it their way)."""
    mute = [a for a in answers if a[1] == "400" and a[2] == 400 and ":" not in a[3]
            and not a[0].startswith("file ")]
    assert not mute, "\n".join(map(repr, mute[:20]))
