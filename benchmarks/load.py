"""SIP load against a running engine: KPIs measured beside Erlang A, and what
the engine costs.

    python benchmarks/load.py --quick          # ~100 s; what tests/test_load_quick.py runs
    python benchmarks/load.py                  # the full run (closing-note numbers)
    python benchmarks/load.py --agents 30 --rate 8 --duration 120 --json
    python benchmarks/load.py --floor          # + the raw B2BUA floors (load_floor.py), CPU ratios

What runs
---------
(Started and stopped by ``benchmarks/loadkit.py``, which soak.py shares.)

* The engine: ``python -m sipagent run -c FILE`` with a generated config: one
  queue ``support`` (longest idle, ``--wrap-up``), ``--agents`` agents
  ``a0..`` sharing the fleet's SIP port, and a one-line flow (answer, then
  enqueue at once) so that the queue wait is all there is to measure.
* The fleet (``benchmarks/fleet.py``, one pjsua2 process): Poisson callers
  at ``--rate`` with exponential patience (mean ``--patience``, counted from
  the engine's answer, i.e. queue entry), agents who answer after a fixed
  ``--ring``, talk Exp(``--talk``) and hang up.  Real SIP and RTP (PCMU,
  a 440 Hz caller tone, an 880 Hz agent tone) over 127.0.0.1.
* Timeline: ``--warmup`` s from an empty centre (not counted), ``--duration``
  s measured, then arrivals stop and the queue drains.  KPIs are counter
  differences of /metrics between the start of the window and the end of
  the drain (so every caller of the window has an outcome), and the same
  window from ``sipacd report`` when the event log is there.

The model
---------
Erlang A (acdcore.erlang) with the ring folded in exactly, as the fleet
behaves: a caller is answered iff its patience outlasts V + r (V the wait
for an agent, r the ring), so by memorylessness

* P(answered) = e^{-r/θ} · P_A(answered),  SL(T) = e^{-r/θ} · SL_A(T − r),
  ASA = ASA_A + r;
* an agent is held r for every offer and talk + wrap-up only when the
  caller is still there: service S = θ(1 − e^{-r/θ}) + e^{-r/θ}(talk + wrap).

(The simulator, which rings agents the same way, agrees with this to well
within its own noise; tests/test_load_quick.py uses it for the tolerance.)

Engine cost: CPU from /proc/PID/stat over the window (100 % = one core),
RSS and concurrent call legs sampled each second (median and max), new
calls per second = offered in the window / its length, dispatch latency
from the engine's ``sipacd_dispatch_latency_seconds`` histogram and, from
outside, agent free (its BYE + wrap-up) -> the next INVITE arriving at that
agent while callers were waiting.  Both CPU cores are shared with other
runs: quote medians, and compare runs made side by side; the table gives
the machine's load average at the window's start and end, and the fleet's
own CPU (one process: when it saturates, calls are placed and answered late).

With ``--floor``, right after the load (engine and fleet stopped) the same
command runs the raw pjsua2 B2BUA (the engine's SIP and media pieces, no
ACD, no flows) twice: ``benchmarks/b2bua_floor.py`` holding as many bridged
pairs as the load's median (legs not waiting / 2) still, with no call set
up or ended, and ``benchmarks/b2bua_churn.py`` carrying the load's own
traffic (the same fleet and parameters: each call answered, dialled,
bridged, hung up).  It reports CPU per bridged call for each and the
engine's ratio to it.  The engine's figure is its whole CPU over its pairs:
call set-up at ``--rate`` and callers waiting with music included, which
is what a bridged call costs in the centre.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import loadkit  # benchmarks/loadkit.py: the engine, the fleet; puts the repo on sys.path
from acdcore.erlang import ErlangA  # noqa: E402
from acdcore.service_level import ServiceLevelVariant, service_level  # noqa: E402
from load_floor import floor_lines, run_floor  # noqa: E402
from load_audio import MIN_BRIDGED, audio_check, audio_summary, pct  # noqa: E402
from loadkit import QUEUE, REPO, Params  # noqa: E402
import procstat  # noqa: E402  (benchmarks/procstat.py)
from scrape import bucket_deltas, delta, has, histogram_quantile, val  # noqa: E402

VARIANTS = [v.value for v in ServiceLevelVariant]


QUICK = dict(agents=60, rate=15.0, talk=3.0, ring=0.3, wrap_up=0.5, patience=6.0,
             duration=70.0, warmup=12.0, drain=12.0)


# -- the model --------------------------------------------------------------------------

def predict(p: Params) -> dict:
    """Erlang A with the ring folded in (module doc); variants as in KPI.md."""
    m = ErlangA(p.agents, p.rate, p.service, p.patience)
    k = math.exp(-p.ring / p.patience)
    answered = k * m.p_answered

    def ans_within(t: float) -> float:
        return k * m.answered_within(max(0.0, t - p.ring))

    def ab_within(t: float) -> float:
        # before an agent is found, plus during the ring (V <= t - r approx.)
        return m.abandoned_within(t) + (1 - k) * m.answered_within(max(0.0, t - p.ring))

    out = {"offered_per_s": p.rate, "answered": answered, "abandon_rate": 1 - answered,
           "asa": m.asa + p.ring, "aht": p.talk + p.wrap_up,
           "occupancy": m.occupancy, "load_erlangs": p.rate * p.service, "sl": {}}
    for t in p.thresholds:
        out["sl"][f"{t:g}"] = {v: service_level(
            v, answered=answered, answered_within=ans_within(t), abandoned=1 - answered,
            abandoned_within=ab_within(t), short_abandoned=ab_within(p.short_abandon))
            for v in VARIANTS}
    return out


# -- measurement ------------------------------------------------------------------------

def measured_from_metrics(a: dict, b: dict, p: Params, window: float) -> dict:
    lab = {"queue": QUEUE}
    offered = delta(a, b, "sipacd_queue_offered_total", **lab)
    answered = delta(a, b, "sipacd_queue_answered_total", **lab)
    abandoned = delta(a, b, "sipacd_queue_abandoned_total", **lab)
    ans = dict(bucket_deltas(a, b, "sipacd_queue_answer_wait_seconds", **lab))
    abn = dict(bucket_deltas(a, b, "sipacd_queue_abandon_wait_seconds", **lab))
    short = abn.get(float(p.short_abandon), 0.0)
    out = {"offered": offered, "answered": answered, "abandoned": abandoned,
           "short_abandoned": short,
           "offered_per_s": offered / window if window else math.nan,
           "abandon_rate": abandoned / offered if offered else math.nan,
           "asa": (delta(a, b, "sipacd_queue_answer_wait_seconds_sum", **lab) /
                   delta(a, b, "sipacd_queue_answer_wait_seconds_count", **lab)
                   if delta(a, b, "sipacd_queue_answer_wait_seconds_count", **lab) else math.nan),
           "aht": math.nan, "sl": {}}
    hc = delta(a, b, "sipacd_queue_handle_time_seconds_count", **lab)
    if hc:
        out["aht"] = delta(a, b, "sipacd_queue_handle_time_seconds_sum", **lab) / hc
    for t in p.thresholds:
        out["sl"][f"{t:g}"] = {v: service_level(
            v, answered=answered, answered_within=ans.get(float(t), math.nan),
            abandoned=abandoned, abandoned_within=abn.get(float(t), math.nan),
            short_abandoned=short) for v in VARIANTS}
    return out


def sipacd_report(config: Path, t_from: float, t_to: float, p: Params, window: float) -> dict:
    """The same window from ``sipacd report`` (the event log), or why not."""
    cmd = [sys.executable, "-c",
           "import sys; from sipagent.cli.report import main; sys.exit(main(sys.argv[1:]))",
           "-c", str(config), "--queue", QUEUE, "--format", "json",
           "--from", datetime.fromtimestamp(t_from, timezone.utc).isoformat(),
           "--to", datetime.fromtimestamp(t_to, timezone.utc).isoformat(),
           "--sl", ",".join(f"{t:g}" for t in p.thresholds)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=loadkit.env(),
                           cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]}
    try:
        rows = json.loads(r.stdout)
    except ValueError:
        return {"error": "not JSON"}
    row = next((x for x in rows if x.get("queue") == QUEUE), None)
    if not row or not row.get("offered"):
        return {"error": "no calls in the event log for the window"}
    sl = {t: {v: (x if x is not None else math.nan) for v, x in d.items()}
          for t, d in row.get("service_level", {}).items()}
    nan = lambda x: math.nan if x is None else x  # noqa: E731
    return {"offered": row["offered"], "answered": row["answered"],
            "abandoned": row["abandoned"], "short_abandoned": row.get("short_abandoned"),
            "offered_per_s": row["offered"] / window,  # the drain offers nothing
            "abandon_rate": nan(row.get("abandon_rate")), "asa": nan(row.get("asa")),
            "aht": nan(row.get("aht")), "occupancy": nan(row.get("occupancy")), "sl": sl}


@dataclass
class Result:
    params: dict
    predicted: dict
    metrics: dict
    report: dict
    fleet: dict
    engine: dict
    audio: dict
    notes: list = field(default_factory=list)
    floor: dict | None = None      # --floor: the raw B2BUA floors (load_floor.py)


def run(p: Params, *, ports: dict | None = None, workdir: Path | None = None,
        progress=None) -> Result:
    """One benchmark run.  ``ports``: {"sip", "http", "fleet"} (tests pass
    theirs); ``workdir``: where configs, logs and recordings go."""
    notes: list[str] = []
    say = progress or (lambda msg: None)
    with loadkit.centre(p, ports=ports, workdir=workdir, say=say) as c:
        engine, fleet = c.engine, c.fleet
        say(f"warm-up {p.warmup:g} s")
        loadkit.hold(engine, p.warmup, "warm-up, before the window")
        # A loop busy for a few seconds answers late: retry, not give up.
        m_a = engine.scrape()
        if m_a is None:
            raise RuntimeError("the engine does not answer /metrics at the window's start: "
                               + engine.failure())
        cpu_a, wall_a, epoch_a = engine.cpu_seconds(), time.monotonic(), time.time()
        load_a = os.getloadavg()[0]
        fleet_cpu_a = procstat.cpu_seconds(fleet.proc.pid)
        fleet.send("mark")
        fleet.send("record", n=p.record)  # -1: every caller of the window, and its agent
        samples = []  # (active legs, waiting, rss MB, cpu %)
        say(f"measuring {p.duration:g} s")
        prev_cpu, prev_t = cpu_a, wall_a
        last_m, last_cpu, last_t = m_a, cpu_a, wall_a
        crashed = False
        while time.monotonic() - wall_a < p.duration:
            time.sleep(1.0)
            m = engine.scrape()
            if m is None or engine.proc.poll() is not None:
                # Keep what was measured up to the crash: that is a result too.
                how = engine.failure()
                crashed = True
                notes.append(f"THE ENGINE FAILED {last_t - wall_a:.0f} s into the window "
                             f"({how}); KPIs below stop at its last scrape, so callers "
                             "waiting then count as neither answered nor abandoned")
                break
            cpu, t = engine.cpu_seconds(), time.monotonic()
            samples.append((val(m, "sipacd_active_calls"),
                            val(m, "sipacd_queue_waiting_calls", queue=QUEUE),
                            engine.rss_mb(), 100 * (cpu - prev_cpu) / (t - prev_t)))
            prev_cpu, prev_t = cpu, t
            last_m, last_cpu, last_t = m, cpu, t
            fleet.check()
        fleet_cpu = math.nan
        if crashed:
            cpu_b, wall_b, m_b = last_cpu, last_t, last_m
            window = wall_b - wall_a
        else:
            cpu_b, wall_b = engine.cpu_seconds(), time.monotonic()
            window = wall_b - wall_a
            # The fleet shares the two cores: a saturated fleet is slow to
            # answer and to place calls, which the engine's figures would show.
            fleet_cpu = 100 * (procstat.cpu_seconds(fleet.proc.pid) - fleet_cpu_a) / window
            fleet.send("arrivals", on=False)
            say("draining")
            drain_end = time.monotonic() + p.drain
            while time.monotonic() < drain_end:
                time.sleep(0.5)
                m = engine.metrics()
                if val(m, "sipacd_queue_waiting_calls", queue=QUEUE) == 0 and \
                        fleet.last_stats.get("waiting", 1) == 0:
                    break
            else:
                notes.append(f"queue not empty after the {p.drain:g} s drain: late outcomes "
                             "missed")
            time.sleep(0.5)
            m_b = engine.metrics()
        epoch_b = time.time()
        fleet_stats = fleet.stop() or {}
        c.fleet = None
        lat = bucket_deltas(m_a, m_b, "sipacd_dispatch_latency_seconds")
        has_dispatch = has(m_b, "sipacd_dispatch_latency_seconds_count") and lat and lat[-1][1] > 0
        le5 = dict(lat).get(0.005, math.nan)
        arr = np.array(samples) if samples else np.zeros((1, 4))
        eng = {
            "cpu_percent": 100 * (cpu_b - cpu_a) / window,
            "cpu_percent_median_1s": float(np.median(arr[:, 3])),
            "rss_mb_median": float(np.median(arr[:, 2])), "rss_mb_max": float(arr[:, 2].max()),
            "legs_median": float(np.median(arr[:, 0])), "legs_max": float(arr[:, 0].max()),
            # Legs not waiting are (nearly all) in a bridge, two a conversation;
            # agents ringing (--ring s each) are the small rest.
            "bridged_pairs_median": float(np.median((arr[:, 0] - arr[:, 1]) / 2)),
            "waiting_median": float(np.median(arr[:, 1])), "waiting_max": float(arr[:, 1].max()),
            "window_s": window,
            # The machine's 1-min load average at the window's start and end:
            # other runs share both cores.
            "loadavg": [load_a, os.getloadavg()[0]],
            "fleet_cpu_percent": fleet_cpu,
            "rejected": {k[1][0][1]: v - m_a.get(k, 0.0) for k, v in m_b.items()
                         if k[0] == "sipacd_sip_rejected_total"},
            "dispatch_p50_ms": 1e3 * histogram_quantile(lat, 0.5) if has_dispatch else None,
            "dispatch_p99_ms": 1e3 * histogram_quantile(lat, 0.99) if has_dispatch else None,
            "dispatch_within_5ms": (le5 / lat[-1][1]) if has_dispatch else None,
            "dispatch_count": lat[-1][1] if has_dispatch else 0,
        }
        if not has_dispatch:
            notes.append("sipacd_dispatch_latency_seconds: not exported or empty (n/a)")
        d = fleet_stats.get("dispatch", [])
        eng["outside_dispatch_p50_ms"] = 1e3 * pct(d, 50)
        eng["outside_dispatch_p99_ms"] = 1e3 * pct(d, 99)
        eng["outside_dispatch_count"] = len(d)
        measured = measured_from_metrics(m_a, m_b, p, window)
        rep = sipacd_report(engine.config_path, epoch_a, epoch_b, p, window)
        if "error" in rep:
            notes.append(f"sipacd report: n/a ({rep['error']})")
        audio = [{**audio_check(r), "kind": r["kind"], "path": r["path"],
                  "bridged_at": r["answered"] and r["answered"] - r["start"],
                  "ended_at": r["end"] and r["end"] - r["start"]}
                 for r in fleet_stats.get("recordings", [])]
        audio_sum = audio_summary(audio)
        ftalk = fleet_stats.get("talk", [])
        fl = {k: fleet_stats.get(k) for k in ("placed", "setup_failed", "answered", "abandoned",
                                              "dropped", "agent_calls", "agent_cancelled",
                                              "fail_codes")}
        fl["talk_mean"] = float(np.mean(ftalk)) if ftalk else math.nan
        wa = fleet_stats.get("waits_answered", [])
        fl["asa"] = float(np.mean(wa)) if wa else math.nan
        return Result(params=asdict(p), predicted=predict(p), metrics=measured, report=rep,
                      fleet=fl, engine=eng, audio=audio_sum, notes=notes)


# -- output -----------------------------------------------------------------------------

def _f(x, kind: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if kind == "pct":
        return f"{100 * x:.1f} %"
    if kind == "s":
        return f"{x:.2f} s"
    if kind == "ms":
        return f"{x:.2f} ms"
    if kind == "n":
        return f"{x:.0f}"
    return f"{x:.2f}"


def table(r: Result) -> str:
    p, pr, me, rep = r.params, r.predicted, r.metrics, r.report
    rep_ok = "error" not in rep
    rows = [("offered (window)", None, me["offered"], rep.get("offered"), "n"),
            ("offered per second", pr["offered_per_s"], me["offered_per_s"],
             rep.get("offered_per_s"), "f")]
    for t in p["thresholds"]:
        key = f"{t:g}"
        for v in VARIANTS:
            rows.append((f"SL {key} s, {v}", pr["sl"][key][v], me["sl"][key][v],
                         rep.get("sl", {}).get(key, {}).get(v) if rep_ok else None, "pct"))
    rows += [("abandon rate", pr["abandon_rate"], me["abandon_rate"], rep.get("abandon_rate"), "pct"),
             ("ASA", pr["asa"], me["asa"], rep.get("asa"), "s"),
             ("AHT (talk + wrap-up)", pr["aht"], me["aht"], rep.get("aht"), "s")]
    out = [f"queue {QUEUE}: {p['agents']} agents, {p['rate']:g} calls/s, talk {p['talk']:g} s, "
           f"ring {p['ring']:g} s, wrap-up {p['wrap_up']:g} s, patience {p['patience']:g} s; "
           f"load {pr['load_erlangs']:.1f} Erl; window {r.engine['window_s']:.0f} s "
           f"after {p['warmup']:g} s warm-up",
           f"{'KPI':<34}{'Erlang A':>12}{'/metrics':>12}{'report':>12}"]
    for name, a, b, c, kind in rows:
        out.append(f"{name:<34}{_f(a, kind):>12}{_f(b, kind):>12}{_f(c, kind):>12}")
    e, fl, au = r.engine, r.fleet, r.audio
    out += ["",
            f"engine (both cores shared with other runs, load average "
            f"{e['loadavg'][0]:.2f} -> {e['loadavg'][1]:.2f}; medians of 1 s samples)",
            f"  CPU               {e['cpu_percent']:.1f} % of one core over the window "
            f"(median 1 s sample {e['cpu_percent_median_1s']:.1f} %)",
            f"  fleet's CPU       {_f(e['fleet_cpu_percent'], 'f')} % of one core (callers and "
            f"agents, one process, nice {p['fleet_nice']})",
            f"  RSS               median {e['rss_mb_median']:.0f} MB, max {e['rss_mb_max']:.0f} MB",
            f"  concurrent legs   median {e['legs_median']:.0f}, max {e['legs_max']:.0f} "
            f"(callers waiting with music: median {e['waiting_median']:.0f}, "
            f"max {e['waiting_max']:.0f})",
            f"  new calls/s       {me['offered_per_s']:.1f} offered "
            f"(fleet: {fl['placed']} placed, {fl['setup_failed']} failed setup "
            f"{fl['fail_codes'] or ''}; engine refused {e['rejected'] or 0})",
            f"  dispatch latency  engine histogram: p50 {_f(e['dispatch_p50_ms'], 'ms')}, "
            f"p99 {_f(e['dispatch_p99_ms'], 'ms')}, within 5 ms "
            f"{_f(e['dispatch_within_5ms'], 'pct')} of {e['dispatch_count']:.0f}",
            f"                    outside (agent free -> INVITE at the agent): "
            f"p50 {_f(e['outside_dispatch_p50_ms'], 'ms')}, "
            f"p99 {_f(e['outside_dispatch_p99_ms'], 'ms')} of {e['outside_dispatch_count']}",
            f"  audio             {au['judged']} bridged legs of >= {MIN_BRIDGED:g} s judged "
            f"(of {au['recorded']} recorded): {au['intact']} intact, {au['with_gaps']} with gaps "
            f"(a gap: 10 ms frames under a tenth of the far end's tone level)"
            f"{', %d never heard the far end' % au['unheard'] if au['unheard'] else ''}; "
            f"gaps/s median {_f(au['gaps_per_s_median'], 'f')} "
            f"(over legs with gaps {_f(au['gap_legs_gaps_per_s_median'], 'f')}), "
            f"longest gap {_f(au['longest_gap_ms'], 'n')} ms",
            *(f"                    far end first heard, {d}: p50 {_f(v['p50'], 'n')} ms, "
              f"p95 {_f(v['p95'], 'n')} ms, max {_f(v['max'], 'n')} ms after the bridge "
              f"({v['n']} legs)" for d, v in au["startup_ms"].items()),
            f"  fleet             answered {fl['answered']}, abandoned {fl['abandoned']}, "
            f"dropped {fl['dropped']}, mean talk {_f(fl['talk_mean'], 's')}, "
            f"caller-side ASA {_f(fl['asa'], 's')}"]
    if r.floor is not None:
        out += [floor_lines(r)]
    out += [f"note: {n}" for n in r.notes]
    return "\n".join(out)


def params_from_args(argv=None) -> tuple[Params, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the ~100 s run the test uses")
    for name, default in asdict(Params()).items():
        if name == "thresholds":
            ap.add_argument("--thresholds", default=None,
                            help="SL thresholds, s, comma-separated (default 2,20)")
            continue
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None)
    ap.add_argument("--floor", action="store_true",
                    help="after the load, run the raw B2BUA holding the same number of bridged "
                         "pairs (benchmarks/b2bua_floor.py) and carrying the same traffic "
                         "(benchmarks/b2bua_churn.py); report CPU per bridged call against both")
    ap.add_argument("--floor-window", type=float, default=10.0, help="s per floor CPU sample")
    ap.add_argument("--floor-rounds", type=int, default=3, help="floor CPU samples (median)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--json-out", help="also write the result as JSON to this file")
    args = ap.parse_args(argv)
    base = dict(QUICK) if args.quick else {}
    for name in asdict(Params()):
        v = getattr(args, name, None)
        if v is not None:
            base[name] = (tuple(float(x) for x in v.split(",")) if name == "thresholds" else v)
    return Params(**base), args


def main(argv=None) -> int:
    p, args = params_from_args(argv)
    started = time.monotonic()
    r = run(p, progress=lambda m: print(f"[{time.monotonic() - started:5.1f} s] {m}",
                                        file=sys.stderr, flush=True))
    if args.floor:
        print(f"[{time.monotonic() - started:5.1f} s] raw B2BUA floors: the same pairs, "
              "the same traffic",
              file=sys.stderr, flush=True)
        r.floor = run_floor(r, args.floor_window, args.floor_rounds)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(asdict(r), default=float, indent=1))
    if args.json:
        print(json.dumps(asdict(r), default=float, indent=1))
    else:
        print(table(r))
    print(f"[{time.monotonic() - started:.0f} s in all]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
