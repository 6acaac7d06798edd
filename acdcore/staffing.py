"""Staffing: how many agents a forecast interval needs to meet its targets.

Built on the exact Erlang C / Erlang A models in ``erlang``: Erlang A when a
mean caller patience is known (it is the better model for any real queue,
where callers hang up), Erlang C otherwise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from acdcore.erlang import queue_model
from acdcore.service_level import ServiceLevelVariant

__all__ = ["StaffingPrediction", "predict", "agents_required"]


@dataclass(frozen=True, slots=True)
class StaffingPrediction:
    agents: int
    load: float
    service_level: float
    threshold: float
    variant: ServiceLevelVariant
    p_wait: float
    p_abandon: float
    asa: float
    occupancy: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["variant"] = self.variant.value
        return d


def predict(
    agents: int,
    arrival_rate: float,
    aht: float,
    threshold: float,
    patience: float | None = None,
    variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED,
    short_abandon: float = 5.0,
) -> StaffingPrediction:
    model = queue_model(agents, arrival_rate, aht, patience)
    return StaffingPrediction(
        agents=agents,
        load=model.load,
        service_level=model.service_level(threshold, variant, short_abandon),
        threshold=threshold,
        variant=ServiceLevelVariant(variant),
        p_wait=model.p_wait,
        p_abandon=model.p_abandon,
        asa=model.asa,
        occupancy=model.occupancy,
    )


def agents_required(
    arrival_rate: float,
    aht: float,
    target_sl: float,
    threshold: float,
    patience: float | None = None,
    *,
    variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED,
    short_abandon: float = 5.0,
    max_asa: float | None = None,
    max_p_abandon: float | None = None,
    max_occupancy: float | None = None,
) -> StaffingPrediction:
    """The fewest agents meeting every given target (SL is a ratio, 0.8 = 80 %).

    Each KPI improves monotonically with N, so a doubling search followed by
    bisection needs O(log N) model evaluations.  Erlang C starts above the
    load (fewer agents never drain the queue); Erlang A may legitimately
    need fewer agents than Erlang's, because abandons shed load.
    """
    if not 0 <= target_sl < 1:
        raise ValueError(f"target service level must be a ratio in [0, 1), got {target_sl}")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError(f"max occupancy must be a ratio in (0, 1], got {max_occupancy}")

    def meets(n: int) -> StaffingPrediction | None:
        p = predict(n, arrival_rate, aht, threshold, patience, variant, short_abandon)
        ok = (
            not math.isnan(p.service_level) and p.service_level >= target_sl
            and (max_asa is None or p.asa <= max_asa)
            and (max_p_abandon is None or p.p_abandon <= max_p_abandon)
            and (max_occupancy is None or p.occupancy <= max_occupancy)
        )
        return p if ok else None

    load = arrival_rate * aht
    low = int(math.floor(load)) if patience is None or math.isinf(patience) else 0
    high = max(low + 1, 1)
    while (found := meets(high)) is None:
        low, high = high, high * 2
        if high > 10_000_000:
            raise ValueError("no staffing level up to 10 million agents meets the targets")
    while high - low > 1:
        mid = (low + high) // 2
        if (p := meets(mid)) is not None:
            high, found = mid, p
        else:
            low = mid
    return found
