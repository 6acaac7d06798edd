"""The raw B2BUA floors of ``benchmarks/load.py --floor``: what the engine's
CPU per bridged call is compared with, measured right after the load
(engine and fleet stopped), and the lines the load's table prints for them.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import loadkit

REPO = loadkit.REPO


def _run_json(cmd: list[str], timeout: float) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=loadkit.env(), cwd=REPO,
                          timeout=timeout)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_floor(r, window: float, rounds: int) -> dict:
    """The raw pjsua2 B2BUA twice, right after the load (engine and fleet
    stopped), and the engine's CPU per bridged call against each:

    * ``held``: benchmarks/b2bua_floor.py holding the load's median number
      of bridged pairs still, no call set up or ended (media alone);
    * ``carrying``: benchmarks/b2bua_churn.py carrying the load's own
      traffic (same fleet, rate, agents, ring, talk, wrap-up, patience and
      window), so every call is answered, dialled, bridged and hung up as in
      the engine, without ACD, flows, API or events.

    The engine's figure is its whole CPU over its pairs (and over its calls
    offered in the window)."""
    bench = Path(__file__).resolve().parent
    pairs = max(1, int(round(r.engine["bridged_pairs_median"])))
    held = _run_json([sys.executable, str(bench / "b2bua_floor.py"), "--pairs", str(pairs),
                      "--window", f"{window:g}", "--rounds", str(rounds), "--json"],
                     120 + 2 * pairs / 100 + window * rounds * 2)
    p = r.params
    churn_window = min(60.0, r.engine["window_s"])
    carrying = _run_json(
        [sys.executable, str(bench / "b2bua_churn.py"), "--json", "--duration", f"{churn_window:g}",
         "--warmup", f"{min(20.0, p['warmup']):g}",
         *(a for k in ("rate", "agents", "talk", "ring", "wrap_up", "patience", "seed")
           for a in (f"--{k.replace('_', '-')}", str(p[k])))],
        180 + churn_window)
    engine_per_pair = r.engine["cpu_percent"] / pairs
    offered = r.metrics["offered"]
    engine_ms_per_call = (10 * r.engine["cpu_percent"] * r.engine["window_s"] / offered
                          if offered else math.nan)
    out = {"pairs": pairs, "engine_cpu_per_pair_pct_core": engine_per_pair,
           "engine_cpu_ms_per_call": engine_ms_per_call, "held": held, "carrying": carrying}
    if "error" not in held:
        held["ratio"] = engine_per_pair / held["cpu_per_pair_pct_core"]
    if "error" not in carrying:
        carrying["ratio"] = engine_per_pair / carrying["cpu_per_pair_pct_core"]
        carrying["ratio_per_call"] = engine_ms_per_call / carrying["cpu_ms_per_call"]
        # Some 50 calls/s runs fall over (rings and talks grow seconds late,
        # the fleet's call slots fill); such a floor carried other traffic.
        fell = []
        if carrying["fleet"].get("setup_failed"):
            fell.append(f"{carrying['fleet']['setup_failed']} set-ups failed")
        if carrying["offered_per_s"] < 0.9 * r.metrics["offered_per_s"]:
            fell.append(f"{carrying['offered_per_s']:.1f} calls/s against the load's "
                        f"{r.metrics['offered_per_s']:.1f}")
        carrying["fell_behind"] = "; ".join(fell)
    return out


def floor_lines(r) -> str:
    f = r.floor
    out = [f"  CPU per bridged call, engine: {f['engine_cpu_per_pair_pct_core']:.3f} % of a core "
           f"per pair ({r.engine['cpu_percent']:.1f} % over {f['pairs']} pairs, set-ups and "
           f"callers waiting included), {f['engine_cpu_ms_per_call']:.2f} ms of CPU per call "
           f"offered"]
    h, c = f["held"], f["carrying"]
    if "error" in h:
        out.append(f"    raw B2BUA holding the pairs still   n/a ({h['error']})")
    else:
        out.append(f"    raw B2BUA holding {h['pairs']} pairs still (no set-ups): "
                   f"{h['cpu_per_pair_pct_core']:.3f} % per pair ({h['cpu_percent']:.1f} %, "
                   f"samples {h['cpu_all']}, load average {h['loadavg']:.2f}): "
                   f"ratio {h['ratio']:.2f}x")
    if "error" in c:
        out.append(f"    raw B2BUA carrying the traffic   n/a ({c['error']})")
    else:
        out.append(f"    raw B2BUA carrying the same traffic ({c['offered_per_s']:.1f} calls/s, "
                   f"{c['pairs_median']:.0f} pairs, {c['waiting_median']:.0f} waiting; fleet "
                   f"{c['fleet']}): {c['cpu_per_pair_pct_core']:.3f} % per pair "
                   f"({c['cpu_percent']:.1f} %), {c['cpu_ms_per_call']:.2f} ms per call, load "
                   f"average {c['loadavg']:.2f}: ratio {c['ratio']:.2f}x per pair, "
                   f"{c['ratio_per_call']:.2f}x per call")
        if c["fell_behind"]:
            out.append(f"    NOT COMPARABLE: the traffic fell behind in the floor's run "
                       f"({c['fell_behind']}); run again")
    return "\n".join(out)
