"""The audit trail of admin changes: who changed what, before and after, when.

Rows live in ``people.sqlite3`` (table ``audit``, see ``store.people``) and
are written in the same transaction as the change they describe, so there
is never a change without its row or a row without its change.  ``before``
and ``after`` are JSON (None for a creation / a removal); secrets (password
and PIN hashes) never appear in them, only whether one is set.
"""
from __future__ import annotations

import json
from typing import Any

from sipagent.store.database import Database


def record(db: Database, t: float, who: str, action: str, target: str,
           before: Any = None, after: Any = None) -> None:
    """One row, inside the caller's ``db.transaction()``."""
    db.execute("INSERT INTO audit (t, who, action, target, before, after)"
               " VALUES (?, ?, ?, ?, ?, ?)", (t, who, action, target, _json(before), _json(after)))


def audit_rows(db: Database, *, limit: int = 100, before_id: int | None = None,
               target: str | None = None) -> list[dict]:
    """Newest first; ``before_id`` pages back, ``target`` filters."""
    sql, args = "SELECT id, t, who, action, target, before, after FROM audit WHERE 1 = 1", []
    if before_id is not None:
        sql += " AND id < ?"
        args.append(before_id)
    if target is not None:
        sql += " AND target = ?"
        args.append(target)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return [{"id": i, "t": t, "who": who, "action": action, "target": tgt,
             "before": None if b is None else json.loads(b),
             "after": None if a is None else json.loads(a)}
            for i, t, who, action, tgt, b, a in db.read(sql, tuple(args))]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)
