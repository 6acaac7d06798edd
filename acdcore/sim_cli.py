"""What-if runs: simulate one queue through the real scheduler, next to Erlang.

    python -m acdcore.sim_cli --calls-per-hour 2880 --aht 60 --patience 120 --agents 50
    python -m acdcore.sim_cli --calls-per-hour 200 --aht 180 --agents 14 --strategy round_robin --json

The simulated KPIs use the same service-level variants as the live ones;
the Erlang column is the exact M/M/N(+M) prediction for the same inputs, so
the gap shows what the model leaves out (lognormal handle times, ring
delay, wrap-up) or, with exponential inputs, the run's sampling noise.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from acdcore.erlang import queue_model
from acdcore.erlang_cli import json_safe
from acdcore.service_level import ServiceLevelVariant
from acdcore.sim import QueueLoad, Scenario, simulate

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sipacd simulate", description=__doc__.split("\n")[0])
    p.add_argument("--calls-per-hour", type=float, required=True)
    p.add_argument("--aht", type=float, required=True, help="mean talk time, seconds")
    p.add_argument("--agents", type=int, required=True)
    p.add_argument("--patience", type=float, default=None, help="mean caller patience, seconds (default: never hang up)")
    p.add_argument("--handle", choices=["exponential", "lognormal"], default="exponential")
    p.add_argument("--handle-cv", type=float, default=1.0, help="lognormal coefficient of variation")
    p.add_argument("--wrap-up", type=float, default=0.0, help="seconds after each call")
    p.add_argument("--answer-delay", type=float, default=0.0, help="seconds an agent's phone rings")
    p.add_argument("--strategy", default="longest_idle")
    p.add_argument("--calls", type=int, default=200_000, help="calls to simulate")
    p.add_argument("--warmup", type=float, default=None, help="seconds not counted (default: 20 handle times)")
    p.add_argument("--within", type=float, nargs="+", default=[20.0], help="service-level thresholds, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=["fast", "reference"], default="fast")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    args = _parser().parse_args(argv)
    if args.calls_per_hour <= 0 or args.aht <= 0 or args.agents < 1 or args.calls < 1:
        print("sipacd simulate: calls per hour, aht, agents and calls must be positive", file=sys.stderr)
        return 2
    rate = args.calls_per_hour / 3600.0
    load = QueueLoad("q", rate, args.aht, handle=args.handle, handle_cv=args.handle_cv,
                     patience=args.patience, strategy=args.strategy, wrap_up=args.wrap_up)
    warmup = 20 * (args.aht + args.wrap_up) if args.warmup is None else args.warmup
    scenario = Scenario((load,), agents=args.agents, calls=args.calls, seed=args.seed,
                        answer_delay=args.answer_delay, warmup=warmup,
                        service_thresholds=tuple(args.within))
    result = simulate(scenario, engine=args.engine)
    tally = result.queues["q"]
    model = queue_model(args.agents, rate, args.aht + args.wrap_up, args.patience)
    rows = [("offered", tally.offered, None)]
    for t in args.within:
        rows.append((f"SL({t:g}s) offered", tally.service_level(t), model.service_level(t)))
        rows.append((f"SL({t:g}s) answered", tally.service_level(t, ServiceLevelVariant.ANSWERED),
                     model.service_level(t, ServiceLevelVariant.ANSWERED)))
    rows += [
        ("P(abandon)", tally.abandon_rate(), model.p_abandon),
        ("ASA s", tally.asa, model.asa),
        ("AHT s", tally.aht, args.aht + args.wrap_up),
        ("occupancy", result.occupancy, model.occupancy),
    ]
    if args.json:
        doc = {"simulated": result.summary(),
               "erlang": {name: value for name, _, value in rows if value is not None}}
        print(json.dumps(json_safe(doc), indent=2, allow_nan=False))
        return 0
    print(f"{result.calls:,} calls through {result.engine} in {result.wall_seconds:.2f} s "
          f"({result.calls_per_second:,.0f} calls/s); Erlang {'A' if args.patience else 'C'} alongside")
    for name, sim_value, erlang_value in rows:
        fmt = (lambda v: f"{v:,}") if name == "offered" else (
            (lambda v: f"{v:.2f}") if name.endswith(" s") else (lambda v: f"{100 * v:.2f}%"))
        expected = "" if erlang_value is None else fmt(erlang_value)
        print(f"  {name:<20} {fmt(sim_value):>12}  {expected:>12}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
