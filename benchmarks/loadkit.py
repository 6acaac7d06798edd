"""The call centre the SIP benchmarks run against: the engine process on a
generated configuration and the fleet process (``benchmarks/fleet.py``)
of callers and agents, started together and stopped by PID.

``benchmarks/load.py`` measures KPIs against Erlang A on it and
``benchmarks/soak.py`` looks for what it leaks; both take it from here.

* The engine: ``python -m sipagent run -c FILE``: one queue ``support``
  (longest idle, the wrap-up of :class:`Params`), ``agents`` agents
  ``a0..`` sharing the fleet's SIP port, and a one-line flow (answer, then
  enqueue at once) so that the queue wait is all there is.  A supervisor
  token opens ``/api/agents`` and ``/api/queues`` to the benchmark.
* The fleet: Poisson callers with exponential patience, agents who answer
  after a fixed ring, talk an exponential time and hang up; real SIP and
  RTP (PCMU) over 127.0.0.1.
"""
from __future__ import annotations

import json
import math
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests"))      # the suite's port locks and process helpers

import procstat  # noqa: E402
import scrape  # noqa: E402
from engine_proc import Engine  # noqa: E402
from portlocks import PortAllocator  # noqa: E402
from procs import stop_process  # noqa: E402

FLEET = Path(__file__).resolve().parent / "fleet.py"
QUEUE = "support"
FLOW = '''"""Load benchmark: answer and queue at once, so the queue wait is all there is."""


async def flow(call):
    await call.answer()
    await call.enqueue("support")
'''


@dataclass
class Params:
    agents: int = 200
    rate: float = 50.0           # new calls per second
    talk: float = 4.0            # mean talk, s (exponential)
    ring: float = 0.3            # agents answer after this, s
    wrap_up: float = 0.5         # the queue's wrap-up, s
    patience: float = 8.0        # mean caller patience, s (exponential)
    duration: float = 180.0      # measured window, s
    warmup: float = 30.0         # not measured, s
    drain: float = 30.0          # at most, after arrivals stop, s
    thresholds: tuple[float, ...] = (2.0, 20.0)
    short_abandon: float = 5.0
    record: int = -1             # callers recorded with their agents; -1: every one
    seed: int = 1
    # The fleet stands in for phones and a PBX on other machines, yet shares
    # this machine's two cores with the engine: at equal priority the OS
    # preempted the engine's loop in the middle of a dispatch (54 of 56
    # dials over 1.5 ms had an involuntary context switch; p99 2.5-3.2 ms).
    # A niced fleet yields to the engine when both want a core.
    fleet_nice: int = 5
    # The engine's loop thread before its own media threads and the fleet
    # (sip.loop_priority; sipagent/engine/loop_priority.py says why).
    loop_priority: str = "realtime"

    @property
    def service(self) -> float:
        """Mean agent time per offer, ring included (see load.py's doc)."""
        k = math.exp(-self.ring / self.patience)
        return self.patience * (1 - k) + k * (self.talk + self.wrap_up)


# -- processes --------------------------------------------------------------------------

_ports: PortAllocator | None = None


def free_port() -> int:
    """A port free for UDP and TCP, reserved with the test suite's lock files
    (tests/portlocks.py), so runs beside other engineers' tests never
    collide; tests pass their own ports instead."""
    global _ports
    if _ports is None:
        _ports = PortAllocator()
    return _ports.get()


def release_ports() -> None:
    if _ports is not None:
        _ports.release_all()


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    out["PYTHONUNBUFFERED"] = "1"
    return out


def engine_config(p: Params, sip_port: int, http_port: int, agent_port: int, work: Path,
                  prompts: Path) -> dict:
    return {
        # Each bridged call is two legs; keep headroom under the 1000-leg ceiling.
        "sip": {"listen": "127.0.0.1", "port": sip_port, "max_calls": 1000,
                "loop_priority": p.loop_priority},
        "http": {"listen": "127.0.0.1", "port": http_port,
                 "tokens": {"bench": {"role": "supervisor", "token": secrets.token_hex(16)}}},
        "data": {"dir": str(work / "data")},
        "flows": {"dir": str(work / "flows"), "prompts_dir": str(prompts)},
        "log": {"level": "warning", "format": "json", "pjsip_level": 1},
        "routes": [{"number": "100", "flow": "load", "queue": QUEUE}],
        "queues": {QUEUE: {"strategy": "longest_idle", "ring_timeout": max(5.0, 10 * p.ring),
                           "wrap_up": float(p.wrap_up),
                           "service_levels": [float(t) for t in p.thresholds],
                           "short_abandon": float(p.short_abandon)}},
        "agents": {f"a{i}": {"uri": f"sip:a{i}@127.0.0.1:{agent_port}", "queues": [QUEUE]}
                   for i in range(p.agents)},
    }


