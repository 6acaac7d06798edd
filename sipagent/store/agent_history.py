"""An agent's last state of its own choosing, from the event log: what a
node that takes a partition over restores when it puts the agent on duty
(a paused agent stays paused, with its reason).

Logouts the system made (the node died, the partition moved, the engine
stopped) are not the agent's choice and are looked past.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sipagent.store.closeout import NODE_LOST, RESTART
from sipagent.store.eventlog_schema import read_only

__all__ = ["SYSTEM_LOGOUTS", "last_chosen_states"]

#: LOGOUT reasons that were not the agent's doing.
SYSTEM_LOGOUTS = (NODE_LOST, RESTART, "partition_moved", "shutdown")

_LAST = ("SELECT kind, reason FROM event WHERE agent = ?"
         " AND kind IN ('LOGIN', 'LOGOUT', 'PAUSE', 'UNPAUSE', 'READY')"
         f" AND NOT (kind = 'LOGOUT' AND reason IN ({', '.join('?' * len(SYSTEM_LOGOUTS))}))"
         " ORDER BY t DESC, id DESC LIMIT 1")


def last_chosen_states(source: Path | str, agents: Iterable[str]) -> dict[str, tuple]:
    """agent -> (kind, reason) of its last such event; agents without one
    are left out.  Blocking."""
    conn = read_only(source)
    try:
        out = {}
        for agent in agents:
            row = conn.execute(_LAST, (agent, *SYSTEM_LOGOUTS)).fetchone()
            if row is not None:
                out[agent] = tuple(row)
        return out
    finally:
        conn.close()
