"""Structured logging for the engine, and pjsip's own log routed into it.

JSON lines in production (one object a line, for log shippers), console
rendering on a terminal.  Lines about a call carry ``call_id`` because the
engine binds it on every logger it hands to call-related code.
"""
from __future__ import annotations

import logging
import sys

import structlog

_PJ_LEVELS = {0: "error", 1: "error", 2: "warning", 3: "info", 4: "debug", 5: "debug", 6: "debug"}


def configure_logging(level: str = "info", fmt: str = "auto", stream=None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if fmt == "console"
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def pjsip_log_writer():
    """A pjsua2 LogWriter that forwards pjsip's lines to structlog.

    Built lazily so that importing this module does not need pjsua2.  The
    caller must keep the returned object alive for the library's lifetime:
    pjsua2 holds only a raw pointer to it.
    """
    import pjsua2 as pj

    log = structlog.get_logger("pjsip")

    class PjsipLogWriter(pj.LogWriter):
        def write(self, entry):
            try:
                msg = entry.msg.rstrip()
                getattr(log, _PJ_LEVELS.get(entry.level, "debug"))(
                    msg, sender=entry.senderName.strip(), pj_level=entry.level)
            except Exception:  # pjsua2 swallows callback exceptions; never lose the line
                print(entry.msg, file=sys.stderr)

    return PjsipLogWriter()
