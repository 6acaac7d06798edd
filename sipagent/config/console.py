"""The ``[console]`` section: what the web console's wallboard and reports
need from the operator.

::

    [console]
    timezone = "Europe/Berlin"   # IANA name: "today" starts at its midnight,
                                 # report dates are its calendar days
    [console.thresholds]         # when a wallboard figure turns amber / red
    waiting_warn = 5             # callers waiting
    waiting_alarm = 10
    longest_wait_warn = 60       # seconds the longest waiting caller has waited
    longest_wait_alarm = 120
    abandon_warn = 0.05          # abandon rate, 0..1
    abandon_alarm = 0.10
    sl_warn = 0.80               # service level, 0..1: amber BELOW this
    sl_alarm = 0.70              #                      red below this
    long_call = 600              # seconds: a call this long is flagged

A warning must come before its alarm: ``waiting_warn <= waiting_alarm``,
and for the service level (where lower is worse) ``sl_warn >= sl_alarm``.
"""
from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, model_validator

from sipagent.config.values import Count, PositiveSeconds, Section, section

Ratio = Annotated[float, Field(ge=0, le=1)]


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. \"Europe/Berlin\", "
                         "\"America/New_York\", \"UTC\")") from None
    return name


class ConsoleThresholds(Section):
    waiting_warn: Count = 5
    waiting_alarm: Count = 10
    longest_wait_warn: PositiveSeconds = 60.0
    longest_wait_alarm: PositiveSeconds = 120.0
    abandon_warn: Ratio = 0.05
    abandon_alarm: Ratio = 0.10
    sl_warn: Ratio = 0.80
    sl_alarm: Ratio = 0.70
    long_call: PositiveSeconds = 600.0

    @model_validator(mode="after")
    def _warn_before_alarm(self) -> ConsoleThresholds:
        for name in ("waiting", "longest_wait", "abandon"):
            warn, alarm = getattr(self, f"{name}_warn"), getattr(self, f"{name}_alarm")
            if warn > alarm:
                raise ValueError(f"{name}_warn ({warn:g}) is above {name}_alarm ({alarm:g})")
        if self.sl_warn < self.sl_alarm:
            raise ValueError(f"sl_warn ({self.sl_warn:g}) is below sl_alarm ({self.sl_alarm:g}):"
                             " a service level turns amber before it turns red")
        return self


class ConsoleSection(Section):
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    thresholds: ConsoleThresholds = section()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
