"""SIPp (Debian: sip-tester) run from tests: one process per scenario, its
stats and errors in the work dir, stopped by PID with timeouts.

Scenarios live in tests/sipp/.  Twin instances (3PCC extended mode) talk
over TCP on 127.0.0.1: a slave listens on its address from the
``-slave_cfg`` file; the master, started last, connects to every peer it
sends to."""
from __future__ import annotations

import csv
import shutil
import subprocess
import time
from pathlib import Path

from procs import stop_process

SCENARIOS = Path(__file__).resolve().parent / "sipp"
HAVE_SIPP = shutil.which("sipp") is not None
NO_SIPP = "sipp (Debian: sip-tester) is not installed"


class Sipp:
    """``sipp REMOTE -sf tests/sipp/SCENARIO`` plus ``args``, in ``workdir``,
    named ``name`` (its files: NAME.out, NAME_stats.csv, NAME_errors.log,
    NAME_messages.log)."""

    def __init__(self, name: str, workdir: Path, scenario: str, remote: str, *args: str,
                 timeout: float = 60.0):
        self.name = name
        self.workdir = Path(workdir)
        self.stats_path = self.workdir / f"{name}_stats.csv"
        self.errors_path = self.workdir / f"{name}_errors.log"
        self.messages_path = self.workdir / f"{name}_messages.log"
        self.log_path = self.workdir / f"{name}_log.log"
        self._out = open(self.workdir / f"{name}.out", "ab")
        self.proc = subprocess.Popen(
            ["sipp", remote, "-sf", str(SCENARIOS / scenario), *args, "-nostdin",
             "-timeout", f"{int(timeout)}s", "-timeout_error",
             "-trace_stat", "-stf", str(self.stats_path), "-fd", "1",
             "-trace_err", "-error_file", str(self.errors_path),
             "-trace_msg", "-message_file", str(self.messages_path),
             "-trace_logs", "-log_file", str(self.log_path)],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stats(self) -> dict[str, str]:
        """The last row of the statistics file (``-h stat`` names the columns)."""
        with open(self.stats_path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        return dict(zip(rows[0], rows[-1]))

    def failing(self) -> bool:
        """Exited with an error, or a call already counted as failed (the
        statistics file is rewritten every second): no use waiting on."""
        if self.proc.poll() not in (None, 0):
            return True
        try:
            return self.stats().get("FailedCall(C)", "0") != "0"
        except (OSError, IndexError):
            return False

    def report(self) -> str:
        """What went wrong, for an assertion message."""
        parts = [f"sipp {self.name}: exit {self.proc.returncode}"]
        for path, n in ((self.errors_path, 3000), (self.log_path, 1000),
                        (self.messages_path, 6000),
                        (self.workdir / f"{self.name}.out", 1500)):
            if path.exists():
                parts.append(f"--- {path.name}:\n" + path.read_text(errors="replace")[-n:])
        return "\n".join(parts)

    def stop(self) -> int | None:
        code = stop_process(self.proc)
        self._out.close()
        return code

    def __enter__(self) -> "Sipp":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def tcp_listening(port: int) -> bool:
    """Something listens on TCP 127.0.0.1:port (read from /proc/net/tcp,
    without connecting: a twin SIPp takes any connection for its peer's)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return True
    return False


def wait_listening(port: int, proc: Sipp, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not tcp_listening(port):
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"twin port {port} never listened\n{proc.report()}")
        time.sleep(0.05)
