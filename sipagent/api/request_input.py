"""What a client sends, read into typed models: the JSON body and the query.

Every route that reads a body or query parameters does it here, so each
refusal is the same: ``400`` with one line of text that names the field or
parameter and says what is wrong (``number: ...; at: ...``), or ``413`` for
a body over :data:`MAX_JSON_BODY`.  Nothing a client sends reaches a handler
unchecked, so no input can make a handler fail with a 500.

The body is parsed by pydantic-core's own JSON parser, never by ``json``:
the stdlib parser recurses per nesting level and a deep enough body raises
RecursionError.  pydantic-core stops at 200 levels and says "recursion limit
exceeded", which becomes a 400 like any other malformed body; the size cap
bounds the work before that.  That parser also refuses lone UTF-16
surrogates (``"\\ud800"``), which SQLite could not store.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from sipagent.api.files import read_upload

# The largest legitimate body (a fax job naming many documents, a mailbox's
# e-mail list) is a few kilobytes.
MAX_JSON_BODY = 64 * 1024
# A client making many mistakes at once hears about the first few.
_MAX_PROBLEMS = 5


class JsonBody(BaseModel):
    """A request body: JSON types as they are (no "5" for 5, no true for 1),
    finite numbers, and no keys the route does not know."""
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class QueryParameters(BaseModel):
    """A route's query parameters: text read as the field's type (a query has
    no other), finite numbers, and no parameters the route does not know."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


Body = TypeVar("Body", bound=JsonBody)
Query = TypeVar("Query", bound=QueryParameters)


async def read_body(request: web.Request, model: type[Body]) -> Body:
    """The body as ``model``; no body at all reads as ``{}``."""
    try:
        data = await read_upload(request, MAX_JSON_BODY) if request.can_read_body else b""
    except web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(
            MAX_JSON_BODY, text=f"body: over {MAX_JSON_BODY // 1024} KiB, the limit for "
                                "a JSON request\n") from None
    try:
        return model.model_validate_json(data or b"{}")
    except ValidationError as exc:
        raise _refusal(exc, "body", "not a field of this request") from None


def read_query(request: web.Request, model: type[Query]) -> Query:
    """The query parameters as ``model``."""
    given = request.query
    for name in given:
        if len(given.getall(name)) > 1:
            raise web.HTTPBadRequest(text=f"{name}: given more than once\n")
    try:
        return model.model_validate(dict(given))
    except ValidationError as exc:
        known = ", ".join(model.model_fields)
        raise _refusal(exc, "query", f"not a parameter here (known: {known})") from None


def _refusal(exc: ValidationError, whole: str, unknown: str) -> web.HTTPBadRequest:
    problems = []
    for error in exc.errors(include_url=False)[:_MAX_PROBLEMS]:
        where = ".".join(str(part) for part in error["loc"]) or whole
        problems.append(f"{where}: {_problem(error, unknown)}")
    return web.HTTPBadRequest(text="; ".join(problems) + "\n")


def _problem(error: dict, unknown: str) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return unknown
    if kind == "missing":
        return "required"
    if kind == "model_type":
        return "must be a JSON object"
    if kind == "json_invalid":
        return f"not valid JSON ({ctx.get('error', 'unreadable')})"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])    # our validators' own words, without pydantic's prefix
    return error["msg"]


# -- value types shared by the routes ------------------------------------------------

def blank_is_absent(value: Any) -> Any:
    """``?state=`` filters nothing, as if the parameter were not there."""
    return None if value == "" else value


def _wall_clock(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = None
    if seconds is None:
        try:
            return iso_time(value)
        except ValueError:
            raise ValueError("an ISO 8601 time or Unix seconds") from None
    if not math.isfinite(seconds):
        raise ValueError("a finite number of Unix seconds, or an ISO 8601 time")
    return seconds


def iso_time(value: Any) -> float:
    """Unix seconds of an ISO 8601 time (local time when it names no zone)."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError, OverflowError):
        raise ValueError("an ISO 8601 time expected") from None


# A query time: Unix seconds (finite) or ISO 8601.
WallClock = Annotated[float, BeforeValidator(_wall_clock)]
