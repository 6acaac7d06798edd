"""One /metrics scrape as a dict, and what the SIP benchmarks read from two
of them: a sample's value, a counter's growth, a histogram's quantile.

A scrape is ``{(name, ((label, value), ...)): value}`` (labels sorted), as
``EngineProc.metrics()`` returns it; a missing sample reads 0, as
Prometheus treats an absent counter.
"""
from __future__ import annotations

import math


def parse(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(m: dict, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def total(m: dict, name: str) -> float:
    """A metric summed over all its label values."""
    return sum(v for (n, _lab), v in m.items() if n == name)


def delta(a: dict, b: dict, name: str, **labels) -> float:
    return val(b, name, **labels) - val(a, name, **labels)


def has(m: dict, name: str) -> bool:
    return any(k[0] == name for k in m)


def bucket_deltas(a: dict, b: dict, name: str, **labels) -> list[tuple[float, float]]:
    """[(le, cumulative count delta)] of a histogram, sorted by le."""
    out = []
    want = set(labels.items())
    for (n, lab), v in b.items():
        if n != f"{name}_bucket" or not want <= set(lab):
            continue
        d = dict(lab)
        le = float(d["le"])
        out.append((le, v - a.get((n, lab), 0.0)))
    return sorted(out)


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 1)
        prev_le, prev_c = le, c
    return prev_le
