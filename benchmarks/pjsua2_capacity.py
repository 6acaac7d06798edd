"""pjsua2 capacity: one process places and holds N simultaneous calls.

    python benchmarks/pjsua2_capacity.py                  # 500 calls at 100/s, 5 s hold
    python benchmarks/pjsua2_capacity.py --calls 800 --rate 200 --json

Why: the PyPI pjsua2 wheels compile PJSUA_MAX_CALLS = 4 into the library,
whatever ``uaConfig.maxCalls`` says. This proves that the ``pjsua2`` this
interpreter imports is the project's server build (scripts/build-pjsua2):
one process gets all N calls CONFIRMED at the same time, with RTP flowing.

How it measures
---------------
* Two pjsua2 processes on 127.0.0.1, each with one Endpoint created and
  polled (``libHandleEvents``) in its main thread, ``threadCnt = 0``,
  ``mainThreadOnly``, ``maxCalls = 1024``, null audio device, PCMU only
  (``codecSetPriority``), VAD off so silence is still sent as RTP.
* UAS: this script with ``--role uas``, started by the UAC as a child. It
  answers every INVITE with 200 at once and prints one JSON line when ready
  and one summary line when told to quit (stdin "quit" or EOF).
* UAC (the default role): places N calls at ``--rate`` per second, waits
  until all N are CONFIRMED at once, holds them ``--hold`` seconds, hangs
  all up (paced at ``--hangup-rate``), releases every Call, gc.collect(),
  libDestroy, then stops the UAS by PID.
* CPU % = growth of utime+stime in /proc/PID/stat over the hold period
  divided by its wall time (100 % = one core). RSS = VmRSS at the end of
  the hold, when all calls are up. Both for the UAC (/proc/self) and the
  UAS (/proc/<child pid>).
* RTP: per-call stream statistics (packets sent and received) are sampled
  at the start and the end of the hold; a call counts as flowing when both
  grew. PCMU at 20 ms ptime is 50 packets/s per direction.

Ports (all UDP on 127.0.0.1), from ``--port-base P``:
    P        UAC SIP         P+1      UAS SIP
    P+2 ..   UAC RTP/RTCP pairs, ``rtp_span(calls)`` ports
    then     UAS RTP/RTCP pairs, as many
so ``ports_needed(calls)`` consecutive ports in all. pjsua skips an RTP port
that is busy and wraps within its range, hence the slack in ``rtp_span``.

Bounded in time: ``--timeout`` (default 120 s) ends each phase early and
still tears down; SIGALRM at timeout + 30 s kills a wedged UAC; the UAS
quits on its own deadline or when its stdin closes.

Exit code: 0 when at least N calls were CONFIRMED simultaneously, 1 when
fewer, 2 when the run could not start (e.g. a SIP port in use).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity_ua import (MAX_CALLS, Ua, log, port_layout, ports_needed,  # noqa: E402
                         raise_fd_limit, run_uas, udp_rcvbuf_errors)
from procstat import cpu_seconds, rss_mb  # noqa: E402
from simphones.event_stdout import claim_stdout  # noqa: E402

# --- UAC ----------------------------------------------------------------------
class CallRecord:
    __slots__ = ("seq", "placed", "confirmed", "ended", "code", "reason",
                 "media_active", "med_idx", "rtp0", "rtp1", "error")

    def __init__(self, seq: int, placed: float):
        self.seq, self.placed = seq, placed
        self.confirmed = self.ended = None   # monotonic times
        self.code, self.reason, self.error = 0, "", None
        self.media_active = False
        self.med_idx = -1
        self.rtp0 = self.rtp1 = None         # (tx packets, rx packets)


class UacCall(pj.Call):
    def __init__(self, uac: "Uac", acc, rec: CallRecord):
        super().__init__(acc)
        self.uac = uac
        self.rec = rec

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
            rec, uac = self.rec, self.uac
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and rec.confirmed is None:
                rec.confirmed = time.monotonic()
                uac.up += 1
                if uac.up > uac.max_up:
                    uac.max_up = uac.up
                if uac.up >= uac.n and uac.all_up_at is None:
                    uac.all_up_at = rec.confirmed
            elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED and rec.ended is None:
                rec.ended = time.monotonic()
                rec.code, rec.reason = int(ci.lastStatusCode), ci.lastReason
                if rec.confirmed is not None:
                    uac.up -= 1
                if not uac.hanging_up:
                    uac.failed.append(rec)
                uac.ended.append(rec.seq)
        except Exception:
            log("uac", "onCallState:\n" + traceback.format_exc())

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()   # keep ci alive while iterating ci.media
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.rec.media_active = True
                    self.rec.med_idx = mi.index
        except Exception:
            log("uac", "onCallMediaState:\n" + traceback.format_exc())

    def rtp_packets(self) -> tuple[float, int, int] | None:
        """(when, packets sent, packets received) of the audio stream."""
        if self.rec.med_idx < 0:
            return None
        try:
            st = self.getStreamStat(self.rec.med_idx)
        except pj.Error:
            return None
        return time.monotonic(), int(st.rtcp.txStat.pkt), int(st.rtcp.rxStat.pkt)


class UacAccount(pj.Account):
    pass


class UasChild:
    """The answering process: started from this script, stopped by PID."""

    def __init__(self, args):
        cmd = [sys.executable, os.path.abspath(__file__), "--role", "uas",
               "--port-base", str(args.port_base), "--calls", str(args.calls),
               "--timeout", str(args.timeout), "--log-level", str(args.log_level)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None, close_fds=True)
        self.pid = self.proc.pid
        self.buf = b""

    def read_line(self, timeout: float, poll=None) -> dict | None:
        """Next JSON line from the child; `poll` keeps our own pjsua2 running
        while we wait."""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            if poll is not None:
                poll(10)
                left = 0
            if select.select([fd], [], [], min(left, 0.05))[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"garbage": line.decode(errors="replace")}

    def quit(self) -> None:
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def stop(self, timeout: float = 10.0) -> int | None:
        self.quit()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.poll()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class Uac:
    """The calling side's phases. Each phase keeps its Call references in
    its own frame, so nothing but `self.calls` holds a Call between them."""

    def __init__(self, args, ua: Ua, uas_pid: int, deadline: float, stop: list):
        self.args, self.ua, self.uas_pid = args, ua, uas_pid
        self.deadline, self.stop = deadline, stop
        self.n = args.calls
        self.calls: dict[int, UacCall] = {}
        self.records: list[CallRecord] = []
        self.ended: list[int] = []
        self.failed: list[CallRecord] = []
        self.up = self.max_up = 0
        self.all_up_at: float | None = None
        self.hanging_up = False

    def pump(self, ms: int = 10) -> None:
        self.ua.poll(ms)
        while self.ended:
            self.calls.pop(self.ended.pop(), None)

    def pump_until(self, due: float) -> None:
        while not self.stop and time.monotonic() < due:
            self.pump(max(0, min(10, int((due - time.monotonic()) * 1000))))

    def place(self, dst: str, res: dict) -> None:
        """Call i is due at t0 + i / rate."""
        self.t0 = time.monotonic()
        for i in range(self.n):
            self.pump_until(self.t0 + i / self.args.rate)
            if self.stop or time.monotonic() > self.deadline:
                break
            rec = CallRecord(i, time.monotonic())
            call = UacCall(self, self.ua.acc, rec)
            self.records.append(rec)
            self.calls[i] = call
            try:
                call.makeCall(dst, pj.CallOpParam(True))
            except pj.Error as e:
                rec.error, rec.ended = e.info(), time.monotonic()
                self.failed.append(rec)
                self.calls.pop(i, None)
        recs = self.records
        res["placed"] = len(recs)
        res["place_rate_per_s"] = ((len(recs) - 1) / (recs[-1].placed - recs[0].placed)
                                   if len(recs) > 1 else None)

    def wait_all_confirmed(self, res: dict) -> None:
        """Until all N are up at once, every call has settled, or time is up."""
        end = min(self.deadline - 10, time.monotonic() + self.args.confirm_timeout)
        while (not self.stop and self.up < self.n and time.monotonic() < end
               and any(r.confirmed is None and r.ended is None for r in self.records)):
            self.pump()
        took = self.all_up_at - self.t0 if self.all_up_at is not None else None
        res["all_confirmed_after_s"] = took
        res["setup_rate_per_s"] = self.n / took if took else None
        lat = [(r.confirmed - r.placed) * 1000 for r in self.records if r.confirmed]
        res["setup_ms"] = {"p50": pct(lat, 0.5), "p95": pct(lat, 0.95),
                           "max": max(lat, default=None)}

    def hold(self, res: dict) -> None:
        """All calls up with RTP flowing: CPU and RSS of both processes."""
        live = list(self.calls.values())
        for c in live:
            c.rec.rtp0 = c.rtp_packets()
        cpu0 = {"uac": cpu_seconds(os.getpid()), "uas": cpu_seconds(self.uas_pid)}
        h0 = time.monotonic()
        min_up = self.up
        end = min(h0 + self.args.hold, self.deadline - 8)
        while not self.stop and time.monotonic() < end:
            self.pump()
            min_up = min(min_up, self.up)
        h1 = time.monotonic()
        cpu1 = {"uac": cpu_seconds(os.getpid()), "uas": cpu_seconds(self.uas_pid)}
        res["rss_mb"] = {"uac": rss_mb(os.getpid()),
                         "uas": rss_mb(self.uas_pid)}
        for c in live:
            c.rec.rtp1 = c.rtp_packets() if c.rec.ended is None else None
        hold_s = h1 - h0
        res["hold_measured_s"] = hold_s
        res["confirmed_during_hold"] = {"min": min_up, "end": self.up}
        res["cpu_percent"] = {k: 100 * (cpu1[k] - cpu0[k]) / hold_s if hold_s > 0 else None
                              for k in cpu0}
        # Per call, packets over that call's own sampling window.
        flows = [((r.rtp1[1] - r.rtp0[1]) / (r.rtp1[0] - r.rtp0[0]),
                  (r.rtp1[2] - r.rtp0[2]) / (r.rtp1[0] - r.rtp0[0]))
                 for r in self.records if r.rtp0 and r.rtp1 and r.rtp1[0] - r.rtp0[0] > 0.5]
        res["rtp"] = {
            "calls_media_active": sum(r.media_active for r in self.records),
            "calls_flowing_both_ways": sum(tx > 0 and rx > 0 for tx, rx in flows),
            "tx_pkts_per_s_per_call": statistics.median(tx for tx, _ in flows) if flows else None,
            "rx_pkts_per_s_per_call": statistics.median(rx for _, rx in flows) if flows else None,
            "rx_pkts_per_s_total": sum(rx for _, rx in flows) if flows else None,
        }

    def hang_up(self, res: dict) -> None:
        """Paced BYEs; every call must reach DISCONNECTED."""
        self.hanging_up = True
        th = time.monotonic()
        for i, seq in enumerate(list(self.calls)):
            self.pump_until(th + i / self.args.hangup_rate)
            call = self.calls.get(seq)
            if call is not None and call.rec.ended is None:
                try:
                    call.hangup(pj.CallOpParam(True))
                except pj.Error as e:
                    log("uac", f"hangup of call {seq} failed: {e.info()}")
        end = min(time.monotonic() + 15, self.deadline + 10)
        while self.calls and time.monotonic() < end:
            self.pump()
        res["hangup_s"] = time.monotonic() - th
        res["not_disconnected"] = len(self.calls)

    def failures(self, res: dict) -> None:
        never = [r for r in self.records if r.confirmed is None and r not in self.failed]
        res["failures"] = len(self.failed) + len(never) + (self.n - len(self.records))
        reasons: dict[str, int] = {}
        for r in self.failed:
            key = r.error or f"{r.code} {r.reason}"
            reasons[key] = reasons.get(key, 0) + 1
        if never:
            reasons["never confirmed"] = len(never)
        if self.n > len(self.records):
            reasons["not placed"] = self.n - len(self.records)
        res["failure_reasons"] = reasons
        res["max_simultaneously_confirmed"] = self.max_up


def run_uac(args) -> tuple[int, dict]:
    t_start = time.monotonic()
    deadline = t_start + args.timeout
    signal.alarm(int(args.timeout) + 30)   # default action: terminate
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    raise_fd_limit(4 * MAX_CALLS + 256)
    layout = port_layout(args.port_base, args.calls)
    res: dict = {"calls": args.calls, "rate_requested": args.rate, "hold_s": args.hold,
                 "port_base": args.port_base, "pjsua2_module": pj.__file__,
                 "max_calls_config": MAX_CALLS}
    drops0 = udp_rcvbuf_errors()
    child = UasChild(args)
    ua = uac = None
    try:
        try:
            ua = Ua("uac", layout["uac_sip"], layout["uac_rtp"], layout["rtp_span"],
                    args.log_level, UacAccount)
        except Exception as e:
            res["error"] = str(e)
            return 2, res
        res["pjsip_version"] = ua.ep.libVersion().full
        ready = child.read_line(15.0, poll=ua.poll)
        if not ready or not ready.get("ready"):
            res["error"] = f"UAS did not start: {ready}"
            return 2, res
        res["uac_pid"], res["uas_pid"] = os.getpid(), child.pid
        res["rss_idle_mb"] = {"uac": rss_mb(os.getpid()),
                              "uas": rss_mb(child.pid)}
        uac = Uac(args, ua, child.pid, deadline, stop)
        uac.place(f"sip:uas@127.0.0.1:{layout['uas_sip']}", res)
        uac.wait_all_confirmed(res)
        uac.hold(res)
        uac.hang_up(res)
    except Exception as e:
        # Handled here, not propagated: a traceback alive in `finally` would
        # keep the phases' frames, and their Calls, past libDestroy.
        log("uac", traceback.format_exc())
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        # Every Call must be gone before libDestroy, or the process aborts.
        if uac is not None:
            uac.calls.clear()
        gc.collect()
        if ua is not None:
            ua.destroy()
        res["uas_summary"] = None
        if child.proc.poll() is None:
            child.quit()
            while True:
                msg = child.read_line(10.0)
                if msg is None or "summary" in msg:
                    res["uas_summary"] = msg and msg["summary"]
                    break
        res["uas_exit_code"] = child.stop(10.0)
    if "error" in res:
        return 2, res
    uac.failures(res)
    res["udp_rcvbuf_drops_machine_wide"] = udp_rcvbuf_errors() - drops0
    res["wall_s"] = time.monotonic() - t_start
    res["ok"] = res["max_simultaneously_confirmed"] >= args.calls
    return (0 if res["ok"] else 1), res


# --- report -------------------------------------------------------------------
def fmt(v, spec: str = ".1f") -> str:
    if v is None:
        return "-"
    return format(v, spec) if isinstance(v, float) else str(v)


def table(res: dict) -> str:
    if "error" in res:
        return f"pjsua2 capacity: could not run: {res['error']}"
    rtp, cpu, rss = res["rtp"], res["cpu_percent"], res["rss_mb"]
    rows = [
        ("pjsua2", f"{res.get('pjsip_version')} ({res['pjsua2_module']})"),
        ("calls placed", f"{res['placed']} of {res['calls']}"),
        ("max simultaneously confirmed", res["max_simultaneously_confirmed"]),
        ("confirmed during hold (min/end)",
         f"{res['confirmed_during_hold']['min']} / {res['confirmed_during_hold']['end']}"),
        ("failures", f"{res['failures']} {res['failure_reasons'] or ''}".rstrip()),
        ("INVITE rate requested / achieved", f"{fmt(float(res['rate_requested']))} / "
                                            f"{fmt(res['place_rate_per_s'])} calls/s"),
        ("setup rate (N / first INVITE->all up)", f"{fmt(res['setup_rate_per_s'])} calls/s"),
        ("all N confirmed after", f"{fmt(res['all_confirmed_after_s'], '.2f')} s"),
        ("setup latency p50 / p95 / max",
         " / ".join(fmt(res["setup_ms"][k]) for k in ("p50", "p95", "max")) + " ms"),
        ("hold", f"{fmt(res['hold_measured_s'], '.2f')} s"),
        ("calls media active / RTP both ways",
         f"{rtp['calls_media_active']} / {rtp['calls_flowing_both_ways']}"),
        ("RTP per call tx / rx (median)",
         f"{fmt(rtp['tx_pkts_per_s_per_call'])} / {fmt(rtp['rx_pkts_per_s_per_call'])} pkt/s"),
        ("RTP rx total at UAC", f"{fmt(rtp['rx_pkts_per_s_total'], '.0f')} pkt/s"),
        ("CPU % during hold (1 core = 100) UAC / UAS",
         f"{fmt(cpu['uac'])} / {fmt(cpu['uas'])}"),
        ("RSS idle MB UAC / UAS",
         f"{fmt(res['rss_idle_mb']['uac'], '.0f')} / {fmt(res['rss_idle_mb']['uas'], '.0f')}"),
        ("RSS with all calls up MB UAC / UAS",
         f"{fmt(rss['uac'], '.0f')} / {fmt(rss['uas'], '.0f')}"),
        ("hang-up of all calls", f"{fmt(res['hangup_s'], '.2f')} s, "
                                 f"{res['not_disconnected']} left"),
        ("UAS answered / max confirmed",
         (f"{res['uas_summary']['answered']} / {res['uas_summary']['max_confirmed']}"
          if res.get("uas_summary") else "-")),
        ("UDP receive-buffer drops (machine-wide)", res["udp_rcvbuf_drops_machine_wide"]),
        ("total wall time", f"{fmt(res['wall_s'], '.1f')} s"),
        ("result", "OK" if res["ok"] else f"FAIL: fewer than {res['calls']} calls up at once"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", choices=("uac", "uas"), default="uac",
                    help="uas is started by the uac; you run the uac")
    ap.add_argument("--calls", type=int, default=500, help="simultaneous calls (default 500)")
    ap.add_argument("--rate", type=float, default=100.0, help="INVITEs per second (default 100)")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds all calls stay up (default 5)")
    ap.add_argument("--hangup-rate", type=float, default=250.0, help="BYEs per second (default 250)")
    ap.add_argument("--port-base", type=int, default=7060,
                    help="first of ports_needed(calls) consecutive UDP ports (default 7060)")
    ap.add_argument("--timeout", type=float, default=120.0, help="overall bound in seconds")
    ap.add_argument("--confirm-timeout", type=float, default=30.0,
                    help="seconds after the last INVITE to wait for all to be confirmed")
    ap.add_argument("--log-level", type=int, default=1, help="pjsip log level to stderr")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)
    if not 1 <= args.calls <= MAX_CALLS:
        ap.error(f"--calls must be 1..{MAX_CALLS}")
    if args.rate <= 0 or args.hangup_rate <= 0:
        ap.error("rates must be positive")
    if args.port_base < 1024 or args.port_base + ports_needed(args.calls) > 65536:
        ap.error(f"--port-base: need {ports_needed(args.calls)} ports from a base >= 1024")
    if args.role == "uas":
        return run_uas(args)
    out = claim_stdout()
    try:
        code, res = run_uac(args)
    finally:
        signal.alarm(0)
    out.write((json.dumps(res, indent=1) if args.json else table(res)) + "\n")
    out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
