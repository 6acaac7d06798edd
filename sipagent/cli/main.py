"""``sipacd``: the command line of the engine."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog


def _passthrough(name: str):
    """Subcommands with parsers of their own; they get every argument as is
    (argparse's REMAINDER would refuse a leading --option)."""
    if name == "erlang":
        from acdcore.erlang_cli import main
    elif name == "report":
        from sipagent.cli.report import main
    elif name == "flows":
        from sipagent.cli.flows import main
    elif name == "fax":
        from sipagent.cli.fax import main
    elif name == "passwd":
        from sipagent.cli.passwd import main
    else:
        return None
    return main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and (own := _passthrough(argv[0])) is not None:
        return own(argv[1:])
    parser = argparse.ArgumentParser(prog="sipacd", description="SIP call-center engine")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the engine with a config file")
    run.add_argument("-c", "--config", required=True, help="TOML config file")

    check = sub.add_parser("check", help="validate a config file and its flows")
    check.add_argument("-c", "--config", required=True)

    demo = sub.add_parser("demo", help="the engine on the embedded config, with simulated "
                                       "callers and agents")
    demo.add_argument("--seconds", type=float, default=0,
                      help="stop after this long (default: until Ctrl-C)")
    demo.add_argument("--rate", type=float, default=0.5, help="new calls per second")

    # These hand their arguments to their own parsers (and their own --help).
    for name, text in (("erlang", "staffing: agents needed for a service level"),
                       ("report", "KPIs per queue and interval from the event log"),
                       ("flows", "check flow files, or simulate a flow with the test kit"),
                       ("fax", "fax documents, two-call jobs and the fax log"),
                       ("passwd", "a console password's hash for [users.<name>]")):
        passthrough = sub.add_parser(name, help=text, add_help=False)
        passthrough.add_argument("args", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config)
    if args.command == "run":
        from sipagent.config.load import load_or_complain
        config = load_or_complain(args.config)
        if config is None:
            return 2
        return asyncio.run(serve(config))
    if args.command == "demo":
        from sipagent.cli.demo import run_demo
        return run_demo(seconds=args.seconds, rate=args.rate)
    return 2


def _check(path: str) -> int:
    from sipagent.config.load import load_or_complain
    config = load_or_complain(path)
    if config is None:
        return 2
    from sipagent.calls.flow_library import FlowLibrary
    library = FlowLibrary(config.flows.dir)
    failed = 0
    specs = {r.flow for r in config.routes} | {r.fallback for r in config.routes if r.fallback} \
        | {r.fax_detect for r in config.routes if r.fax_detect}
    for spec in sorted(specs):
        problem = library.check(spec)
        if problem:
            failed += 1
            print(f"sipacd: {problem}", file=sys.stderr)
    if failed:
        return 2
    print(f"{path}: OK ({len(config.routes)} routes, {len(config.queues)} queues, "
          f"{len(config.agents)} agents)")
    return 0


async def serve(config, *, announce=print) -> int:
    """Run until SIGINT/SIGTERM; exit code 0 after a clean shutdown."""
    from sipagent.engine import Engine
    from sipagent.api.server import start_http
    from sipagent.logs import configure_logging

    configure_logging(config.log.level, config.log.format)
    log = structlog.get_logger("sipacd")
    engine = Engine(config)
    try:
        await engine.start()
    except OSError as exc:
        log.error("engine failed to start", error=str(exc))
        return 1
    runner = None
    try:
        runner = await start_http(engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        url = f"http://{config.http.listen}:{config.http.port}/metrics"
        log.info("serving", metrics=url, sip=f"sip:{config.sip.listen}:{config.sip.port}")
        announce(f"sipacd: SIP on {config.sip.listen}:{config.sip.port}, metrics at {url}",
                 flush=True)
        await stop.wait()
        log.info("shutdown requested")
    except OSError as exc:
        log.error("http server failed to start", error=str(exc))
        return 1
    finally:
        if runner is not None:
            await runner.cleanup()
        await engine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
