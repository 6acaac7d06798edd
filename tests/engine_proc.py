"""Runs the real engine (`python -m sipagent run -c FILE`) as a child process
for a test, with the test's own ports, and stops it by PID."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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
    `command_prefix` runs it under another program (a debugger, say)."""

    def __init__(self, workdir: Path, config: dict, *, start_timeout: float = 30.0,
                 command_prefix: Sequence[str] = ()):
        self.workdir = Path(workdir)
        self.config = config
        self.sip_port = config["sip"]["port"]
        self.http_port = config["http"]["port"]
        self.config_path = self.workdir / "sipacd.toml"
        self.config_path.write_text(render_toml(config))
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
        return f"127.0.0.1:{self.sip_port}"

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

    def __exit__(self, *exc):
        self.stop()


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
