"""``sipacd fax``: the fax document library, two-call jobs and the fax log,
on the data folder of a config file.

::

    sipacd fax -c sipacd.toml docs list
    sipacd fax -c sipacd.toml docs add 101 prices.pdf --title "Price list" [--pin 4711]
    sipacd fax -c sipacd.toml docs replace 101 prices-2027.pdf [--title T]
    sipacd fax -c sipacd.toml docs remove 101
    sipacd fax -c sipacd.toml docs pin 101 (4711 | - | --clear)
    sipacd fax -c sipacd.toml jobs [--state queued] [--limit N]
    sipacd fax -c sipacd.toml jobs cancel JOB_ID
    sipacd fax -c sipacd.toml job JOB_ID
    sipacd fax -c sipacd.toml log [--direction send|receive] [--limit N]

It is safe beside a running engine: both go through the same store, whose
SQLite transactions and folder lock keep either from undoing the other's
work.  A PIN given as ``-`` is read from standard input, so it stays out of
the shell history and the process list.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import datetime
from typing import TextIO

from sipagent.fax.store import (JOB_STATES, FaxAccessDenied, FaxStore, FaxStoreError,
                                NoSuchDocument, NoSuchFax, NoSuchJob)
from sipagent.store.database import StorePlace
from sipagent.store.migrations import SchemaTooNew
from sipagent.store.postgres import redacted

USER_ERRORS = (FaxStoreError, NoSuchDocument, NoSuchJob, NoSuchFax, FaxAccessDenied)


def store_place(config) -> StorePlace:
    """Where the config keeps its stores: its data folder, and its
    PostgreSQL database when ``[data] database`` names one."""
    place = getattr(config.data, "place", None)
    if place is not None:
        return place
    return StorePlace(config.data.dir, getattr(config.data, "database", None))


def _parser() -> argparse.ArgumentParser:
    # -c is accepted before the subcommand and after it (``fax docs list -c
    # x.toml``); SUPPRESS keeps a leaf's absent -c from hiding the top one.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("-c", "--config", default=argparse.SUPPRESS, help="TOML config file")
    parser = argparse.ArgumentParser(prog="sipacd fax", parents=[config],
                                     description="fax documents, two-call jobs and the fax log")
    sub = parser.add_subparsers(dest="command", required=True)

    docs = sub.add_parser("docs", help="the document library").add_subparsers(
        dest="action", required=True)
    docs.add_parser("list", parents=[config], help="every document")
    add = docs.add_parser("add", parents=[config], help="add a PDF, PostScript or TIFF file")
    add.add_argument("number", help="the number callers key in (1 to 10 digits)")
    add.add_argument("file")
    add.add_argument("--title", default="")
    add.add_argument("--pin", help="protect it with this PIN (4 to 12 digits; - reads stdin)")
    replace = docs.add_parser("replace", parents=[config], help="new content, same number and PIN")
    replace.add_argument("number")
    replace.add_argument("file")
    replace.add_argument("--title", help="a new title (default: keep it)")
    remove = docs.add_parser("remove", parents=[config], help="delete a document")
    remove.add_argument("number")
    pin = docs.add_parser("pin", parents=[config], help="set or clear a document's PIN")
    pin.add_argument("number")
    which = pin.add_mutually_exclusive_group(required=True)
    which.add_argument("pin", nargs="?", help="the new PIN (- reads stdin)")
    which.add_argument("--clear", action="store_true", help="make the document public")

    jobs = sub.add_parser("jobs", parents=[config], help="two-call jobs, newest first")
    jobs.add_argument("--state", choices=JOB_STATES)
    jobs.add_argument("--limit", type=_positive, default=100)
    cancel = jobs.add_subparsers(dest="action").add_parser(
        "cancel", parents=[config], help="cancel a queued job")
    cancel.add_argument("job_id")
    job = sub.add_parser("job", parents=[config], help="one job in full")
    job.add_argument("job_id")

    log = sub.add_parser("log", parents=[config], help="faxes sent and received, newest first")
    log.add_argument("--direction", choices=("send", "receive"))
    log.add_argument("--limit", type=_positive, default=50)
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:        # from a wrapping CLI's REMAINDER
        argv = argv[1:]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:     # usage error (2) or --help (0), already printed
        return int(exc.code or 0)
    if not getattr(args, "config", None):
        return _fail("-c/--config is required (the config whose data folder to use)")
    from sipagent.config.load import load_or_complain

    config = load_or_complain(args.config)
    if config is None:
        return 2
    place = store_place(config)
    where = redacted(place.database) if place.database else place.dir
    try:
        store = FaxStore(place, max_pages=config.fax.max_pages, paper=config.fax.paper)
    except (OSError, sqlite3.Error, SchemaTooNew) as exc:
        return _fail(f"cannot open the fax store in {where}: {exc}")
    try:
        _run(store, args, out)
    except USER_ERRORS as exc:
        return _fail(str(exc))
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    return 0


def _run(store: FaxStore, args: argparse.Namespace, out: TextIO) -> None:
    command, action = args.command, getattr(args, "action", None)
    if command == "docs" and action == "list":
        _table(out, ("NUMBER", "TITLE", "PAGES", "PROTECTED"),
               [(d.number, d.title, d.pages, "yes" if d.protected else "no")
                for d in store.documents()])
    elif command == "docs" and action == "add":
        doc = store.add_document(args.number, args.file, title=args.title,
                                 pin=_read_pin(args.pin))
        print(f"document {doc.number} added: {_pages(doc.pages)}"
              f"{', protected by a PIN' if doc.protected else ''}", file=out)
    elif command == "docs" and action == "replace":
        doc = store.replace_document(args.number, args.file, title=args.title)
        print(f"document {doc.number} replaced: {_pages(doc.pages)}", file=out)
    elif command == "docs" and action == "remove":
        store.remove_document(args.number)
        print(f"document {args.number} removed", file=out)
    elif command == "docs" and action == "pin":
        doc = store.set_document_pin(args.number, None if args.clear else _read_pin(args.pin))
        print(f"document {doc.number}: {'PIN set' if doc.protected else 'public now'}",
              file=out)
    elif command == "jobs" and action == "cancel":
        job = store.cancel_job(args.job_id)
        print(f"job {job.id} cancelled", file=out)
    elif command == "jobs":
        _table(out, ("ID", "STATE", "NUMBER", "DOCUMENTS", "ATTEMPTS", "PAGES", "NEXT ATTEMPT",
                     "LAST STATUS"),
               [(j.id, j.state, j.number, ",".join(j.documents), j.attempts,
                 f"{j.pages_confirmed}/{j.pages_total}", _time(j.next_attempt), j.last_status)
                for j in store.jobs(args.state, limit=args.limit)])
    elif command == "job":
        j = store.job(args.job_id)
        for key, value in (("id", j.id), ("number", j.number),
                           ("documents", ", ".join(j.documents)), ("state", j.state),
                           ("attempts", j.attempts),
                           ("pages", f"{j.pages_confirmed} of {j.pages_total} confirmed"),
                           ("next attempt", _time(j.next_attempt)),
                           ("last status", j.last_status or "-"), ("call id", j.call_id or "-"),
                           ("created", _time(j.created)), ("updated", _time(j.updated))):
            print(f"{key + ':':14}{value}", file=out)
    elif command == "log":
        _table(out, ("ID", "DIRECTION", "RESULT", "PAGES", "REMOTE", "STARTED", "SECONDS"),
               [(f.id, f.direction, "ok" if f.ok else f"failed: {f.status_text}", f.pages,
                 f.remote, _time(f.started), f"{f.seconds:.0f}")
                for f in store.faxes(args.direction, limit=args.limit)])


def _read_pin(pin: str | None) -> str | None:
    if pin == "-":
        return sys.stdin.readline().strip()
    return pin


def _table(out: TextIO, header: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        print("(none)", file=out)
        return
    cells = [header] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def _pages(n: int) -> str:
    return f"{n} page{'s' if n != 1 else ''}"


def _time(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fail(message: str) -> int:
    print(f"sipacd fax: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
