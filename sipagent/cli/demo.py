"""``sipacd demo``: the engine on its embedded config, with simulated people.

The engine runs in this process.  The callers and the three agents of the
default config are real SIP user agents in other processes (simphones.phone),
so what a newcomer watches is genuine SIP and RTP on 127.0.0.1: calls
answered by the IVR, a key pressed, callers queued with music, agents rung,
bridged, hung up.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys

import structlog

# Simulated people: agents answer after a short ring and talk a while;
# callers press 1 after the greeting starts and give up after their patience.
AGENT_BEHAVIOUR = {"alice": (1.0, 7.0, 660), "bob": (1.5, 9.0, 770), "carol": (2.0, 11.0, 880)}
CALLER_PORT = 5071


class UaProcess:
    """One simulated phone (simphones.phone), driven over its stdin/stdout JSON lines."""

    def __init__(self, name: str, port: int, on_event):
        self.name, self.port, self._on_event = name, port, on_event
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simphones.phone", "--port", str(self.port),
            "--log-level", "1", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(ready))
        await asyncio.wait_for(ready, 20)

    async def _read(self, ready) -> None:
        async for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            if ev.get("ev") == "ready" and not ready.done():
                ready.set_result(True)
            elif ev.get("ev") == "fatal" and not ready.done():
                ready.set_exception(RuntimeError(f"{self.name}: {ev.get('msg')}"))
            self._on_event(self.name, ev)

    def send(self, cmd: str, **kw) -> None:
        if self.proc and self.proc.stdin and not self.proc.stdin.is_closing():
            self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.send("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 8)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def run_demo(*, seconds: float = 0, rate: float = 0.5) -> int:
    from sipagent.config.load import load_default_config

    config = load_default_config()
    return asyncio.run(_demo(config, seconds, rate))


async def _demo(config, seconds: float, rate: float) -> int:
    from sipagent.engine import Engine
    from sipagent.api.server import start_http
    from sipagent.logs import configure_logging

    configure_logging(config.log.level, "console" if sys.stderr.isatty() else "json")
    say = structlog.get_logger("demo").info
    engine = Engine(config)
    await engine.start()
    runner = await start_http(engine)
    metrics_url = f"http://{config.http.listen}:{config.http.port}/metrics"
    print(f"sipacd demo: engine on sip:100@{config.sip.listen}:{config.sip.port}, "
          f"metrics at {metrics_url}, data in {config.data.dir}; Ctrl-C stops", flush=True)
    if "demo" in config.users:
        print(f"sipacd demo: console at http://{config.http.listen}:{config.http.port}/ "
              f"(log in as demo, password demo)", flush=True)

    def on_event(who: str, ev: dict) -> None:
        kind = ev.get("ev")
        if kind == "incoming":
            say("agent phone rings", agent=who, caller=ev.get("headers", {}).get("X-Sipacd-Caller"))
        elif kind == "state" and ev.get("state") in ("CONFIRMED", "DISCONNECTED"):
            say(f"{who} call {ev['state'].lower()}", call=ev.get("call"), code=ev.get("code"))

    people = [UaProcess(agent, int(config.agents[agent].uri.rsplit(":", 1)[1]), on_event)
              for agent in AGENT_BEHAVIOUR if agent in config.agents]
    callers = UaProcess("callers", CALLER_PORT, on_event)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.gather(*(p.start() for p in (*people, callers)))
        for p in people:
            after, talk, tone = AGENT_BEHAVIOUR[p.name]
            p.send("auto_answer", user="*", after=after, code=200, tone=tone, hangup_after=talk)
        tasks = [asyncio.create_task(_place_calls(callers, config, rate, stop)),
                 asyncio.create_task(_report(engine, say, stop))]
        if seconds:
            loop.call_later(seconds, stop.set)
        await stop.wait()
        for t in tasks:
            t.cancel()
    finally:
        # The engine first: callers it hangs up count as "shutdown" exits,
        # where callers quitting first would count as abandons.
        await runner.cleanup()
        await engine.stop()
        await asyncio.gather(*(p.stop() for p in (*people, callers)), return_exceptions=True)
    _print_totals(engine)
    return 0


async def _place_calls(callers: UaProcess, config, rate: float, stop: asyncio.Event) -> None:
    rng = random.Random(os.getpid())
    target = f"sip:100@{config.sip.listen}:{config.sip.port}"
    n = 0
    while not stop.is_set():
        n += 1
        call = f"caller{n}"
        patience = rng.uniform(10, 40)
        callers.send("call", call=call, to=target, from_user=f"555{n:04d}", tone=440,
                     hangup_after=patience)
        asyncio.get_running_loop().call_later(
            2.0, lambda c=call: callers.send("dtmf", call=c, digits="1", method="rfc2833"))
        await asyncio.sleep(rng.expovariate(rate))


async def _report(engine, say, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(5)
        say("queue status", **_totals(engine))


def _totals(engine) -> dict:
    m = engine.metrics
    snap = engine.queues.snapshot() if engine.queues else {"waiting": {}, "agents": {}}
    return {
        "offered": int(sum(s.value for s in _samples(m.offered))),
        "answered": int(sum(s.value for s in _samples(m.answered))),
        "abandoned": int(sum(s.value for s in _samples(m.abandoned))),
        "waiting": sum(snap["waiting"].values()),
        "active_legs": len(engine.legs),
    }


def _samples(counter):
    return [s for fam in counter.collect() for s in fam.samples if s.name.endswith("_total")]


def _print_totals(engine) -> None:
    t = _totals(engine)
    print(f"sipacd demo: {t['offered']} calls queued, {t['answered']} answered by agents, "
          f"{t['abandoned']} abandoned, the rest still waiting at the stop", flush=True)
