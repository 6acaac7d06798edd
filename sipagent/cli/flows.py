"""``sipacd flows check DIR`` and ``sipacd flows simulate ROUTE_OR_FLOW``.

``check`` loads every flow file of a folder the way the engine does, then
runs each flow in the flow kit with a few scripted callers (silent, pressing
each key, open and closed), so a flow that raises, hangs, loops, queues
before answering or plays a prompt that has no words fails here instead of
on a caller.  ``simulate`` runs one route or flow with the kit and prints
what a caller would live through.  Neither touches SIP.
"""
from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ivrflows.schedule import Schedule, ScheduleError, from_dict
from ivrflows.testing import (FlowMistake, FlowRun, FlowStalled, QueueScript, parse_digits,
                              run_flow)

# The callers check plays each flow to: silent, and one per menu key.
CHECK_SCRIPTS = [""] + [f"{k},{k},{k}" for k in "1234567890*#"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipacd flows", description="check and try out IVR flows")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and smoke-test every flow file in a folder")
    check.add_argument("dir", type=Path)
    check.add_argument("-c", "--config", help="config file (for its prompts folder)")
    sim = sub.add_parser("simulate", help="run a route or flow against a scripted caller")
    sim.add_argument("target", metavar="ROUTE_OR_FLOW",
                     help="a called number routed by the config, or 'module[:function]'")
    sim.add_argument("--digits", default="", help="caller steps, e.g. 1,2,# "
                     "(empty item: stay silent; h: hang up)")
    sim.add_argument("-c", "--config", help="config file (default: the embedded demo config)")
    sim.add_argument("--caller", default="+15550100")
    sim.add_argument("--at", help="wall-clock start, ISO 8601 (default: now); decides schedules")
    state = sim.add_mutually_exclusive_group()
    state.add_argument("--open", dest="force_open", action="store_const", const=True,
                       help="every schedule open")
    state.add_argument("--closed", dest="force_open", action="store_const", const=False,
                       help="every schedule closed")
    sim.add_argument("--queue", default="answered", metavar="RESULT[:WAIT]",
                     help="what queues do: answered, timeout, empty, full, callback "
                          "(default answered:20)")
    sim.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                     help="a call variable, as a route's vars would set it (repeatable)")
    sim.add_argument("--language", help="the call's starting language (default: the "
                                        "route's, else [flows] language)")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check_dir(args.dir, config_path=args.config)
    return simulate(args)


# -- check -------------------------------------------------------------------------------

def check_dir(folder: Path, *, config_path: str | None = None) -> int:
    from sipagent.calls.flow_library import FlowLibrary, FlowLoadError

    if not folder.is_dir():
        print(f"sipacd flows: no such folder: {folder}", file=sys.stderr)
        return 2
    prompts_dir = None
    if config_path:
        config = _load_config(config_path)
        if config is None:
            return 2
        prompts_dir = Path(config.flows.prompts_dir)
    library = FlowLibrary(folder)
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", "test_")))
    texts = _prompt_texts(files)
    flows = failed = 0
    skipped = []
    for path in files:
        problem = _defines_flow(path)
        if problem == "none":
            skipped.append(path.name)
            continue
        flows += 1
        if problem:
            failed += 1
            print(f"{path}: {problem}")
            continue
        try:
            flow = library.get(path.stem)
        except FlowLoadError as exc:
            failed += 1
            print(f"{path}{':' + str(exc.line) if exc.line else ''}: {exc.error}")
            continue
        problems = _smoke(flow, library, texts, prompts_dir)
        failed += bool(problems)
        print(f"{path}: " + ("ok" if not problems else "FAILED"))
        for p in problems:
            print(f"  {p}")
    if skipped:
        print(f"no 'async def flow' (library modules): {', '.join(skipped)}")
    print(f"{flows} flow{'s' if flows != 1 else ''} checked, {failed} failed")
    return 1 if failed else 0


def _defines_flow(path: Path) -> str | None:
    """None: a flow to check; 'none': no flow here; else what is wrong."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as exc:
        return f"line {exc.lineno}: SyntaxError: {exc.msg}"
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "flow":
            return None
        if isinstance(node, ast.FunctionDef) and node.name == "flow":
            return f"line {node.lineno}: 'flow' must be an 'async def' function"
    return "none"


def _smoke(flow, library, texts: Mapping[str, set[str]], prompts_dir: Path | None) -> list[str]:
    problems: list[str] = []
    missing: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="sipacd-check-") as tmp:
        for is_open in (True, False):
            for digits in CHECK_SCRIPTS:
                where = f"caller {digits or 'silent'}, {'open' if is_open else 'closed'}"
                try:
                    run = run_flow(flow, parse_digits(digits), open=is_open, flows=library.get,
                                   record_dir=tmp, max_seconds=4 * 3600)
                except (FlowMistake, FlowStalled) as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                except Exception as exc:
                    problems.append(f"{where}: raised {type(exc).__name__}: {exc}")
                    continue
                missing |= {(lang, name) for lang, name in run.prompt_uses
                            if not _has_prompt(lang, name, texts, prompts_dir)}
            if problems:
                break   # one failing script usually explains the others
    problems += [f"prompt {name!r} has no text or file for language {lang!r}"
                 for lang, name in sorted(missing)]
    return problems


def _prompt_texts(files: list[Path]) -> dict[str, set[str]]:
    """Prompt names with words: the engine's catalogue plus every flow
    file's ``PROMPTS`` table (read without running the file)."""
    from sipagent.media.prompts import CATALOGUE

    known: dict[str, set[str]] = {lang: set(p) for lang, p in CATALOGUE.items()}
    for path in files:
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PROMPTS"
                                                     for t in node.targets)):
                try:
                    table = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for lang, prompts in table.items():
                    known.setdefault(lang, set()).update(prompts)
    return known


