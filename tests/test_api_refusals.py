"""Input the HTTP API used to take or choke on, now refused with a 400 that
names the field or parameter: the hardening issue's items 4 (500s) and 11
(lenient input), on the engine's whole app (see apikit)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from apikit import ADMIN, CALLBACK, SUPERVISOR, serve

JSON_ROUTES = [("POST", "/api/agents/alice/pause"), ("POST", "/api/callbacks"),
               ("PATCH", "/api/voicemail/200"), ("PUT", "/api/voicemail/200/pin"),
               ("PATCH", "/api/voicemail/200/messages/{message}"),
               ("PUT", "/api/fax/documents/1/pin"), ("POST", "/api/fax/jobs")]


def answers(tmp_path, ports, requests):
    """(status, text) of each ``(method, path, keyword arguments)``, in order."""
    async def scenario(client, engine):
        out = []
        for method, path, kw in requests:
            r = await client.request(method, path.format(message=engine.message_id), **kw)
            out.append((r.status, await r.text()))
        return out
    return serve(tmp_path, ports, scenario)


def callback(at: str | None = None, queue="support") -> tuple:
    body = {"number": "+15550199", "queue": queue, **({"at": at} if at else {})}
    return "POST", "/api/callbacks", {"json": body, "headers": CALLBACK}


def in_(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).isoformat()


def test_a_callback_queue_of_the_wrong_type_is_a_400_naming_it(tmp_path, ports):
    got = answers(tmp_path, ports, [callback(queue=["x"]), callback(queue={"a": 1})])
    assert [status for status, _ in got] == [400, 400]
    assert all(text.startswith("queue: ") for _, text in got), got


def test_deeply_nested_json_is_refused_on_every_json_route(tmp_path, ports):
    huge = b"[" * 200_000                       # over the size cap
    deep = b'{"a": ' * 5_000 + b"1" + b"}" * 5_000     # under it
    requests = [(method, path, {"data": body, "headers": {**ADMIN,
                                                          "Content-Type": "application/json"}})
                for method, path in JSON_ROUTES for body in (huge, deep)]
    got = answers(tmp_path, ports, requests)
    assert [status for status, _ in got] == [413, 400] * len(JSON_ROUTES), got
    assert all(text == "body: over 64 KiB, the limit for a JSON request\n"
               for _, text in got[::2]), got
    assert all(text.startswith("body: not valid JSON (recursion limit exceeded")
               for _, text in got[1::2]), got


def test_fax_log_since_is_refused_naming_it(tmp_path, ports):
    (status, text), = answers(tmp_path, ports, [("GET", "/api/fax/log?since=abc",
                                                 {"headers": SUPERVISOR})])
    assert status == 400 and text.startswith("since: not a parameter here"), text


def test_voicemail_since_nan_and_a_negative_limit_are_refused(tmp_path, ports):
    got = answers(tmp_path, ports, [
        ("GET", f"/api/voicemail/200/messages?{query}", {"headers": SUPERVISOR})
        for query in ("since=nan", "until=inf", "limit=-5", "limit=0", "urgent=maybe")])
    assert [status for status, _ in got] == [400] * 5, got
    assert [text.split(":")[0] for _, text in got] == ["since", "until", "limit", "limit",
                                                        "urgent"]


def test_a_web_callback_in_year_9999_is_refused_naming_the_limit(tmp_path, ports):
    (status, text), = answers(tmp_path, ports, [callback("9999-12-31T23:59:59+00:00")])
    assert status == 400 and text.startswith("at: more than 30 days ahead"), text


def test_a_web_callback_time_is_within_minutes_ago_and_30_days_ahead(tmp_path, ports):
    got = answers(tmp_path, ports, [
        callback(in_(-timedelta(hours=1))), callback(in_(-timedelta(minutes=2))),
        callback(in_(timedelta(minutes=10))), callback(in_(timedelta(days=29))),
        callback(in_(timedelta(days=31))), callback("0001-01-01T00:00:00"),
        callback("tomorrow")])
    assert [status for status, _ in got] == [400, 202, 202, 202, 400, 400, 400], got
    assert got[0][1].startswith("at: in the past") and got[6][1].startswith("at: an ISO 8601")


def test_a_command_the_agent_state_does_not_allow_is_a_409(tmp_path, ports):
    # alice starts logged out (auto_login is off)
    got = answers(tmp_path, ports, [
        ("POST", "/api/agents/alice/pause", {"json": {"reason": "lunch"}, "headers": ADMIN}),
        ("POST", "/api/agents/alice/login", {"headers": ADMIN}),
        ("POST", "/api/agents/alice/login", {"headers": ADMIN}),
        ("POST", "/api/agents/alice/pause", {"json": {"reason": "lunch"}, "headers": ADMIN})])
    assert [status for status, _ in got] == [409, 200, 409, 200], got
    assert got[0][1] == "agent 'alice' cannot pause while logged_out\n"
    assert json.loads(got[3][1])["state"] == "paused"


def test_valid_requests_answer_as_before(tmp_path, ports):
    got = answers(tmp_path, ports, [
        ("GET", "/api/voicemail/200/messages?limit=99999&urgent=&since=0", {"headers": ADMIN}),
        ("GET", "/api/fax/jobs?state=&limit=1000", {"headers": ADMIN}),
        ("PATCH", "/api/voicemail/200", {"json": {"max_length": 60, "webhook": None},
                                          "headers": ADMIN}),
        ("PUT", "/api/fax/documents/1/pin", {"json": {"pin": None}, "headers": ADMIN})])
    assert [status for status, _ in got] == [200, 200, 200, 200], got
    assert len(json.loads(got[0][1])["messages"]) == 1
    assert json.loads(got[2][1])["max_length"] == 60.0
