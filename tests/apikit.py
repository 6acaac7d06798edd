"""The engine's whole HTTP app (``build_app``) in the test process, on real
parts: a parsed config with tokens of every role, the queue runtime (no SIP
account: nobody is dialled), the event log, the voicemail and fax stores,
each on its own SQLite file.  One mailbox holds one message and the fax
library one document, so routes reach their checks rather than a 404."""
from __future__ import annotations

import asyncio
import io
import textwrap
import wave
from contextlib import ExitStack
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from acdcore.model import AgentConfig, QueueConfig
from faxkit import make_document
from sipagent.api.server import build_app
from sipagent.config.load import parse_config
from sipagent.fax.store import FaxStore
from sipagent.metrics import EngineMetrics
from sipagent.queue.agent_admin import AgentAdmin, spec_of
from sipagent.queue.agents import AgentLine
from sipagent.queue.runtime import QueueRuntime
from sipagent.store.event_stream import EventStream
from sipagent.store.eventlog import EventLog, event_log_path
from sipagent.store.people import PeopleStore, people_path, users_from
from sipagent.store.pin import hash_pin, hash_secret
from sipagent.voicemail.store import Mailbox, VoicemailStore

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
SUPERVISOR = {"Authorization": "Bearer boss-token-0123456789"}
CALLBACK = {"Authorization": "Bearer web-token-0123456789"}
# Console users (sipagent/config/people.py): a cheap scrypt cost keeps tests quick.
PASSWORDS = {"ann": "ann-password-1", "sam": "sam-password-1", "alice": "alice-password-1"}
HASHES = {name: hash_secret(pw, log2_n=10) for name, pw in PASSWORDS.items()}

CONFIG = textwrap.dedent("""
    [http.tokens.ops]
    role = "admin"
    token = "admin-token-0123456789"
    [http.tokens.boss]
    role = "supervisor"
    token = "boss-token-0123456789"
    [http.tokens.alice]
    role = "agent"
    agent = "alice"
    token = "alice-token-0123456789"
    [http.tokens.web]
    role = "callback"
    token = "web-token-0123456789"

    [outbound]
    uri = "sip:{number}@127.0.0.1:9"
    caller_id = "+4930123456"

    [queues.support]
    callback_uri = "sip:{number}@127.0.0.1:9"
    [queues.sales]

    [agents.alice]
    uri = "sip:alice@127.0.0.1:9"
    queues = ["support"]
    auto_login = false

    [users.ann]
    role = "admin"
    password_hash = "{ann}"
    [users.sam]
    role = "supervisor"
    password_hash = "{sam}"
    queues = ["sales"]
    [users.alice]
    role = "agent"
    agent = "alice"
    password_hash = "{alice}"

    [desktop]
    dispositions = ["sale", "no_sale"]
""")
for _name, _hash in HASHES.items():
    CONFIG = CONFIG.replace("{%s}" % _name, _hash)


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * int(rate * seconds))
    return out.getvalue()


class EngineApp:
    """What ``build_app`` reads of the engine.  Built inside a running loop
    (the queue runtime takes it); :meth:`close` releases everything."""

    def __init__(self, tmp: Path, config: str = CONFIG):
        self._closing = ExitStack()
        data = tmp / "data"
        self.config = parse_config(config, source="apikit.toml", base_dir=tmp)
        self.metrics = EngineMetrics()
        self.legs: set = set()
        self.capacity = self.config.sip.max_calls
        self.eventlog = eventlog = EventLog(event_log_path(data))
        self._closing.callback(eventlog.close)
        self.events = EventStream(eventlog, node="apikit")    # GET /api/events...
        self._closing.callback(self.events.close)
        self.live_calls: dict = {}
        self.people = PeopleStore(people_path(data), session_ttl=self.config.auth.session_ttl,
                                  lockout_failures=self.config.auth.lockout_failures,
                                  lockout_seconds=self.config.auth.lockout_seconds)
        self._closing.callback(self.people.close)
        self.people.seed_users(users_from(self.config.users))
        self.people.agents.seed({n: spec_of(n, a) for n, a in self.config.agents.items()})
        cfg = self.config
        self.queues = QueueRuntime(
            [QueueConfig(name=name) for name in cfg.queues],
            [AgentConfig(agent_id=name, queues=dict(a.queues)) for name, a in cfg.agents.items()],
            {name: AgentLine(name, a.uri, a.auto_login, a.wrap_up)
             for name, a in cfg.agents.items()},
            settings=dict(cfg.queues), account_provider=lambda: None, hold_music=lambda q: None,
            prompts=None, metrics=self.metrics, track_leg=self.legs.add,
            run_flow=lambda call, spec: None, eventlog=eventlog)
        self.queues.start()
        self._closing.callback(self.queues.stop)
        self.agent_admin = AgentAdmin(self.queues, self.people.agents,
                                      max_agents=self.capacity - 1)
        self.voicemail = VoicemailStore(data, {"200": Mailbox(
            "200", owner="agent:alice", pin_hash=hash_pin("1234"), min_length=1.0)})
        self._closing.callback(self.voicemail.close)
        recording = tmp / "message.wav"
        recording.write_bytes(wav(2.0))
        self.message_id = self.voicemail.deposit("200", recording, "+15550100", "200")
        self.fax_store = FaxStore(data)
        self._closing.callback(self.fax_store.close)
        self.fax_store.add_document("1", make_document(tmp / "one.tif", pages=1, lines=1))
        self.fax_dialer_wake = None

    def close(self) -> None:
        self._closing.close()


def serve(tmp: Path, ports, scenario, config: str = CONFIG):
    """``await scenario(client, engine)`` against the app on a fresh engine
    (on ``config``, TOML text); its result."""
    async def go():
        engine = EngineApp(tmp, config)
        try:
            async with TestClient(TestServer(build_app(engine), host="127.0.0.1",
                                             port=ports())) as client:
                return await scenario(client, engine)
        finally:
            engine.close()
    return asyncio.run(go())


def routes(tmp: Path) -> set[tuple[str, str]]:
    """(method, path pattern) of every route the engine's app serves (HEAD,
    which aiohttp adds to each GET, aside)."""
    async def go():
        engine = EngineApp(tmp)
        try:
            return {(r.method, r.resource.canonical) for r in build_app(engine).router.routes()
                    if r.method != "HEAD"}
        finally:
            engine.close()
    return asyncio.run(go())

