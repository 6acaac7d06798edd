"""The ``[auth]``, ``[users.<name>]`` and ``[desktop]`` sections: who logs in
to the console, and what the agent desktop offers.

::

    [auth]
    session_ttl = 28800        # seconds a console session lasts after login
    lockout_failures = 5       # wrong passwords in a row before...
    lockout_seconds = 300      # ...the user is locked this long
    cookie_secure = false      # true behind HTTPS: the cookie gets "Secure"

    [users.sam]
    role = "supervisor"        # "admin", "supervisor" or "agent"
    password_hash = "scrypt$14$8$1$..."   # `sipacd passwd` makes one
    queues = ["sales"]         # a supervisor's scope; absent: every queue

    [users.alice]
    role = "agent"
    agent = "alice"            # the agent this login is (required for "agent")
    password_hash = "scrypt$..."

    [desktop]
    dispositions = ["sale", "no_sale", "callback", "info"]
    history_limit = 10         # past calls of the caller in the screen pop

A password is never written in clear: only its scrypt hash.  The file's
users seed the database (sipagent/store/people.py says how the two
combine); the admin API adds and edits users at run time.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.config.values import Name, PositiveSeconds, Section, as_tuple
from sipagent.store.pin import is_pin_hash

DISPOSITION = r"^[A-Za-z0-9_.-]{1,40}$"


def _must_be_password_hash(value: str) -> str:
    if not is_pin_hash(value):
        # Never echo the value: it may be a password pasted by mistake.
        raise ValueError("must be a 'scrypt$...' hash made by `sipacd passwd`, "
                         "never a password in clear")
    return value


PasswordHash = Annotated[str, AfterValidator(_must_be_password_hash)]


class AuthSection(Section):
    session_ttl: PositiveSeconds = 8 * 3600.0
    lockout_failures: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_seconds: PositiveSeconds = 300.0
    cookie_secure: bool = False


class UserSection(Section):
    role: Literal["admin", "supervisor", "agent"]
    password_hash: PasswordHash | None = None
    agent: Name | None = None
    queues: Annotated[tuple[Name, ...], BeforeValidator(as_tuple)] | None = None


class DesktopSection(Section):
    dispositions: Annotated[tuple[Annotated[str, Field(pattern=DISPOSITION)], ...],
                            BeforeValidator(as_tuple)] = ()
    history_limit: Annotated[int, Field(ge=0, le=100)] = 10


def people_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks: an agent user names a known agent, scopes name
    known queues and only supervisors have one."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, user in config.users.items():
        where = ("users", name)
        if user.role == "agent" and user.agent is None:
            problems.append(((*where, "agent"), "required key missing for role 'agent'"))
        elif user.agent is not None and user.agent not in config.agents:
            problems.append(((*where, "agent"), f"unknown agent {user.agent!r} (defined "
                                                f"agents: {', '.join(config.agents) or 'none'})"))
        if user.queues is not None and user.role != "supervisor":
            problems.append(((*where, "queues"), f"only for role 'supervisor', not {user.role!r}"))
        for i, queue in enumerate(user.queues or ()):
            if queue not in config.queues:
                problems.append(((*where, "queues", i), f"unknown queue {queue!r} (defined "
                                 f"queues: {', '.join(config.queues) or 'none'})"))
    dupes = sorted({d for d in config.desktop.dispositions
                    if config.desktop.dispositions.count(d) > 1})
    if dupes:
        problems.append((("desktop", "dispositions"), f"listed twice: {', '.join(dupes)}"))
    return problems
