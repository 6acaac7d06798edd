# Records of the Cython scheduler (_scheduler.pyx).  Everything hot lives in C arrays of these
# structs indexed by small ints; Python objects (ids, reasons, skill tuples)
# sit in parallel lists touched only at the API edge or on rare paths.
from libc.stdint cimport uint64_t
from acdcore._heap cimport Entry, Heap
from acdcore._rank cimport Rank

cdef enum:
    HANDLE_WINDOW = 20


cdef struct Membership:
    int queue
    int penalty
    int midx        # member index in the queue (linear / round-robin order)


cdef struct AgentLane:
    int lane
    int penalty
    int midx
    int score       # summed proficiency on the lane's requirement (skills strategy)


cdef struct AgentRec:
    int state
    int call                 # offered or talking call, -1
    bint free                # in the pools (available, no reject delay)
    bint alive               # False once removed
    long long free_stamp
    long long ready_stamp    # != 0 while a reject delay runs
    long long wrap_stamp
    int no_answers
    long long calls
    double talk
    double idle_since
    double weight
    long long tried_mark     # == Scheduler.tried_mark: failed the call being dispatched
    double wrap_up           # < 0: use the queue's
    int cancel_ext           # last_cancel's int in Scheduler.call_names, -1
    int outbound             # OUT_NONE / OUT_ON_CALL / OUT_DROPPED (ref_parts.py)
    int n_mem
    Membership* mems
    int n_lanes
    int cap_lanes
    AgentLane* lanes


cdef struct CallRec:
    # 128 bytes in a 64-byte aligned array: the first cache line holds what
    # the stale-entry and timer checks read (state and stamps), so skipping
    # a dead heap or timer entry costs one line, not two or three.
    int state                # C_GONE for a free slot
    int queue
    int lane
    int prio
    int agent                # the single offered agent, or the talking agent, -1
    int n_offers             # > 1 only with ring-all (agents in Scheduler.multi)
    int n_tried              # agents that failed it this round (Scheduler.tried[call])
    int relax_step
    long long wait_stamp
    long long offer_stamp
    long long life
    long long seq
    # second line
    double t_enq
    double answered_at
    long long rank_slot
    long long ring_pos       # position of its ring timer in its queue's FIFO, -1
    Rank* rank               # owned by a _RankBox in Scheduler.queue_ranks
    bint callback
    bint expired
    bint in_queue
    bint has_req
    int ext                  # its int in Scheduler.call_names, when the core has one
    int _pad


cdef struct QueueRec:
    int strategy
    double ring_timeout
    double wrap_up
    double max_wait
    double reject_delay
    double weight
    double hint
    int max_len
    int autopause_after
    bint join_empty
    bint leave_when_empty
    int n_in_queue
    int serving
    int counts[6]
    int base_lane
    int ring_fifo            # timer FIFOs of this queue's constant delays (-1: none)
    int maxwait_fifo
    int wrap_fifo
    int reject_fifo
    int next_member
    double handle[HANDLE_WINDOW]
    int handle_count
    int handle_pos
    Rank* rank0              # the priority-0 Rank (most calls), NULL until used


cdef struct LaneRec:
    int queue
    int cls
    int strategy
    Heap waiting
    Heap pool
    double rr_cycle
    double rr_last
    Py_ssize_t pool_limit     # compact the heap of stale entries beyond these sizes
    Py_ssize_t waiting_limit


cdef struct TimerFifo:
    # Timers of one constant delay are due in the order they were set, so a
    # ring buffer holds them sorted; only its front sits in the timer heap.
    Entry* data
    long long head           # absolute position of the front
    long long tail           # one past the back
    Py_ssize_t mask          # capacity - 1 (a power of two)


cdef struct IdSlot:
    long long key
    int val                  # slot number; -1: empty
    int _pad


cdef struct IntMap:
    # Integer ids -> slot numbers (_scheduler_ids.pxi).
    IdSlot* slots
    Py_ssize_t mask          # capacity - 1 (a power of two)
    int shift                # 64 - log2(capacity)
    Py_ssize_t n
