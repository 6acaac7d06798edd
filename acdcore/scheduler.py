"""``Scheduler``: the compiled engine when it is built, else the reference.

``COMPILED`` tells which one you got.  Both have the same API and produce the
same actions (tests/acdcore/test_differential.py).
"""
try:
    from ._scheduler import Scheduler
    COMPILED = True
except ImportError:  # no build: the executable specification is a full engine too
    from .reference import ReferenceScheduler as Scheduler
    COMPILED = False

__all__ = ["Scheduler", "COMPILED"]
