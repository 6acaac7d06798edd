"""The bodies of the agent-control and web-callback requests
(``POST /api/agents/{agent}/{command}``, ``POST /api/callbacks``); shared by
the routes in ``server`` and their description in ``openapi``."""
from __future__ import annotations

import re
import time
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.api.request_input import JsonBody, iso_time
from sipagent.config.values import matching

_NUMBER = re.compile(r"\+?[0-9*#]{2,32}")
# A web callback's time: a little in the past is clock skew between the web
# form's server and ours (it is called at once); further back is a mistake,
# and a date months ahead is one too.
CALLBACK_PAST_TOLERANCE = 300.0
CALLBACK_HORIZON_DAYS = 30


def _callback_time(value) -> float:
    at = iso_time(value)
    now = time.time()
    if at < now - CALLBACK_PAST_TOLERANCE:
        raise ValueError(f"in the past (more than {CALLBACK_PAST_TOLERANCE / 60:g} minutes ago)")
    if at > now + CALLBACK_HORIZON_DAYS * 86400:
        raise ValueError(f"more than {CALLBACK_HORIZON_DAYS} days ahead, the limit for a "
                         "scheduled callback")
    return at


class AgentCommand(JsonBody):
    """The body of ``POST /api/agents/{agent}/{command}`` (may be empty)."""
    reason: Annotated[str, Field(max_length=64)] = ""


class CallbackRequest(JsonBody):
    """``POST /api/callbacks``: who to call back, for which queue, and when
    (``at``, ISO 8601; absent: as soon as an agent is free)."""
    number: Annotated[str, AfterValidator(matching(
        _NUMBER, "digits (optionally a leading +) required"))]
    queue: str
    at: Annotated[float, BeforeValidator(_callback_time)] | None = None
