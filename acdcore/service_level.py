"""Service-level variants: the one place their formulas live.

Vendors disagree on what "80 % within 20 s" divides by (see the KPI
definitions: Asterisk/Avaya divide by answered calls, Genesys "include
abandons" and Erlang A by answered + abandoned, ...). The engine stays
neutral: it counts the raw ingredients and derives every variant with the
same function, whether the counts come from live calls (``kpi``), from the
simulator (``sim``) or from queueing formulas (``erlang``, which passes
probabilities instead of counts — the ratios are the same).
"""
from __future__ import annotations

import enum
import math

__all__ = ["ServiceLevelVariant", "service_level"]


class ServiceLevelVariant(str, enum.Enum):
    #: answered within T / answered  (Asterisk ServicelevelPerf, Avaya CMS, Wazo)
    ANSWERED = "answered"
    #: answered within T / (answered + abandoned)  (Genesys "include abandons", Erlang A)
    OFFERED = "offered"
    #: answered within T / (answered + abandoned - short abandons)
    EXCLUDING_SHORT_ABANDONS = "excluding_short_abandons"
    #: (answered within T + abandoned within T) / (answered + abandoned)
    ABANDONS_POSITIVE = "abandons_positive"


def service_level(
    variant: ServiceLevelVariant,
    *,
    answered: float,
    answered_within: float,
    abandoned: float,
    abandoned_within: float = 0.0,
    short_abandoned: float = 0.0,
) -> float:
    """The service level as a ratio in 0..1, or NaN when nothing was counted.

    Calls that exited with a reason (timeout, queue full, ...) are not in any
    denominator: every variant in KPI.md is over answered and abandoned calls.
    NaN rather than 0 or 1 for an empty denominator, because an idle queue
    has neither met nor missed its target.
    """
    variant = ServiceLevelVariant(variant)
    if variant is ServiceLevelVariant.ANSWERED:
        num, den = answered_within, answered
    elif variant is ServiceLevelVariant.OFFERED:
        num, den = answered_within, answered + abandoned
    elif variant is ServiceLevelVariant.EXCLUDING_SHORT_ABANDONS:
        num, den = answered_within, answered + abandoned - short_abandoned
    else:
        num, den = answered_within + abandoned_within, answered + abandoned
    if den <= 0:
        return math.nan
    return num / den
