"""The simulator's event loop in plain Python: the specification of ``_sim_loop.pyx``.

``sim.simulate`` runs the compiled loop when it is built and this one
otherwise; the two must produce identical ``LoopOutput`` for the same input
(tests/acdcore/test_sim.py checks it), the same contract as reference.py and
the compiled scheduler.

The loop records raw facts only — each call's outcome and wait, head-count
changes for occupancy, exit reasons — and leaves every KPI to ``sim``.

Heap entries are ``(t, kind, a, b)``: ties at one instant are broken by
kind, then by call id / agent index, so both loops pop in the same order.
Agents are known to the scheduler by their index (ids may be ints), which
saves a dict lookup per action.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from acdcore import events as E
from acdcore.actions import AgentAutoPaused, CallExited, CancelOffer, Connect, Offer, OfferTimedOut, WrapUpEnded

# Heap entry kinds, in tie-break order.
K_LOGIN, K_ANSWER, K_END, K_ABANDON, K_LOGOUT = range(5)
# Call outcome codes (``LoopOutput.status``).
WAITING, TALKING, DONE, ABANDONED, EXITED = range(5)
# Agent occupancy states: only what occupancy needs, not the scheduler's states.
OUT, IDLE, BUSY, PAUSED = range(4)


@dataclass
class LoopInput:
    arrival: np.ndarray     # float64, sorted
    queue: np.ndarray       # int64 index into names
    handle: np.ndarray      # float64 talk time
    expiry: np.ndarray      # float64 arrival + patience (inf: never abandons)
    names: list[str]
    wrap_up: list[float]    # per queue
    login: np.ndarray       # float64 per agent
    logout: np.ndarray      # float64 per agent (inf: stays)
    answer_delay: float


@dataclass
class LoopOutput:
    status: np.ndarray      # uint8 outcome per call
    wait: np.ndarray        # float64 wait per call (answered or abandoned)
    exits: list[tuple[int, str]]  # (call, reason) for CallExited
    occupancy: np.ndarray   # (k, 4) float64 rows of (t, agent, Δbusy, Δidle)
    events: int             # events handed to the scheduler, Ticks included
    t_last: float


def run(sched, inp: LoopInput) -> LoopOutput:
    arr_t = inp.arrival.tolist()        # Python floats index faster than numpy scalars
    arr_q = inp.queue.tolist()
    handle = inp.handle.tolist()
    expiry = inp.expiry.tolist()
    names, wrap_of, delay = inp.names, inp.wrap_up, inp.answer_delay
    n_calls = len(arr_t)
    status = bytearray(n_calls)
    wait = [0.0] * n_calls
    exits: list[tuple[int, str]] = []
    occ: list[tuple[float, int, int, int]] = []
    log_occ = occ.append
    agent_state = bytearray(len(inp.login))

    heap: list[tuple] = []
    for a, (t_in, t_out) in enumerate(zip(inp.login.tolist(), inp.logout.tolist())):
        heap.append((t_in, K_LOGIN, a, a))
        if math.isfinite(t_out):
            heap.append((t_out, K_LOGOUT, a, a))
    heapq.heapify(heap)
    heappush, heappop = heapq.heappush, heapq.heappop
    handle_raw, next_deadline = sched.handle_raw, sched.next_deadline
    pending: set[tuple[int, int]] = set()   # offers not yet answered nor cancelled
    now_answers: list[tuple[int, int]] = []  # answers due at this instant (delay 0)
    EV_ARR, EV_ANS, EV_END = E.EV_CALL_ARRIVED, E.EV_OFFER_ANSWERED, E.EV_CALL_ENDED
    EV_ABN, EV_TICK, EV_IN, EV_OUT = E.EV_CALL_ABANDONED, E.EV_TICK, E.EV_AGENT_LOGGED_IN, E.EV_AGENT_LOGGED_OUT
    inf = math.inf
    events = 0
    i = 0
    deadline = inf
    t = 0.0
    while True:
        if now_answers:
            key = now_answers.pop()
            if key not in pending:
                continue
            pending.discard(key)
            actions = handle_raw(EV_ANS, t, key[0], key[1])
        else:
            ta = arr_t[i] if i < n_calls else inf
            th = heap[0][0] if heap else inf
            if deadline < ta and deadline < th:
                t = deadline
                actions = handle_raw(EV_TICK, t)
            elif ta <= th:
                if ta == inf:
                    break
                t = ta
                c = i
                i += 1
                actions = handle_raw(EV_ARR, t, c, None, None, names[arr_q[c]], 0)
                if expiry[c] != inf:
                    heappush(heap, (expiry[c], K_ABANDON, c, -1))
            else:
                t, kind, c, a = heappop(heap)
                if kind == K_END:
                    status[c] = DONE
                    actions = handle_raw(EV_END, t, c)
                    if wrap_of[arr_q[c]] == 0 and agent_state[a] == BUSY:
                        agent_state[a] = IDLE
                        log_occ((t, a, -1, 1))
                elif kind == K_ABANDON:
                    if status[c] != WAITING:
                        continue
                    status[c] = ABANDONED
                    wait[c] = t - arr_t[c]
                    actions = handle_raw(EV_ABN, t, c)
                elif kind == K_ANSWER:
                    key = (c, a)
                    if key not in pending:
                        continue
                    pending.discard(key)
                    actions = handle_raw(EV_ANS, t, c, a)
                elif kind == K_LOGIN:
                    actions = handle_raw(EV_IN, t, None, a)
                    agent_state[a] = IDLE
                    log_occ((t, a, 0, 1))
                else:  # K_LOGOUT
                    actions = handle_raw(EV_OUT, t, None, a)
                    st = agent_state[a]
                    log_occ((t, a, -(st == BUSY), -(st == IDLE)))
                    agent_state[a] = OUT
        events += 1
        for act in actions:
            kind_type = type(act)
            if kind_type is Offer:
                key = (act[0], act[1])
                pending.add(key)
                if delay == 0:
                    now_answers.append(key)
                else:
                    heappush(heap, (t + delay, K_ANSWER, key[0], key[1]))
            elif kind_type is Connect:
                c, a = act[0], act[1]
                status[c] = TALKING
                wait[c] = t - arr_t[c]
                heappush(heap, (t + handle[c], K_END, c, a))
                if agent_state[a] == IDLE:
                    agent_state[a] = BUSY
                    log_occ((t, a, 1, -1))
            elif kind_type is CancelOffer or kind_type is OfferTimedOut:
                pending.discard((act[0], act[1]))
            elif kind_type is WrapUpEnded:
                a = act[0]
                if agent_state[a] == BUSY:
                    agent_state[a] = IDLE
                    log_occ((t, a, -1, 1))
            elif kind_type is AgentAutoPaused:
                a = act[0]
                st = agent_state[a]
                log_occ((t, a, -(st == BUSY), -(st == IDLE)))
                agent_state[a] = PAUSED
            elif kind_type is CallExited:
                status[act[0]] = EXITED
                exits.append((act[0], act[2]))
        d = next_deadline()
        deadline = inf if d is None else d
    return LoopOutput(
        status=np.frombuffer(bytes(status), dtype=np.uint8),
        wait=np.asarray(wait, dtype=np.float64),
        exits=exits,
        occupancy=np.asarray(occ, dtype=np.float64).reshape(-1, 4),
        events=events,
        t_last=t,
    )
