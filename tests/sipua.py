"""Pytest side of a scriptable SIP user agent (simphones/phone.py).

Each UA is a separate process with its own pjsua2 library, driven by JSON
lines. A reader thread turns its stdout into events; tests wait for events by
pattern, in any order, so a test never depends on the interleaving of e.g.
"media" and "state" events.

    with UA(ports(), log_dir=workdir) as b:
        b.request("auto_answer", user="*", tone=880)
        ...
        ev = b.wait_event({"ev": "incoming"}, timeout=5)
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from procs import quit_then_stop

REPO = Path(__file__).resolve().parent.parent

Predicate = Callable[[dict], bool] | dict


def _matches(pred: Predicate, ev: dict) -> bool:
    if callable(pred):
        return bool(pred(ev))
    return all(ev.get(k) == v for k, v in pred.items())


class UAError(AssertionError):
    """A UA did not do what the test expected (timeout, error reply, exit)."""


class UA:
    def __init__(self, port: int, *, ip: str = "127.0.0.1", log_dir: str | os.PathLike | None = None,
                 name: str | None = None, log_level: int = 3, python: str = sys.executable,
                 start_timeout: float | None = 10.0):
        """Start the process; waits for its "ready" unless start_timeout is
        None (then call wait_ready(), e.g. after starting several UAs)."""
        self.port = port
        self.ip = ip
        self.name = name or f"ua{port}"
        self.log_path = Path(log_dir or ".") / f"{self.name}.log"
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._pending: list[dict] = []      # not yet returned by wait_event
        self.history: deque[dict] = deque(maxlen=500)
        self._eof = False
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [python, "-m", "simphones.phone", "--port", str(port), "--ip", ip,
             "--log-level", str(log_level)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            cwd=REPO, env=env, bufsize=0)
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-events", daemon=True)
        self._reader.start()
        if start_timeout is not None:
            self.wait_ready(start_timeout)

    def wait_ready(self, timeout: float = 10.0) -> "UA":
        try:
            self.wait_event({"ev": "ready"}, timeout=timeout)
        except BaseException:
            self.close()
            raise
        return self

    # --- plumbing ------------------------------------------------------------
    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "raw", "line": line}
            with self._cond:
                self._pending.append(ev)
                self.history.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def send(self, cmd: str, **kw: Any) -> int:
        """Send a command without waiting; returns its id."""
        cmd_id = kw.pop("id", None) or next(self._ids)
        msg = {"cmd": cmd, "id": cmd_id, **kw}
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise UAError(f"{self.name}: cannot send {msg}: process gone ({e})\n{self._context()}")
        return cmd_id

    def request(self, cmd: str, timeout: float = 5.0, **kw: Any) -> dict:
        """Send a command and wait for its ok; an error reply raises."""
        cmd_id = self.send(cmd, **kw)
        ev = self.wait_event(lambda e: e.get("id") == cmd_id and e.get("ev") in ("ok", "error"),
                             timeout)
        if ev["ev"] == "error":
            raise UAError(f"{self.name}: {cmd} {kw} failed: {ev.get('msg')}")
        return ev

    def wait_event(self, pred: Predicate, timeout: float = 10.0) -> dict:
        """First not-yet-consumed event matching `pred` (a dict of required
        key/values, or a callable). Earlier non-matching events stay
        available to later waits."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self._pending):
                    if _matches(pred, ev):
                        return self._pending.pop(i)
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    why = "process exited" if self._eof else f"timeout after {timeout}s"
                    raise UAError(f"{self.name}: no event matching {pred!r} ({why})\n{self._context()}")
                self._cond.wait(left)

    def events(self, pred: Predicate | None = None) -> list[dict]:
        """Everything seen so far (consumed or not), optionally filtered."""
        with self._cond:
            return [e for e in self.history if pred is None or _matches(pred, e)]

    def _context(self) -> str:
        with self._cond:
            recent = list(self.history)[-25:]
        lines = "\n".join(f"  {json.dumps(e)}" for e in recent)
        tail = ""
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            tail = "\n".join(f"  | {line}" for line in tail)
        except OSError:
            pass
        return f"recent events:\n{lines}\nlog tail ({self.log_path}):\n{tail}"

    # --- conveniences ----------------------------------------------------------
    def uri(self, user: str = "ua") -> str:
        return f"sip:{user}@{self.ip}:{self.port}"

    def wait_state(self, call: str, state: str, timeout: float = 10.0, **kw: Any) -> dict:
        return self.wait_event({"ev": "state", "call": call, "state": state, **kw}, timeout)

    # --- lifetime --------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, timeout: float = 8.0) -> int | None:
        """quit, then SIGTERM, then SIGKILL — always by our child's PID."""
        quit_then_stop(self.proc, timeout=timeout)
        self._reader.join(2.0)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode

    def begin_close(self) -> None:
        """Ask to quit without waiting, so several UAs shut down (about
        0.5 s of pjsua media teardown each) in parallel before close()."""
        if self.alive:
            try:
                self.send("quit")
            except UAError:
                pass

    def __enter__(self) -> "UA":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
