"""``sipacd report``: KPIs per queue and interval from the event log, as a
table, CSV or JSON.

Times on the command line are ISO 8601, with a zone (``2026-11-23T09:00Z``,
``...+08:00``) or without one (local time); a bare date is its midnight.
Output times use the zone of ``--from`` (local time if it had none).  Ratios
are 0..1 in CSV and JSON (empty / null where nothing was counted), percent
in the table.

"abandoned" includes short abandons ("short" is how many of them); they
are excluded only where a formula says so (SL "xsh", "aband-xs").  Calls
the previous run left open at a crash are closed out when the engine
starts again (outcome ``engine_restart``) and counted once, by that
outcome; "restart" says how many.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sqlite3
import sys
from datetime import datetime, timedelta, tzinfo
from typing import Any, TextIO

from acdcore.service_level import ServiceLevelVariant
from sipagent.store.report import DEFAULT_SHORT_ABANDON, DEFAULT_THRESHOLDS, ReportRow, report

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_VARIANT_ABBREV = {"answered": "ans", "offered": "off", "excluding_short_abandons": "xsh",
                   "abandons_positive": "pos"}


class UsageError(ValueError):
    pass


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="sipacd report", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--config", help="TOML config: its data dir, queues and thresholds")
    source.add_argument("--db", help="the event log itself: its file, or the PostgreSQL URL"
                                     " of [data] database")
    parser.add_argument("--from", dest="t_from", required=True, help="start, ISO 8601")
    parser.add_argument("--to", dest="t_to", required=True, help="end (exclusive), ISO 8601")
    parser.add_argument("--queue", help="only this queue")
    parser.add_argument("--interval", help="one row per interval: 15m, 1h, 1d (any N s|m|h|d)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--sl", help="service-level thresholds in seconds, e.g. 20,30 "
                                     "(default: each queue's from the config, else 20)")
    parser.add_argument("--short-abandon", type=float,
                        help="short-abandon threshold in seconds (default: the config's, else 5)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:        # from a wrapping CLI's REMAINDER
        argv = argv[1:]
    args = parser.parse_args(argv)
    try:
        start, zone = parse_time(args.t_from, "--from")
        end, _ = parse_time(args.t_to, "--to")
        if end <= start:
            raise UsageError("--to must be after --from")
        interval = _intervals(args.interval, start, end, zone) if args.interval else None
        options = _sources(args)
        rows = report(options.pop("db"), start, end, queue=args.queue, interval=interval,
                      **options)
    except (UsageError, FileNotFoundError, sqlite3.Error, ValueError) as exc:
        print(f"sipacd report: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        write_json(rows, zone, out)
    elif args.format == "csv":
        write_csv(rows, zone, out)
    else:
        write_table(rows, zone, out)
    return 0


def parse_time(text: str, option: str) -> tuple[float, tzinfo | None]:
    """Epoch seconds, and the zone to print times in (None: local time)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: not an ISO 8601 time: {text!r}") from None
    # A naive time is local time; timestamp() resolves it with the local
    # rules of that date, DST included.
    return moment.timestamp(), moment.tzinfo


