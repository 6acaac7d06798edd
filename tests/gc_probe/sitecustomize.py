"""A garbage probe for the engine process of tests/test_call_garbage_sip.py.

On ``PYTHONPATH`` with ``SIPACD_GC_PROBE=<file>`` in the environment, it
makes the engine (``python -m sipagent run`` only: the phones get the same
environment) keep what the cyclic collector finds unreachable
(``gc.DEBUG_SAVEALL``) instead of freeing it.  When ``<file>.ask`` appears,
a thread collects, counts the saved objects by type and writes
``{"types": {qualname: n}, "collections": n}`` to ``<file>`` (atomically),
having removed the ask first.  What reference counting frees never reaches
``gc.garbage``: an object counted here was part of, or held by, a cycle.

A cycle of the probe's own (``GcProbeSentinel``) is made at start, so the
report shows the probe works: it must count it.
"""
import gc
import json
import os
import threading
import time
from collections import Counter


class GcProbeSentinel:
    pass


def _is_engine() -> bool:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"sipagent" in argv and b"run" in argv


def _serve(path: str) -> None:
    ask = path + ".ask"
    while True:
        time.sleep(0.1)
        if not os.path.exists(ask):
            continue
        os.remove(ask)            # before the report: a next ask is never lost
        gc.collect()
        types = Counter(type(o).__qualname__ for o in gc.garbage)
        report = {"types": dict(types), "collections": sum(s["collections"] for s in gc.get_stats())}
        with open(path + ".tmp", "w") as f:
            json.dump(report, f)
        os.replace(path + ".tmp", path)


_PATH = os.environ.get("SIPACD_GC_PROBE")
if _PATH and _is_engine():
    gc.set_debug(gc.DEBUG_SAVEALL)
    _sentinel = GcProbeSentinel()
    _sentinel.me = _sentinel
    del _sentinel
    threading.Thread(target=_serve, args=(_PATH,), daemon=True, name="gc-probe").start()
