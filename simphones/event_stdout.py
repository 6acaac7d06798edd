"""Stdout as a clean channel of JSON events, for the SIP helper processes.

pjlib prints to file descriptor 1 before any LogWriter is installed, and C
code may printf at any time; either would corrupt a line-per-event stream.
So the events get a private copy of fd 1, and fd 1 itself goes to stderr.
"""
from __future__ import annotations

import os
from typing import TextIO


def claim_stdout() -> TextIO:
    """A line-buffered stream on the original stdout; fd 1 now points at stderr."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)
