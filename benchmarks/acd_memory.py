"""Memory per waiting call of an ACD engine, for benchmarks/acd_core.py.

Measured in a fresh interpreter (this file run as a script): in the
benchmark's own, earlier replays left freed arenas behind that the fill
phase would silently reuse (RSS growth 0).  The engine fills a recorded
trace to its waiting depth twice: once watching RSS (sees C allocations,
and allocator slack: an upper bound), once with tracemalloc (Python-heap
objects only: exact, but blind to raw malloc).

    python benchmarks/acd_memory.py TRACE_PICKLE ENGINE IDS   # internal
"""
from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from acd_trace import Trace, config_for  # noqa: E402


def memory_per_waiting(engine: str, trace: Trace, ids: str = "str") -> dict[str, float]:
    """Bytes per waiting call of ``engine`` (an ``acd_core.engines()`` name,
    or ``cython_runtime``) on ``trace`` with ``ids``, from a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".trace", delete=False) as f:
        # Plain fields, not the Trace object: the probe runs this file as
        # __main__, another module name than the one that pickled it.
        pickle.dump(vars(trace), f, protocol=pickle.HIGHEST_PROTOCOL)
        path = f.name
    try:
        done = subprocess.run([sys.executable, __file__, path, engine, ids],
                              capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    return json.loads(done.stdout)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _probe(path: str, engine: str, ids: str) -> dict[str, float]:
    from acd_core import engines, runtime_engine

    with open(path, "rb") as f:
        trace = Trace(**pickle.load(f))
    cls = runtime_engine() if engine == "cython_runtime" else engines()[engine]
    queues, agents = config_for(trace, ids)
    events = trace.events

    def filled(measure):
        """A fresh scheduler up to the fill, then the fill inside ``measure``;
        the growth it reports per waiting call."""
        h = cls(queues, agents, seed=7).handle_raw
        for code, t, c, a, q in events[: trace.fill_start]:
            h(code, t, c, a, None, q, 0)
        gc.collect()
        with measure() as grown:
            for code, t, c, a, q in events[trace.fill_start: trace.fill_end]:
                h(code, t, c, a, None, q, 0)
            gc.collect()
        return grown[0] / trace.waiting_at_fill_end

    return {"rss_bytes_per_waiting_call": filled(_RssGrowth),
            "traced_bytes_per_waiting_call": filled(_TracedGrowth)}


class _RssGrowth:
    def __enter__(self):
        self.grown = [0]
        self.before = _rss_bytes()
        return self.grown

    def __exit__(self, *exc):
        self.grown[0] = _rss_bytes() - self.before


class _TracedGrowth:
    def __enter__(self):
        self.grown = [0]
        tracemalloc.start()
        self.before, _ = tracemalloc.get_traced_memory()
        return self.grown

    def __exit__(self, *exc):
        now, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.grown[0] = now - self.before


if __name__ == "__main__":
    print(json.dumps(_probe(*sys.argv[1:4])))
