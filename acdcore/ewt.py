"""Expected wait time (EWT) for position/wait announcements.

    EWT = position * mean_handle_time / serving_agents

``position`` is 1-based among the calls in the queue (waiting or ringing),
ordered by (-priority, enqueue time).  ``serving_agents`` counts the queue's
agents that are logged in and not paused (available, ringing, talking or in
wrap-up): each of them frees up on average once per handle time, so the
queue drains at ``serving / handle`` calls per second.  ``mean_handle_time``
is the mean over the last ``HANDLE_WINDOW`` connected calls of the queue of
(talk time + configured wrap-up), or ``QueueConfig.handle_time_hint`` until a
call has ended.  With nobody serving the wait is unknown: ``None``.
"""
from __future__ import annotations

HANDLE_WINDOW = 20


def expected_wait(position: int, serving: int, mean_handle: float) -> float | None:
    if serving <= 0:
        return None
    return position * mean_handle / serving


def mean_handle(samples, count: int, hint: float) -> float:
    """Mean of the ring buffer, summed in slot order (both engines agree bit for bit)."""
    if count <= 0:
        return hint
    total = 0.0
    for i in range(count):
        total += samples[i]
    return total / count
