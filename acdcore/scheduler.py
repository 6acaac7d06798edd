"""``Scheduler``: the compiled engine when it is built, else the reference.

``COMPILED`` tells which one you got.  ``InternedScheduler`` is the one a
runtime uses: the same API for str ids, which it maps to ints in C
(_scheduler_idtable.pxi) so the compiled core runs on its int-id path;
without a build it is the reference, which takes str ids as they are.
All have the same API and produce the same actions
(tests/acdcore/test_acd_differential.py, tests/acdcore/test_acd_ids.py).

API (identical for ``ReferenceScheduler`` and the Cython ``Scheduler``)::

    Scheduler(queues: list[QueueConfig], agents: list[AgentConfig], seed: int = 0,
              fairness: str = "oldest")      # or "weight": higher queue weight first
    .handle(event) -> list[action]           # events.py in, actions.py out
    .handle_raw(code, t, call_id=None, agent_id=None, ev=None, queue=None, priority=0, /)
    .next_deadline() -> float | None         # call handle(Tick(that time)) then
    .add_agent(AgentConfig) / .remove_agent(agent_id)   # remove: logged out only
    .agent_state(agent_id) -> str            # logged_out|available|offered|busy|wrap_up|paused
    .agent_pause_reason(agent_id) -> str | None
    .call_state(call_id) -> str              # waiting|offered|talking
    .queue_position(call_id) -> int | None   # 1-based; None once connected
    .ewt(call_id) -> float | None            # seconds, formula in ewt.py
    .queue_ewt(queue) -> float | None        # for a caller joining now: position = waiting + 1
    .waiting_count(queue) -> int             # waiting + ringing calls
    .oldest_wait_start(queue) -> float | None
    .agents_by_state(queue) -> dict[str, int]
    .heap_sizes() -> dict[str, int]          # memory checks
    .check_invariants()                      # O(n), tests only; raises AssertionError

Fast path: ``handle_raw`` takes the event's fields positionally with ``code``
one of ``events.EV_*`` (no event object is built or inspected); ``ev`` may
carry the rare fields (skills, callback, pause reason).  Any hashable works
as a call or agent id.  Int ids are the fast path of the compiled engine:
it indexes them in a C table instead of a dict (a number equal to an int,
such as ``5.0`` or ``True``, is that int's id, as in a dict).  A runtime
that interns its SIP Call-IDs and agent names to ints (and builds its
``AgentConfig``s with those ints) skips the dict lookups;
benchmarks/acd_core.py measures both ways.

``InternedScheduler`` does that interning for a runtime that holds str ids
(sipagent's queue runtime): ids must be str; its C id table maps them to
ints when a call arrives or an agent is added, keeps a call's int while the
core refers to it (live, or an agent's last cancelled offer) and reuses it
only after; actions carry the runtime's own ids.  Extras: ``.core`` (the
int-id Scheduler inside), ``.calls`` / ``.agents_table`` (``key_of``,
``name_of``, ``refs_of``, ``len``).  Row ``cython_runtime_ids`` of
benchmarks/acd_core.py measures it.

Errors: impossible events raise ``AcdError`` subclasses (unknown ids,
transitions the tables in states.py forbid) and leave the scheduler as it
was; actions of timers that fired before the bad event are on
``exc.actions``.  Network races (an agent answering an offer the engine just
cancelled, a late reject) never raise: see reference.py.
"""
try:
    from ._scheduler import InternedScheduler, Scheduler
    COMPILED = True
except ImportError:  # no build: the executable specification is a full engine too
    from .reference import ReferenceScheduler as Scheduler
    InternedScheduler = Scheduler
    COMPILED = False

__all__ = ["Scheduler", "InternedScheduler", "COMPILED"]
