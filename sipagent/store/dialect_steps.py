"""Migration steps written twice, where SQLite and PostgreSQL must differ.

A store's migrations are portable SQL (``migrations``), with one exception:
a step that carries SQLite's hidden ``rowid`` over into a real column (the
order rows were added in, which PostgreSQL has no notion of).  Such a step
is a mapping ``{"sqlite": ..., "postgresql": ...}``; :func:`for_dialect`
picks each store's own before ``open_database`` runs them.  Both texts make
the same schema, so a version means the same tables on either backend.
"""
from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["for_dialect"]

Step = Sequence[str] | str | Mapping[str, Sequence[str] | str]


def for_dialect(migrations: Sequence[Step], dialect: str) -> tuple:
    """``migrations`` with every two-dialect step resolved for ``dialect``."""
    return tuple(step[dialect] if isinstance(step, Mapping) else step for step in migrations)
