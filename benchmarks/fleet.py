"""The simulated people of the SIP load benchmark: callers and agents in one
pjsua2 process, run by ``benchmarks/load.py``.

    python benchmarks/fleet.py --port P --target sip:100@127.0.0.1:5060 \\
        --rate 8 --patience 6 --ring 0.3 --talk 3 --wrap-up 0.5 --seed 1

Callers arrive as a Poisson stream and each draws an exponential patience;
the clock starts when the engine answers (the load flow enqueues at once),
and a caller still unanswered by an agent when it runs out hangs up.
Agents answer after a fixed ``--ring``, talk for an exponential time, then
hang up; the engine's wrap-up follows.

Why callers and agents share one process: a caller is "answered" when an
agent picks up, which the caller's own SIP dialog never sees (the engine
answered it long ago and only re-routes audio).  Here the agent's answer
cancels the caller's patience in the same instant, with no IPC between
them; the engine's ``X-Sipacd-Call-Id`` header on the agent's INVITE is the
caller's own Call-ID.

The loop is a plain timer heap around ``libHandleEvents(timeout)`` (pjsua2
created with threadCnt=0 and mainThreadOnly, as everywhere in the
project): a packet wakes the poll at once, so the timestamps taken in
callbacks are sub-millisecond, which the dispatch-latency measurement
needs.  The pjsua2 library, the commands on stdin and the events on stdout
are simphones/ua_process.py's, as for the test phones:

  in:  {"cmd":"arrivals","on":false}   stop placing calls (the run drains)
       {"cmd":"mark"}                  start of the measurement window
       {"cmd":"record","n":10}         record the next n callers (and their agents);
                                       n = -1: every caller from now on
       {"cmd":"quit"}                  also stdin EOF and SIGTERM
  out: {"ev":"ready"} {"ev":"stats",...} once a second, {"ev":"summary",...}
       at exit, {"ev":"fatal","msg":..} if start-up failed; {"ev":"ok"} or
       {"ev":"error","msg":..} answers a command.
"""
from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import os
import queue
import random
import signal
import sys
import time
import weakref
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simphones import tones  # noqa: E402
from simphones.event_stdout import claim_stdout  # noqa: E402
from simphones.ua_process import (Account, Library, emit, guarded, log, read_stdin,  # noqa: E402
                                   run_command)
from sipagent.sip import message as sip_message  # noqa: E402

CALLER_TONE = 440.0
AGENT_TONE = 880.0
# A bound on the disk a run may fill (16 kB per recorded second of a leg;
# the full load run records about 15 000 legs of a few seconds each).
MAX_RECORDINGS = 40000


def now() -> float:
    return time.monotonic()


def headers_of(whole_msg: str) -> dict[str, str]:
    """Header fields with lower-case names (the fleet looks them up that way)."""
    return {k.lower(): v for k, v in sip_message.headers(whole_msg).items()}