def parse_interval(text: str) -> tuple[float, str]:
    """``15m`` -> (15.0, "m")."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--interval: expected a length like 15m, 1h or 1d, got {text!r}")
    return float(m.group(1)), m.group(2)


def _intervals(text: str, start: float, end: float, zone: tzinfo | None) -> float | list[float]:
    count, unit = parse_interval(text)
    if unit != "d" or zone is not None:
        return count * _UNITS[unit]
    # Local days: midnight to midnight on the wall clock, so a day with a
    # DST change is 23 or 25 hours long and the next one starts at 00:00.
    first = datetime.fromtimestamp(start)
    starts, k = [], 1
    while (edge := (first + timedelta(days=count * k)).timestamp()) < end:
        starts.append(edge)
        k += 1
    return starts


def _sources(args: argparse.Namespace) -> dict[str, Any]:
    """Where the log is and the thresholds, from --db/flags or from the config."""
    thresholds: Any = DEFAULT_THRESHOLDS
    short: Any = DEFAULT_SHORT_ABANDON
    members = None
    if args.config:
        from sipagent.config.load import ConfigError, load_config
        from sipagent.store.eventlog import source_of
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        db = source_of(config.data.place)
        thresholds = {name: q.service_levels for name, q in config.queues.items()}
        short = {name: q.short_abandon for name, q in config.queues.items()}
        members = {name: [a for a, agent in config.agents.items() if name in agent.queues]
                   for name in config.queues}
    else:
        db = args.db
    if args.sl:
        try:
            thresholds = tuple(float(x) for x in args.sl.split(",") if x.strip())
        except ValueError:
            raise UsageError(f"--sl: expected seconds like 20,30, got {args.sl!r}") from None
        if not thresholds or any(not t > 0 for t in thresholds):
            raise UsageError(f"--sl: thresholds must be > 0 s, got {args.sl!r}")
    if args.short_abandon is not None:
        short = args.short_abandon
    return {"db": db, "thresholds": thresholds, "short_abandon": short, "members": members}


# -- output ----------------------------------------------------------------------------
def _when(t: float, zone: tzinfo | None) -> str:
    # Local time is converted per timestamp, so rows on both sides of a DST
    # change each get their own offset.
    moment = datetime.fromtimestamp(t, zone) if zone else datetime.fromtimestamp(t).astimezone()
    return moment.isoformat(timespec="seconds")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(rows: list[ReportRow], zone: tzinfo | None, out: TextIO) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return _finite(value)
    docs = [clean({**r.kpis(), "start": _when(r.start, zone), "end": _when(r.end, zone)})
            for r in rows]
    json.dump(docs, out, indent=2, allow_nan=False)
    out.write("\n")


def _flat(row: ReportRow, zone: tzinfo | None, reasons: list[str], thresholds: list[str]) -> dict:
    k = row.kpis()
    flat = {"start": _when(row.start, zone), "end": _when(row.end, zone), "queue": row.queue}
    for key in ("offered", "answered", "abandoned", "short_abandoned"):
        flat[key] = k[key]
    for reason in reasons:
        flat[f"exited_{reason}"] = k["exited"].get(reason, 0)
    for t in thresholds:
        for variant in ServiceLevelVariant:
            flat[f"sl_{t}_{variant.value}"] = k["service_level"].get(t, {}).get(variant.value)
    for key in ("answer_rate", "abandon_rate", "abandon_rate_excluding_short", "asa",
                "mean_abandon_wait", "handled", "aht", "occupancy", "agent_busy_seconds",
                "agent_idle_seconds", "surveys", "satisfied", "satisfaction", "participation",
                "closed_by_restart", "transfers", "holds", "hold_seconds"):
        flat[key] = k[key]
    return {key: _finite(v) for key, v in flat.items()}


def _columns(rows: list[ReportRow]) -> tuple[list[str], list[str]]:
    reasons = sorted({r for row in rows for r in row.tally.exited if row.tally.exited[r]})
    thresholds = sorted({f"{t:g}" for row in rows for t in row.tally.service_thresholds},
                        key=float)
    return reasons, thresholds


def write_csv(rows: list[ReportRow], zone: tzinfo | None, out: TextIO) -> None:
    reasons, thresholds = _columns(rows)
    flats = [_flat(r, zone, reasons, thresholds) for r in rows]
    if not flats:
        return
    writer = csv.DictWriter(out, fieldnames=list(flats[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flats)


def write_table(rows: list[ReportRow], zone: tzinfo | None, out: TextIO) -> None:
    _, thresholds = _columns(rows)

    def pct(x: float | None) -> str:
        return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"

    def sec(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.1f}s"

    header = ["start", "queue", "offered", "answ", "aband", "short", "exits"]
    for t in thresholds:
        header += [f"SL{t}:{a}" for a in _VARIANT_ABBREV.values()]
    header += ["answer", "aband", "aband-xs", "ASA", "AHT", "hold", "xfer", "occ", "sat", "part",
               "restart"]
    lines = [header]
    for row in rows:
        k = row.kpis()
        line = [_when(row.start, zone), row.queue, str(k["offered"]), str(k["answered"]),
                str(k["abandoned"]), str(k["short_abandoned"]),
                ",".join(f"{r}={n}" for r, n in sorted(k["exited"].items()) if n) or "-"]
        for t in thresholds:
            levels = k["service_level"].get(t, {})
            line += [pct(levels.get(v)) for v in _VARIANT_ABBREV]
        line += [pct(k["answer_rate"]), pct(k["abandon_rate"]),
                 pct(k["abandon_rate_excluding_short"]), sec(k["asa"]), sec(k["aht"]),
                 f"{k['holds']}/{k['hold_seconds']:.0f}s" if k["holds"] else "-",
                 str(k["transfers"]), pct(k["occupancy"]), pct(k["satisfaction"]), pct(k["participation"]),
                 str(k["closed_by_restart"])]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.write("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w)
                            for i, (cell, w) in enumerate(zip(line, widths))).rstrip() + "\n")
    out.write("SL variants: ans = within T / answered, off = / (answered + abandoned), "
              "xsh = / (answered + abandoned - short abandons), pos = (answered + abandoned "
              "within T) / (answered + abandoned)\n")
    out.write("aband counts short abandons too (short: how many); aband-xs and xsh leave "
              "them out of both terms\n")
    restarted = sum(row.closed_by_restart for row in rows)
    if restarted:
        out.write(f"{restarted} call(s) were open when the engine stopped without a shutdown "
                  "and were closed out at its restart: waiting ones count as exited "
                  "(engine_restart), connected ones as answered but not in AHT\n")
