"""Runs the real engine (`python -m sipagent run -c FILE`) as a child process
for a test, with the test's own ports, and stops it by PID."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from prometheus_client.parser import text_string_to_metric_families

from procs import stop_process

REPO = Path(__file__).resolve().parent.parent


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def render_toml(doc: dict) -> str:
    """A small TOML writer for test configs (tables, arrays of tables)."""
    out: list[str] = []

    def table(prefix: str, d: dict):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_aot(v)}
        if prefix:
            out.append(f"[{prefix}]")
        out.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        out.append("")
        for k, v in d.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                table(name, v)
            elif _is_aot(v):
                for item in v:
                    out.append(f"[[{name}]]")
                    out.extend(f"{ik} = {toml_value(iv)}" for ik, iv in item.items())
                    out.append("")

    table("", doc)
    return "\n".join(out)


def _is_aot(v) -> bool:
    return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)


class Engine:
    """The engine on `config` (a dict, written as ``workdir/sipacd.toml``);
    `command_prefix` runs it under another program (a debugger, say).

    Leaving the ``with`` block checks the runtime's invariants
    (``GET /api/debug/invariants``) before stopping the engine, and fails
    the test with what is broken.  A test that breaks the engine on purpose
    sets ``check_invariants = False``; one that killed it is not checked
    (a dead engine answers nothing).  ``assert_settled`` is the stricter
    check of an idle engine, for a test that hung up every phone."""

    def __init__(self, workdir: Path, config: dict, *, start_timeout: float = 30.0,
                 command_prefix: Sequence[str] = (), check_invariants: bool = True):
        self.workdir = Path(workdir)
        self.config = config
        self.sip_port = config["sip"]["port"]
        self.sip_host = config["sip"].get("listen", "127.0.0.1")
        self.http_port = config["http"]["port"]
        self.check_invariants = check_invariants
        self.config_path = self.workdir / "sipacd.toml"
        self.config_path.write_text(render_toml(self._with_debug_token(config)))
        self.log_path = self.workdir / "engine.log"
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        # A crashing engine's last lines must be in the log, not in a buffer.
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([*command_prefix, sys.executable, "-m", "sipagent", "run",
                                      "-c", str(self.config_path)], stdout=self._log,
                                     stderr=self._log, cwd=self.workdir, env=env)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"engine did not come up:\n{self.log_tail()}")
                time.sleep(0.2)

    @property
    def uri_base(self) -> str:
        return f"{self.sip_host}:{self.sip_port}"

    def number(self, n: str) -> str:
        return f"sip:{n}@{self.uri_base}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return r.read().decode()

    def metrics_text(self) -> str:
        return self.get("/metrics")

    def metric(self, name: str, **labels) -> float:
        """A sample's value (0.0 when absent, as Prometheus would treat it)."""
        for fam in text_string_to_metric_families(self.metrics_text()):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    def wait_metric(self, name: str, value: float, timeout: float = 10.0, **labels) -> float:
        deadline = time.monotonic() + timeout
        while True:
            got = self.metric(name, **labels)
            if got == value or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def log_events(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL, by our child's PID."""
        code = stop_process(self.proc, term_wait=timeout)
        self._log.close()
        return code

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        # A test already failing keeps its own error; a dead engine answers nothing.
        check = self.check_invariants and exc_type is None and self.proc.poll() is None
        try:
            problems = self.lasting_problems() if check else []
        finally:
            self.stop()
        if problems:
            raise AssertionError("the runtime's invariants do not hold when the test ends:\n  "
                                 + "\n  ".join(problems))

    # -- the runtime's invariants (sipagent/queue/invariants.py) ----------------
    def _with_debug_token(self, config: dict) -> dict:
        """The config as written: with a supervisor token for the invariants
        endpoint when the test configured no admin or supervisor token."""
        tokens = config["http"].get("tokens", {})
        mine = next((t["token"] for t in tokens.values()
                     if t.get("role") in ("admin", "supervisor")), None)
        if mine is not None:
            self._debug_token = mine
            return config
        self._debug_token = secrets.token_hex(16)
        http = {**config["http"], "tokens": {
            **tokens, "invariants-check": {"role": "supervisor", "token": self._debug_token}}}
        return {**config, "http": http}

    def invariants(self, quiet: bool = False) -> dict:
        """The endpoint's answer: ``problems`` and what the runtime holds."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/debug/invariants{'?quiet=1' if quiet else ''}",
            headers={"Authorization": f"Bearer {self._debug_token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def lasting_problems(self, reads: int = 3, pause: float = 0.5) -> list[str]:
        """Broken invariants that are still broken ``reads`` times in a row
        (a single read may catch a hang-up half-way through its loop steps)."""
        problems: list[str] = []
        for n in range(reads):
            try:
                problems = self.invariants()["problems"]
            except urllib.error.HTTPError as exc:
                if exc.code == 503:          # the engine is stopping
                    return []
                return [f"invariants endpoint: HTTP {exc.code} {exc.read()[:200]!r}"]
            except OSError as exc:
                problems = [f"invariants endpoint unreachable: {exc}"]
            if not problems:
                return []
            if n + 1 < reads:
                time.sleep(pause)
        return problems

    def assert_settled(self, timeout: float = 5.0) -> dict:
        """Every phone hung up: within ``timeout`` the engine holds no leg,
        entry, offer, conversation or live recording, and no agent is busy
        or ringing (sipagent/queue/invariants.py, ``quiet``)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.invariants(quiet=True)
            if not answer["problems"]:
                return answer
            if time.monotonic() > deadline:
                raise AssertionError("the engine did not settle within "
                                     f"{timeout:g} s:\n  " + "\n  ".join(answer["problems"])
                                     + f"\n{self.log_tail(20)}")
            time.sleep(0.2)


def base_config(ports, workdir: Path, prompts_dir: Path, **sections) -> dict:
    cfg = {
        "sip": {"listen": "127.0.0.1", "port": ports(), "max_calls": 50},
        "http": {"listen": "127.0.0.1", "port": ports()},
        "data": {"dir": str(workdir / "data")},
        "flows": {"prompts_dir": str(prompts_dir)},
        "log": {"level": "info", "format": "json", "pjsip_level": int(os.environ.get("SIPACD_TEST_PJSIP_LEVEL", "1"))},
        "routes": [{"number": "100", "flow": "welcome", "queue": "support"}],
        "queues": {"support": {"strategy": "longest_idle", "ring_timeout": 10,
                               "service_levels": [20], "short_abandon": 5}},
        "agents": {},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def one_agent_config(ports, workdir: Path, prompts_dir: Path, agent_ua, **sections) -> dict:
    """``base_config`` with one agent, alice, on ``agent_ua``, in queue support."""
    return base_config(ports, workdir, prompts_dir, **sections,
                       agents={"alice": {"uri": agent_ua.uri("alice"), "queues": ["support"]}})


def call_an_agent(engine: Engine, caller, agent_ua, call: str) -> str:
    """``caller`` dials 100, presses 2 in the welcome flow's menu (the queue)
    and ``agent_ua`` (auto-answering) takes the call: both ends confirmed.
    Returns the agent's call name."""
    caller.request("call", call=call, to=engine.number("100"), tone=440)
    caller.wait_state(call, "CONFIRMED")
    time.sleep(1.0)
    caller.request("dtmf", call=call, digits="2", method="rfc2833")
    incoming = agent_ua.wait_event({"ev": "incoming"}, timeout=20)
    agent_ua.wait_state(incoming["call"], "CONFIRMED")
    return incoming["call"]