class EngineProc(Engine):
    """The engine under load, and what it costs."""

    def __init__(self, config: dict, work: Path):
        # SIPACD_LOAD_ENGINE_WRAPPER="gdb -batch -ex run -ex bt --args" for a
        # backtrace when the engine crashes under load.
        super().__init__(work, config, start_timeout=60.0,
                         command_prefix=os.environ.get("SIPACD_LOAD_ENGINE_WRAPPER", "").split())

    def metrics(self) -> dict[tuple, float]:
        """One scrape of /metrics (see scrape.py)."""
        return scrape.parse(self.get("/metrics"))

    def scrape(self, attempts: int = 3) -> dict[tuple, float] | None:
        """/metrics, or None once the engine is dead or keeps not answering
        (a loop stalled for a moment may miss one scrape)."""
        for _ in range(attempts):
            try:
                return self.metrics()
            except OSError:
                if self.proc.poll() is not None:
                    return None
                time.sleep(1.0)
        return None

    def api(self, path: str) -> dict:
        """A JSON API read with the benchmark's supervisor token."""
        token = self.config["http"]["tokens"]["bench"]["token"]
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def failure(self) -> str:
        """Why a scrape failed: how the engine exited, or that it is mute."""
        try:
            self.proc.wait(5)
            return f"exit {self.proc.returncode}"
        except subprocess.TimeoutExpired:
            return "alive but not answering /metrics"

    def cpu_seconds(self) -> float:
        return procstat.cpu_seconds(self.proc.pid)

    def rss_mb(self) -> float:
        return procstat.rss_mb(self.proc.pid)

    def stop(self) -> None:
        super().stop(15.0)


class FleetProc:
    def __init__(self, p: Params, port: int, target: str, work: Path, rtp_port: int):
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.last_stats: dict = {}
        self.summary: dict | None = None
        self._log = open(work / "fleet.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(FLEET), "--port", str(port), "--target", target,
             "--rate", str(p.rate), "--patience", str(p.patience), "--ring", str(p.ring),
             "--talk", str(p.talk), "--wrap-up", str(p.wrap_up), "--seed", str(p.seed),
             "--rtp-port", str(rtp_port), "--workdir", str(work)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env(),
            cwd=work, preexec_fn=lambda: os.nice(p.fleet_nice))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ev = self.events.get(timeout=30)
        if ev.get("ev") != "ready":
            self.stop()
            raise RuntimeError(f"fleet did not start: {ev}")

    def _read(self) -> None:
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            if ev.get("ev") == "stats":
                self.last_stats = ev
            elif ev.get("ev") == "summary":
                self.summary = ev
            else:
                self.events.put(ev)
        self.events.put({"ev": "eof"})

    def send(self, cmd: str, **kw) -> None:
        try:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def check(self) -> None:
        """Raise, with its last log lines, if the fleet has exited."""
        if self.proc.poll() is not None:
            tail = Path(self._log.name).read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"the fleet exited ({self.proc.returncode}) during the "
                               "run:\n" + "\n".join(tail))

    def stop(self, timeout: float = 20.0) -> dict | None:
        self.send("quit")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.proc, term_wait=5.0)
        self._reader.join(5.0)
        self._log.close()
        return self.summary


# -- a run ------------------------------------------------------------------------------

@dataclass
class Centre:
    work: Path
    engine: EngineProc | None = None
    fleet: FleetProc | None = None    # None once the run has stopped it


@contextmanager
def centre(p: Params, *, ports: dict | None = None, workdir: Path | None = None,
           say=None, prefix: str = "sipacd-load-",
           before_fleet: Callable[[EngineProc], None] | None = None,
           add_config: Callable[[dict], None] | None = None) -> Iterator[Centre]:
    """The engine and the fleet (arrivals on from the start) in a work
    directory; both stopped, fleet first, and the ports released on the way
    out.  ``ports``: {"sip", "http", "fleet"} (tests pass theirs); a work
    directory made here is removed unless SIPACD_LOAD_KEEP=1;
    ``before_fleet(engine)`` sees the engine up and still without a call;
    ``add_config(config)`` may add to the engine's configuration (another
    queue, route or agent) before the engine starts."""
    say = say or (lambda msg: None)
    ports = ports or {k: free_port() for k in ("sip", "http", "fleet")}
    own_work = workdir is None
    work = Path(workdir or tempfile.mkdtemp(prefix=prefix))
    (work / "flows").mkdir(parents=True, exist_ok=True)
    (work / "flows" / "load.py").write_text(FLOW)
    # Prompts are rendered once (espeak-ng) and shared by every run.
    prompts = Path(tempfile.gettempdir()) / "sipacd-load-prompts"
    config = engine_config(p, ports["sip"], ports["http"], ports["fleet"], work, prompts)
    if add_config is not None:
        add_config(config)
    c = Centre(work)
    try:
        say("starting the engine")
        c.engine = EngineProc(config, work)
        if before_fleet is not None:
            before_fleet(c.engine)
        say("starting the fleet")
        # Fleet RTP from 6000 up, the engine's from 4000 (pjsua skips busy ports).
        c.fleet = FleetProc(p, ports["fleet"], f"sip:100@127.0.0.1:{ports['sip']}", work, 6000)
        yield c
    finally:
        if c.fleet is not None:
            c.fleet.stop()
        if c.engine is not None:
            c.engine.stop()
        release_ports()
        if own_work and os.environ.get("SIPACD_LOAD_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


def hold(engine: EngineProc, seconds: float, phase: str) -> None:
    """Let the traffic run ``seconds``; a dead engine raises at once, with
    its last log lines."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        if engine.proc.poll() is not None:
            raise RuntimeError(
                f"the engine died {time.monotonic() - t0:.0f} s into the {phase} (exit "
                f"{engine.proc.returncode}; -11 is SIGSEGV):\n" + engine.log_tail(5))
