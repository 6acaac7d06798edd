"""splitmix64: the engine's only source of randomness.

Tiny, seeded and bit-for-bit reproducible in C (``_scheduler.pyx`` has the
same three lines with uint64 arithmetic), so the reference and the Cython
engine draw identical numbers and make identical random choices.
"""
from __future__ import annotations

import math

_MASK = (1 << 64) - 1


class SplitMix64:
    __slots__ = ("state",)

    def __init__(self, seed: int = 0):
        self.state = seed & _MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """In [0, 1), 53 random bits."""
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)

    def exp1(self) -> float:
        """Exponential with rate 1 (used as a memoryless race clock)."""
        return -math.log(1.0 - self.uniform())