class Leg(pj.Call):
    """A caller's or an agent's call; callbacks only record and schedule."""

    _alive: "weakref.WeakSet[Leg]" = weakref.WeakSet()

    def __init__(self, fleet: "Fleet", acc, kind: str, name: str, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        Leg._alive.add(self)
        self.fleet, self.kind, self.name = fleet, kind, name
        self.confirmed_at: float | None = None
        self.ended_at: float | None = None
        self.end_code = 0
        self.media_on = False
        self.recorder = None
        self.record_path: str | None = None
        # caller fields
        self.sip_call_id = ""
        self.answered_at: float | None = None   # when an agent picked up
        self.assigned = False                   # an agent's phone rang for it
        self.outcome: str | None = None         # answered | abandoned | failed | dropped
        self.record = False
        self.in_window = False
        # agent fields
        self.agent = ""
        self.caller: Leg | None = None
        self.hung_up_at: float | None = None
        self.broken = False

    @guarded
    def onCallState(self, prm):
        ci = self.getInfo()
        state = ci.state
        if state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = now()
            self.fleet.on_confirmed(self)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED and self.ended_at is None:
            self.ended_at = now()
            # pjsua2 2.12.1 leaves Call.id set after DISCONNECTED, and
            # ~Call() then clears the user data of, and hangs up, whatever
            # call holds that id by the time Python drops this object.
            # pjsua hands ids out round-robin, so at 100 legs/s an id is
            # reused within ~10 s and a leg kept that long (a pending
            # patience timer) silently killed a stranger's call: lost
            # callbacks, agents stuck "talking", and segfaults in
            # pjsua_call_answer2.  Never run that destructor: the C++
            # object (media already cleared) is left to process exit.
            self.thisown = False
            self.end_code = int(ci.lastStatusCode)
            self.fleet.on_ended(self)

    @guarded
    def onCallMediaState(self, prm):
        ci = self.getInfo()  # keep ci alive while iterating ci.media
        for m in ci.media:
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.fleet.on_media(self, self.getAudioMedia(m.index))


class Fleet:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.timers: list = []
        self.seq = itertools.count()
        self.callers: dict[str, Leg] = {}        # by SIP Call-ID once known
        self.legs: set[Leg] = set()
        self.release: list[Leg] = []
        self.arrivals_on = True
        self.marked = False
        self.n_placed = 0
        self.to_record = 0
        self.stopping = False
        self.next_arrival = 0.0
        self.counts = {"placed": 0, "setup_failed": 0, "answered": 0, "abandoned": 0,
                       "dropped": 0, "agent_calls": 0, "agent_cancelled": 0}
        self.fail_codes: dict[str, int] = {}
        self.waits_answered: list[float] = []
        self.waits_abandoned: list[float] = []
        self.talk: list[float] = []
        self.dispatch: list[float] = []          # agent free -> INVITE at that agent
        self.free_check: dict[str, float] = {}   # agent -> free time with callers waiting
        self.recordings: list[dict] = []
        self.sample_ids: set[str] = set()

    # -- timers ---------------------------------------------------------------
    def at(self, t: float, fn, *args) -> None:
        heapq.heappush(self.timers, (t, next(self.seq), fn, args))

    # -- pjsua2 ------------------------------------------------------------------
    def start(self) -> None:
        self.lib = Library(ip="127.0.0.1", port=self.a.port, user_agent="sipacd-load-fleet",
                           max_calls=self.a.max_calls, log_level=1)
        self.lib.use_codecs("PCMU/8000/1")
        self.acc = Account(self)
        self.acc.create(self.lib.account_config("fleet", self.a.rtp_port), True)
        # One tone source per tone, shared by every call: one bridge port
        # instead of hundreds.
        self.players = {f: tones.tone_source(f) for f in (CALLER_TONE, AGENT_TONE)}

    def destroy(self) -> None:
        self.timers.clear()  # they hold legs, and no Call may outlive the library
        for leg in list(self.legs):
            self._hangup(leg)
        end = now() + 3.0
        while self.legs and now() < end:
            self.lib.ep.libHandleEvents(20)
            self._release()
        self.timers.clear()
        self._release()
        self.callers.clear()
        self.legs.clear()
        gc.collect()
        # A Call still referenced now (by a frame, a traceback...) must not be
        # deleted after libDestroy: pjlib would abort the process.
        for leg in list(Leg._alive):
            leg.thisown = False
        self.players.clear()
        self.acc.shutdown()
        self.acc = None
        self.lib.destroy()

    # -- callers -------------------------------------------------------------------
    def place_call(self) -> None:
        if not self.arrivals_on or self.stopping:
            return
        # From the scheduled instant, not from now: the loop's lateness must
        # not stretch the gaps (it cost 5-8 % of the rate when it did).
        self.next_arrival = max(self.next_arrival, now() - 1.0) + \
            self.rng.expovariate(self.a.rate)
        self.at(self.next_arrival, self.place_call)
        self.n_placed += 1
        leg = Leg(self, self.acc, "caller", f"c{self.n_placed}")
        leg.in_window = self.marked
        leg.patience = self.rng.expovariate(1.0 / self.a.patience)
        if self.to_record:
            self.to_record -= self.to_record > 0     # -1: every caller
            leg.record = True
        self.counts["placed"] += 1
        try:
            leg.makeCall(self.a.target, pj.CallOpParam(True))
        except pj.Error as e:
            # The reason ("Too many objects", ...), not info()'s call text.
            self._count_fail(f"makeCall:{e.reason or e.title}"[:60])
            leg.outcome = "failed"
            return
        self.legs.add(leg)
        leg.sip_call_id = leg.getInfo().callIdString
        self.callers[leg.sip_call_id] = leg

    def _count_fail(self, why: str) -> None:
        self.counts["setup_failed"] += 1
        self.fail_codes[why] = self.fail_codes.get(why, 0) + 1

    def patience_over(self, leg: Leg) -> None:
        if leg.outcome is None and leg.answered_at is None and leg.ended_at is None:
            leg.outcome = "abandoned"
            self.counts["abandoned"] += 1
            self.waits_abandoned.append(now() - leg.confirmed_at)
            self._hangup(leg)

    # -- agents --------------------------------------------------------------------
    def on_incoming(self, acc, prm) -> None:
        t = now()
        hdrs = headers_of(prm.rdata.wholeMsg)
        agent = sip_message.uri_user(hdrs.get("to", hdrs.get("t", ""))) or "?"
        leg = Leg(self, acc, "agent", f"{agent}@{t:.3f}", prm.callId)
        leg.agent = agent
        self.legs.add(leg)
        self.counts["agent_calls"] += 1
        free = self.free_check.pop(agent, None)
        if free is not None and t - free < 1.0:
            self.dispatch.append(t - free)
        caller = self.callers.get(hdrs.get("x-sipacd-call-id", ""))
        leg.caller = caller
        if caller is not None:
            caller.assigned = True
            if caller.record:
                leg.record = True
        op = pj.CallOpParam(True)
        op.statusCode = 180
        leg.answer(op)
        self.at(t + self.a.ring, self.agent_answer, leg)

    def agent_answer(self, leg: Leg) -> None:
        if leg.ended_at is not None or leg.broken:
            return
        # Answering an INVITE session that pjsua already terminated crashed
        # this process in pjsua_call_answer2 (a list insert on freed memory,
        # pjsua 2.12.1) at 50 calls/s: only answer a call still ringing.
        try:
            ci = leg.getInfo()
        except pj.Error:
            leg.broken = True
            return
        if ci.state not in (pj.PJSIP_INV_STATE_INCOMING, pj.PJSIP_INV_STATE_EARLY):
            return
        caller = leg.caller
        if caller is not None:
            if caller.outcome is not None or caller.ended_at is not None:
                return  # the engine's CANCEL is on its way
            # Picking up is what ends the caller's wait: from here the
            # caller's patience no longer matters.
            caller.answered_at = now()
        op = pj.CallOpParam(True)
        op.statusCode = 200
        try:
            leg.answer(op)
        except pj.Error as e:
            # Never touch this call again (no hangup either): see above.
            leg.broken = True
            self.counts["agent_answer_failed"] = self.counts.get("agent_answer_failed", 0) + 1
            log(f"answer failed: {e.info()}")

    def agent_hangup(self, leg: Leg) -> None:
        if leg.ended_at is not None:
            return
        t = now()
        leg.hung_up_at = t
        self._hangup(leg)
        self.at(t + self.a.wrap_up, self.agent_free, leg.agent)

    def agent_free(self, agent: str) -> None:
        # The agent is free again in the engine (wrap-up over).  With several
        # callers waiting for an agent, its next INVITE measures dispatch
        # (several: another agent freed by a caller's abandon during ringing
        # may take one of them first).
        t = now()
        waiting = sum(1 for c in self.callers.values()
                      if c.confirmed_at is not None and t - c.confirmed_at > 0.02
                      and not c.assigned and c.outcome is None and c.ended_at is None)
        if waiting >= 3:
            self.free_check[agent] = t

    # -- shared callbacks --------------------------------------------------------------
    def on_confirmed(self, leg: Leg) -> None:
        if leg.kind == "caller":
            self.at(leg.confirmed_at + leg.patience, self.patience_over, leg)
        else:
            leg.talk_time = self.rng.expovariate(1.0 / self.a.talk)
            self.at(leg.confirmed_at + leg.talk_time, self.agent_hangup, leg)

    def on_media(self, leg: Leg, am) -> None:
        if leg.media_on:
            return
        leg.media_on = True
        tone = CALLER_TONE if leg.kind == "caller" else AGENT_TONE
        self.players[tone].startTransmit(am)
        if leg.record and len(self.recordings) < MAX_RECORDINGS:
            leg.record_path = os.path.join(self.a.workdir, "rec", f"{leg.kind}-{leg.name}.wav")
            os.makedirs(os.path.dirname(leg.record_path), exist_ok=True)
            leg.recorder = pj.AudioMediaRecorder()
            leg.recorder.createRecorder(leg.record_path)
            leg.recorded_from = now()
            am.startTransmit(leg.recorder)

    def on_ended(self, leg: Leg) -> None:
        if leg.kind == "caller":
            if leg.confirmed_at is None:
                self._count_fail(f"sip:{leg.end_code}")
                leg.outcome = "failed"
            elif leg.outcome is None:
                if leg.answered_at is not None:
                    leg.outcome = "answered"
                    self.counts["answered"] += 1
                    self.waits_answered.append(leg.answered_at - leg.confirmed_at)
                else:
                    leg.outcome = "dropped"     # the engine hung up a waiting caller
                    self.counts["dropped"] += 1
        else:
            if leg.confirmed_at is None:
                self.counts["agent_cancelled"] += 1
            elif leg.hung_up_at is not None:
                self.talk.append(leg.hung_up_at - leg.confirmed_at)
        if leg.recorder is not None:
            self.recordings.append({
                "kind": leg.kind, "path": leg.record_path,
                "start": leg.recorded_from, "end": leg.ended_at,
                "answered": (leg.answered_at if leg.kind == "caller"
                             else leg.confirmed_at),
                "expect_hz": AGENT_TONE if leg.kind == "caller" else CALLER_TONE})
        # Releasing a Call inside its own callback frees what pjsua2 still uses.
        self.release.append(leg)

    def _release(self) -> None:
        while self.release:
            leg = self.release.pop()
            self.legs.discard(leg)
            if leg.kind == "caller":
                self.callers.pop(leg.sip_call_id, None)
            leg.caller = None
            leg.recorder = None  # the bridge writes the WAV header on a later tick

    def _hangup(self, leg: Leg) -> None:
        if leg.broken or leg.ended_at is not None:
            return
        try:
            leg.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass

    # -- the loop ----------------------------------------------------------------------
    def emit(self, **ev) -> None:
        if not emit(**ev):
            self.stopping = True        # nobody reads us any more

    def cmd_arrivals(self, on: bool) -> None:
        self.arrivals_on = bool(on)
        if self.arrivals_on:
            self.next_arrival = now()
            self.at(now(), self.place_call)

    def cmd_mark(self) -> None:
        self.marked = True
        for k in ("placed", "setup_failed", "answered", "abandoned", "dropped",
                  "agent_calls", "agent_cancelled"):
            self.counts[k] = 0
        self.fail_codes.clear()
        self.waits_answered.clear()
        self.waits_abandoned.clear()
        self.talk.clear()
        self.dispatch.clear()

    def cmd_record(self, n: int = 1) -> None:
        self.to_record += int(n)

    def cmd_quit(self) -> None:
        self.stopping = True

    def stats(self) -> dict:
        waiting = sum(1 for c in self.callers.values()
                      if c.confirmed_at is not None and c.answered_at is None and c.outcome is None)
        return {"legs": len(self.legs), "waiting": waiting, **self.counts}

    def run(self) -> None:
        self.next_arrival = now()
        self.at(now(), self.place_call)
        next_stats = now() + 1.0
        next_stdin = now()
        lines: queue.SimpleQueue = queue.SimpleQueue()
        read_stdin(lines.put)
        while not self.stopping:
            t = now()
            while self.timers and self.timers[0][0] <= t:
                _, _, fn, args = heapq.heappop(self.timers)
                try:
                    fn(*args)
                except Exception as exc:
                    log(f"{fn.__name__}: {exc!r}")
            wait = min(0.01, max(0.0, self.timers[0][0] - now()) if self.timers else 0.01)
            self.lib.ep.libHandleEvents(int(wait * 1000))
            self._release()
            if now() >= next_stats:
                next_stats += 1.0
                self.emit(ev="stats", **self.stats())
            if now() >= next_stdin:
                next_stdin = now() + 0.1
                while not lines.empty() and not self.stopping:
                    line = lines.get()
                    if line is None:
                        self.stopping = True    # EOF
                    else:
                        run_command(self, line)

    def summary(self) -> dict:
        return {"ev": "summary", **self.counts, "fail_codes": self.fail_codes,
                "waits_answered": self.waits_answered, "waits_abandoned": self.waits_abandoned,
                "talk": self.talk, "dispatch": self.dispatch, "recordings": self.recordings}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rtp-port", type=int, default=6000)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rate", type=float, required=True, help="caller arrivals per second")
    ap.add_argument("--patience", type=float, required=True, help="mean caller patience, s")
    ap.add_argument("--ring", type=float, required=True, help="agent ring before answering, s")
    ap.add_argument("--talk", type=float, required=True, help="mean talk time, s")
    ap.add_argument("--wrap-up", type=float, default=0.0, help="the queue's wrap-up, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-calls", type=int, default=1024)
    ap.add_argument("--workdir", default=".")
    args = ap.parse_args(argv)
    sys.stdout = claim_stdout()
    fleet = Fleet(args)
    signal.signal(signal.SIGTERM, lambda *_: setattr(fleet, "stopping", True))
    try:
        fleet.start()
    except Exception as exc:
        fleet.emit(ev="fatal", msg=str(exc))
        return 2
    fleet.emit(ev="ready")
    try:
        fleet.run()
    finally:
        fleet.arrivals_on = False
        summary = fleet.summary()
        fleet.destroy()
        fleet.emit(**summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
