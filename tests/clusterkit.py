"""The parts of a several-engine call center, started by the tests on 127.0.0.1:
a PostgreSQL server of its own and Kamailio in front (Debian's packages).

Each is a real server in a folder of its own, on ports from
``tests/portlocks.py``, stopped by PID with timeouts.  PostgreSQL refuses
to run as root, so it runs as Debian's ``postgres`` system user, in a
folder made for it under the system temp dir (a pytest ``tmp_path`` is
root's alone, which that user cannot enter).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from procs import stop_process
from rawsip import SipSocket

REPO = Path(__file__).resolve().parents[1]
KAMAILIO_CFG = REPO / "deploy" / "kamailio" / "kamailio.cfg"
PG_SYSTEM_USER = "postgres"


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    return Path(found[-1]).parent


def _wait_port(port: int, proc: subprocess.Popen, log: Path, what: str,
               timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not listen on {port}:\n{_tail(log)}")
            time.sleep(0.1)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Postgres:
    """``initdb`` in a fresh folder, then ``postgres`` on 127.0.0.1:``port``
    with a password user ``sipacd`` owning a database ``sipacd``;
    :attr:`dsn` is what ``[data] database`` takes."""

    USER = "sipacd"

    def __init__(self, port: int, *, fsync: bool = False):
        self.port = port
        self.password = uuid.uuid4().hex
        self.root = Path(tempfile.mkdtemp(prefix="sipacd-pg-"))
        account = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.root, account.pw_uid, account.pw_gid)
        os.chmod(self.root, 0o700)
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, account.pw_uid, account.pw_gid)
        bin_dir = _pg_bin()
        subprocess.run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", self.USER,
                        f"--pwfile={pwfile}", "--auth-local=peer",
                        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                       user=PG_SYSTEM_USER, check=True, capture_output=True, timeout=120)
        pwfile.unlink()
        self._log = open(self.log_path, "ab")
        # Durability is what a test of a crash looks at in SQLite, not here:
        # fsync off keeps a test database fast on a shared disk.
        self.proc = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", f"fsync={'on' if fsync else 'off'}", "-c", "max_connections=100"],
            user=PG_SYSTEM_USER, stdout=self._log, stderr=self._log)
        try:
            _wait_port(port, self.proc, self.log_path, "postgres")
            self.psql(f"CREATE DATABASE {self.USER} OWNER {self.USER}", database="postgres")
        except BaseException:
            self.stop()
            raise

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.USER}:{self.password}@127.0.0.1:{self.port}/{self.USER}"

    def new_database(self) -> str:
        """A fresh, empty database of its own on this server; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name} OWNER {self.USER}", database="postgres")
        return self.dsn.rsplit("/", 1)[0] + "/" + name

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run ``sql`` with psql over TCP; its output (tuples only)."""
        env = dict(os.environ, PGPASSWORD=self.password)
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                              "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER,
                              "-d", database or self.USER, "-c", sql],
                             env=env, check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def stop(self) -> None:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients;
        # SIGINT is "fast": it ends their sessions and stops at once.
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        stop_process(self.proc)
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Kamailio:
    """Kamailio on ``deploy/kamailio/kamailio.cfg`` with a generated
    ``kamailio-local.cfg``: listening on 127.0.0.1:``port``, dispatching to
    ``engines`` (their SIP ports on 127.0.0.1); with ``database`` (a
    PostgreSQL DSN) a partition's numbers go to its lease holder."""

    def __init__(self, workdir: Path, port: int, engines: list[int], *,
                 database: str | None = None):
        self.port = port
        self.dir = Path(workdir) / f"kamailio-{port}"
        self.dir.mkdir(parents=True)
        shutil.copy(KAMAILIO_CFG, self.dir / "kamailio.cfg")
        dispatcher = self.dir / "dispatcher.list"
        dispatcher.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in engines))
        (self.dir / "kamailio-local.cfg").write_text(
            f'#!substdef "!SIPACD_LISTEN!udp:127.0.0.1:{port}!g"\n'
            f'#!substdef "!SIPACD_DISPATCHER_LIST!{dispatcher}!g"\n'
            + ("" if database is None else
               '#!define WITH_OWNERS\n'
               f'#!substdef "!SIPACD_DB_URL!{database.replace("postgresql://", "postgres://")}!g"\n'))
        self.log_path = self.dir / "kamailio.log"
        self._log = open(self.log_path, "ab")
        run = self.dir / "run"
        run.mkdir()
        self.proc = subprocess.Popen(
            ["kamailio", "-f", str(self.dir / "kamailio.cfg"), "-DD", "-E", "-m", "64",
             "-M", "8", "-Y", str(run), "-w", str(self.dir)],
            stdout=self._log, stderr=self._log, cwd=self.dir)
        deadline = time.monotonic() + 15
        while not self.answers_options():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"kamailio did not start:\n{_tail(self.log_path)}")
            time.sleep(0.1)

    def answers_options(self) -> bool:
        """Whether Kamailio answers an OPTIONS to itself with 200."""
        with SipSocket(self.port) as sip:
            answer = sip.final(sip.request("OPTIONS", uri=f"sip:{self.uri_base}"), timeout=0.5)
        return answer is not None and answer.code == 200

    @property
    def uri_base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.uri_base}"

    def stop(self) -> None:
        stop_process(self.proc, term_wait=5.0)
        self._log.close()

    def __enter__(self) -> Kamailio:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def two_node_center(ports, workdir: Path, make_config, agents=("alice",)):
    """A PostgreSQL server, Kamailio in front of two engines' SIP ports, and
    the agents' phones (answering with 1000 Hz) registered at Kamailio, plus
    a caller: yields ``(pg, {"a": cfg, "b": cfg}, phones, caller, kam)``.
    ``make_config(name, kamailio_port, dsn)`` makes each engine's config;
    the test starts the engines."""
    from sipua import UA

    k_port = ports()
    for name in ("a", "b"):
        (workdir / name).mkdir()
    with Postgres(ports()) as pg:
        cfgs = {name: make_config(name, k_port, pg.dsn) for name in ("a", "b")}
        with UA(ports(), log_dir=workdir, name="agents") as phones, \
                UA(ports(), log_dir=workdir, name="caller") as caller, \
                Kamailio(workdir, k_port, [cfgs["a"]["sip"]["port"], cfgs["b"]["sip"]["port"]],
                         database=pg.dsn) as kam:
            for agent in agents:
                phones.request("auto_answer", user=agent, after=0.2, code=200, tone=1000)
                phones.request("register", user=agent, registrar=f"sip:{kam.uri_base}")
                phones.wait_event({"ev": "registered", "user": agent, "code": 200})
            yield pg, cfgs, phones, caller, kam


@contextlib.contextmanager
def scratch(prefix: str):
    """A benchmark's ``(work, prompts, ports)``: two fresh folders and port
    locks, all gone when it ends."""
    from portlocks import PortAllocator, Ports

    alloc = PortAllocator()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            work, prompts = Path(tmp) / "work", Path(tmp) / "prompts"
            work.mkdir()
            prompts.mkdir()
            yield work, prompts, Ports(alloc)
    finally:
        alloc.release_all()
