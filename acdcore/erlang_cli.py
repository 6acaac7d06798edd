"""``sipacd erlang``: agents required for a forecast interval, with predicted KPIs.

    python -m acdcore.erlang_cli --calls 100 --interval 30m --aht 180 --target 80 --within 20
    python -m acdcore.erlang_cli --calls 2880 --interval 1h --aht 60 --patience 120 --json

Without ``--patience`` the prediction is Erlang C (callers never hang up,
so it over-staffs real queues); with it, Erlang A.  The table shows the
staffing levels around the answer so a planner sees the cost of one agent
more or less.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence

from acdcore.service_level import ServiceLevelVariant
from acdcore.staffing import StaffingPrediction, agents_required, predict

__all__ = ["main", "build_parser", "json_safe"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def _duration(text: str) -> float:
    """Seconds from '180', '180s', '30m', '1.5h'."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 180, 30m or 1h)")
    value = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be > 0: {text!r}")
    return value


def _percent(text: str) -> float:
    """A target like '80' or '80%' as the ratio 0.8."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"percentage must be in [0, 100): {text!r}")
    return value / 100.0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0: {text!r}")
    return value


def build_parser(prog: str = "sipacd erlang") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Agents required to meet a service level (Erlang C / Erlang A).")
    p.add_argument("--calls", type=_positive, required=True, help="calls offered per interval")
    p.add_argument("--interval", type=_duration, default=1800.0, help="interval length (default 30m; e.g. 900, 15m, 1h)")
    p.add_argument("--aht", type=_duration, required=True, help="average handle time incl. wrap-up (e.g. 180 or 3m)")
    p.add_argument("--target", type=_percent, default=0.80, help="service-level target in percent (default 80)")
    p.add_argument("--within", type=_duration, default=20.0, help="service-level threshold T (default 20 s)")
    p.add_argument("--patience", type=_duration, default=None,
                   help="mean caller patience; switches from Erlang C to Erlang A")
    p.add_argument("--variant", choices=[v.value for v in ServiceLevelVariant], default=ServiceLevelVariant.OFFERED.value,
                   help="service-level formula (default offered = answered within T / (answered + abandoned))")
    p.add_argument("--short-abandon", type=_duration, default=5.0, help="short-abandon threshold (default 5 s)")
    p.add_argument("--max-asa", type=_duration, default=None, help="also require ASA at most this")
    p.add_argument("--max-abandon", type=_percent, default=None, help="also require P(abandon) at most this percent")
    p.add_argument("--max-occupancy", type=_percent, default=None, help="also require occupancy at most this percent")
    p.add_argument("--around", type=int, default=3, help="table rows either side of the answer (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _secs(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1f}s"


def _table(rows: list[StaffingPrediction], required: int, model: str, args: argparse.Namespace) -> str:
    head = (f"{model}: {args.calls:g} calls / {args.interval:g} s, AHT {args.aht:g} s, "
            f"load {rows[0].load:.2f} Erlangs; target {100 * args.target:g}% within {args.within:g} s "
            f"({args.variant})")
    cols = ("agents", f"SL({args.within:g}s)", "ASA", "occupancy", "P(abandon)", "P(wait)", "")
    body = [cols]
    for r in rows:
        body.append((str(r.agents), _pct(r.service_level), _secs(r.asa), _pct(r.occupancy),
                     _pct(r.p_abandon), _pct(r.p_wait), "<- required" if r.agents == required else ""))
    widths = [max(len(row[i]) for row in body) for i in range(len(cols))]
    lines = [head, ""]
    for row in body:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)).rstrip())
    best = next(r for r in rows if r.agents == required)
    if best.p_abandon > 0.05 and args.max_abandon is None:
        # Over offered calls, an abandon simply counts as "not within T", so
        # an overloaded queue that sheds callers can still "meet" its SL.
        lines.append(f"\nnote: {100 * best.p_abandon:.1f}% of callers abandon at {required} agents; "
                     "add --max-abandon to cap it")
    return "\n".join(lines)


def json_safe(value: object) -> object:
    """JSON has no inf/NaN: an unstable queue's ASA becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # a wrapper CLI passing "sipacd erlang -- --calls ..." through
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    rate = args.calls / args.interval
    variant = ServiceLevelVariant(args.variant)
    model = "Erlang C" if args.patience is None else f"Erlang A (patience {args.patience:g} s)"
    try:
        best = agents_required(
            rate, args.aht, args.target, args.within, args.patience,
            variant=variant, short_abandon=args.short_abandon, max_asa=args.max_asa,
            max_p_abandon=args.max_abandon, max_occupancy=args.max_occupancy,
        )
    except ValueError as exc:
        print(f"sipacd erlang: {exc}", file=sys.stderr)
        return 2
    low = max(1, best.agents - max(0, args.around))
    rows = [predict(n, rate, args.aht, args.within, args.patience, variant, args.short_abandon)
            for n in range(low, best.agents + max(0, args.around) + 1)]
    if args.json:
        print(json.dumps(json_safe({
            "model": "erlang_a" if args.patience is not None else "erlang_c",
            "calls": args.calls, "interval_seconds": args.interval, "aht_seconds": args.aht,
            "patience_seconds": args.patience, "target": args.target, "threshold_seconds": args.within,
            "required": best.as_dict(),
            "around": [r.as_dict() for r in rows],
        }), indent=2, allow_nan=False))
    else:
        print(_table(rows, best.agents, model, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
