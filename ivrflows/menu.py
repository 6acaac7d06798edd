"""Menus: a prompt, a key per branch, retries, and an operator fallback.

::

    await menu(call, "menu-main", {
        "1": support,              # an async function taking the call
        "2": "sales",              # a flow name: the call continues there
        "3": account_menu,
    }, operator=operator)

Built on :meth:`ivrflows.Call.gather` alone, so a menu behaves the same on a
real call and in the test kit.  A caller who fails every try, or presses
the operator key, is not dropped: they reach ``operator``.  Dropping a
caller who could not work a menu loses exactly the calls that most needed
a human.
"""
from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Iterable, Mapping

from ivrflows.call import Call, Prompt

Branch = Callable[[Call], Awaitable[Any]] | str

# What a branch returns to ask the enclosing menu loop to play again.
BACK = "back"


async def back(call: Call) -> str:
    """A branch for "press 9 to go back": the submenu returns :data:`BACK`."""
    return BACK


async def choose(call: Call, prompt: Prompt | None, keys: Iterable[str], *, tries: int = 3,
                 timeout: float = 5.0, inter_digit_timeout: float = 2.0,
                 invalid_prompt: str | None = "invalid",
                 no_input_prompt: str | None = "no-input") -> str | None:
    """The key the caller picked from ``keys``, or None after ``tries``
    tries without a valid one.  Keys may be longer than one digit ("10");
    the caller then ends with ``#`` or a short pause."""
    keys = list(keys)
    if not keys or any(not re.fullmatch(r"[0-9*#]+", k) for k in keys):
        raise ValueError(f"menu keys must be DTMF keys (0-9, * and #), got {keys!r}")
    longest = max(len(k) for k in keys)
    # '#' ends multi-digit input, so it cannot also be a choice there.
    terminators = "#" if longest > 1 and "#" not in keys else ""
    digits = await call.gather(prompt, max_digits=longest, timeout=timeout,
                               inter_digit_timeout=inter_digit_timeout,
                               terminators=terminators, tries=tries,
                               valid="|".join(re.escape(k) for k in keys),
                               invalid_prompt=invalid_prompt, no_input_prompt=no_input_prompt)
    return digits or None


async def menu(call: Call, prompt: Prompt, branches: Mapping[str, Branch], *,
               operator: Branch | None = None, operator_key: str | None = "0",
               tries: int = 3, timeout: float = 5.0,
               invalid_prompt: str | None = "invalid",
               no_input_prompt: str | None = "no-input") -> Any:
    """Play ``prompt``, take a key, run its branch and return what it returns.

    A branch is an async function of the call, or a flow name given to
    :meth:`~ivrflows.Call.goto_flow`.  ``operator`` runs when the caller
    presses ``operator_key`` (unless a branch owns that key) or fails
    ``tries`` times; without an operator the menu then returns None.
    """
    keys = dict(branches)
    if operator is not None and operator_key and operator_key not in keys:
        keys[operator_key] = operator
    choice = await choose(call, prompt, keys, tries=tries, timeout=timeout,
                          invalid_prompt=invalid_prompt, no_input_prompt=no_input_prompt)
    call.vars["menu_choice"] = choice or ""
    branch = keys[choice] if choice is not None else operator
    if branch is None:
        return None
    if isinstance(branch, str):
        return await call.goto_flow(branch)
    return await branch(call)
