"""The two ways a kit run can go wrong besides the flow's own exceptions."""
from __future__ import annotations


class FlowStalled(RuntimeError):
    """Every task waits for something no timer will bring: the flow hangs."""


class FlowMistake(AssertionError):
    """The flow did something the real engine would refuse (playing before
    answering, an unknown queue, schedule or flow)."""