def _has_prompt(lang: str, name: str, texts: Mapping[str, set[str]], prompts_dir: Path | None) -> bool:
    if name.endswith(".wav"):
        return Path(name).is_file()
    if name in texts.get(lang, ()):
        return True
    return prompts_dir is not None and (prompts_dir / lang / f"{name}.wav").is_file()


# -- simulate ----------------------------------------------------------------------------

def simulate(args: argparse.Namespace) -> int:
    from sipagent.calls.flow_library import FlowLibrary, FlowLoadError

    config = _load_config(args.config)
    if config is None:
        return 2
    route = _route(config, args.target)
    variables: dict[str, str] = {}
    if route is not None:
        spec, called = route.flow, args.target
        if route.queue:
            variables["queue"] = route.queue
        variables.update(getattr(route, "vars", None) or {})
        print(f"route {args.target} -> flow {spec}" + (f", queue {route.queue}" if route.queue else ""))
    else:
        spec, called = args.target, args.target
        print(f"flow {spec} (no route for {args.target!r})")
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"sipacd flows: --var wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        variables[name] = value
    try:
        start = datetime.fromisoformat(args.at) if args.at else datetime.now(timezone.utc)
        schedules = _schedules(config)
        plan = _queue_plan(args.queue)
    except ValueError as exc:
        print(f"sipacd flows: {exc}", file=sys.stderr)
        return 2
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    library = FlowLibrary(config.flows.dir)
    try:
        flow = library.get(spec)
    except FlowLoadError as exc:
        print(f"sipacd flows: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sipacd-simulate-") as tmp:
        try:
            run = run_flow(flow, parse_digits(args.digits), caller=args.caller, called=called,
                           vars=variables, language=args.language
                           or getattr(route, "language", None) or config.flows.language,
                           now=start, open=args.force_open,
                           schedules=schedules, route_schedule=getattr(route, "schedule", None),
                           queues=_every_queue(plan, config), known_queues=config.queues,
                           flows=library.get, record_dir=tmp, raise_errors=False)
        except (FlowMistake, FlowStalled) as exc:
            print(f"sipacd flows: {spec}: {exc}", file=sys.stderr)
            return 1
    print(str(run))
    print(_summary(run))
    return 1 if run.ended == "raised" else 0


def _route(config, target: str):
    """An exact route number first, then a flow file of that name, then
    pattern routes: a catch-all pattern must not hide the flows."""
    exact = next((r for r in config.routes if r.match == "exact" and r.number == target), None)
    if exact is not None:
        return exact
    if (Path(config.flows.dir) / f"{target.partition(':')[0]}.py").is_file():
        return None
    return config.route_for(target)


def _summary(run: FlowRun) -> str:
    parts = [f"ended: {run.ended} after {run.duration:g}s"]
    if run.surveys:
        parts.append("survey " + ", ".join(f"{s['score']}/{s['scale']}" for s in run.surveys))
    if run.voicemails:
        parts.append(f"{len(run.voicemails)} voicemail")
    if run.callbacks:
        parts.append("callback to " + ", ".join(c["number"] for c in run.callbacks))
    return "; ".join(parts)


def _queue_plan(text: str) -> QueueScript:
    result, _, wait = text.partition(":")
    if result not in ("answered", "timeout", "empty", "full", "callback"):
        raise ValueError(f"--queue: unknown result {result!r} "
                         "(answered, timeout, empty, full, callback)")
    return QueueScript(result, wait=float(wait) if wait else (20.0 if result == "answered" else 0.0))


def _every_queue(plan: QueueScript, config) -> dict[str, QueueScript]:
    return {name: QueueScript(plan.result, plan.wait, exit_key=getattr(q, "exit_key", None))
            for name, q in config.queues.items()}


def _schedules(config) -> dict[str, Schedule]:
    # The config may hold schedules as Schedule objects or as their tables.
    result = {}
    for name, value in (getattr(config, "schedules", None) or {}).items():
        if isinstance(value, Schedule):
            result[name] = value
            continue
        table = value.model_dump() if hasattr(value, "model_dump") else value
        try:
            result[name] = from_dict(table)
        except ScheduleError as exc:
            raise ValueError(f"schedules.{name}.{exc.key}: {exc.message}") from None
    return result


def _load_config(path: str | None) -> Any:
    from sipagent.config.load import ConfigError, load_config, load_default_config

    try:
        return load_config(path) if path else load_default_config()
    except ConfigError as exc:
        print(f"sipacd: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
