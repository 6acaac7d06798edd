"""baresip (Debian's 1.0.0) as an independent SIP caller for tests.

Why a second SIP stack at all: two pjsua2 processes agree with each other
even where pjsip is wrong; a caller from another code base catches what our
own UA would not (SDP quirks, DTMF payload types, To/From forms).

baresip runs headless:
  * `-t SECONDS` bounds its life; calls are placed with the `dial` command
    over ctrl_tcp (see `start` for why not `-e "/dial URI"`);
  * `aufile` is the audio source (an 8 kHz WAV; it plays once, so the WAV is
    made as long as the process may live);
  * the `sndfile` filter dumps what it hears to SND_PATH/dump-<time>-dec.wav
    (and what it sends to ...-enc.wav); libsndfile writes the final header
    when the call's audio stops;
  * `aubridge` is a do-nothing player so the receive path runs at all;
  * `ctrl_tcp` takes JSON commands in netstring framing and pushes events
    (CALL_ESTABLISHED, CALL_CLOSED, ...) on the same connection;
  * no `stdio.so`: it wants a terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from simphones import tones

BARESIP = shutil.which("baresip")
MODULE_PATH = "/usr/lib/baresip/modules"


def available() -> bool:
    return BARESIP is not None and os.path.isdir(MODULE_PATH)


class BaresipError(AssertionError):
    pass


class Baresip:
    # sip_port: UDP and TCP, and baresip takes sip_port + 1 for TLS, so
    # allocate it with `ports.block(2)`.
    def __init__(self, cfg_dir: str | os.PathLike, sip_port: int, ctrl_port: int, *,
                 user: str = "baresip", tone: float = 600.0, lifetime: float = 60.0,
                 auto_answer: bool = False):
        if ctrl_port == sip_port + 1:
            # baresip also listens for SIP over TLS on sip_port + 1.
            raise ValueError("ctrl_port must not be sip_port + 1 (baresip's SIP/TLS port)")
        self.dir = Path(cfg_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.user = user
        self.tone = tone
        self.lifetime = lifetime
        # As an agent's phone: answer every incoming call at once.
        self.auto_answer = auto_answer
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.events: list[dict] = []
        self._responses: list[dict] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._log = None

    @property
    def log_path(self) -> Path:
        return self.dir / "baresip.log"

    def _write_config(self) -> None:
        src = self.dir / "source.wav"
        # aufile does not loop: cover the whole life of the process.
        tones.write_tone(src, self.tone, seconds=self.lifetime + 5)
        (self.dir / "config").write_text(f"""\
poll_method		epoll
sip_listen		127.0.0.1:{self.sip_port}
call_local_timeout	120
call_max_calls		4
# Without this baresip advertises whatever interface it guesses in the SDP.
net_interface		127.0.0.1
audio_source		aufile,{src}
audio_player		aubridge,sink
audio_alert		aubridge,sink
rtp_stats		no
module_path		{MODULE_PATH}
module			g711.so
module			aufile.so
module			aubridge.so
module			sndfile.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{self.ctrl_port}
snd_path		{self.dir}
""")
        answer = ";answermode=auto" if self.auto_answer else ""
        (self.dir / "accounts").write_text(f"<sip:{self.user}@127.0.0.1>;regint=0{answer}\n")

    # --- lifetime --------------------------------------------------------------
    def start(self, dial_uri: str | None = None, timeout: float = 10.0) -> None:
        """Start baresip, connect to ctrl_tcp, and dial `dial_uri` if given.

        The dial goes over ctrl_tcp rather than `-e "/dial ..."`: events are
        only pushed to a connected client, and with -e the call is often
        established before we connect, so CALL_ESTABLISHED would be lost.
        """
        if BARESIP is None:
            raise BaresipError("baresip is not installed (Debian package baresip-core)")
        self._write_config()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BARESIP, "-f", str(self.dir), "-t", str(int(self.lifetime))],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"baresip exited with {self.proc.returncode}\n{self.log_tail()}")
            if b"ctrl_tcp: failed to listen" in self.log_path.read_bytes():
                self.stop()
                raise BaresipError(f"ctrl_tcp could not listen on {self.ctrl_port}\n{self.log_tail()}")
            if b"baresip is ready" in self.log_path.read_bytes():
                try:
                    self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1.0)
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise BaresipError(f"ctrl_tcp on {self.ctrl_port} never came up\n{self.log_tail()}")
            time.sleep(0.05)
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="baresip-ctrl", daemon=True)
        self._reader.start()
        if dial_uri:
            self.dial(dial_uri)

    def stop(self, timeout: float = 5.0) -> int | None:
        """quit over ctrl_tcp, then SIGTERM, then SIGKILL, by PID."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.sock is not None:
            try:
                self._send({"command": "quit"})
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.kill(self.proc.pid, sig)
                self.proc.wait(3.0)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        if self._reader is not None:
            self._reader.join(2.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> "Baresip":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- ctrl_tcp ----------------------------------------------------------------
    def _send(self, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            # netstring: <decimal length>:<payload>,
            while True:
                colon = buf.find(b":")
                if colon <= 0 or not buf[:colon].isdigit():
                    break
                n = int(buf[:colon])
                if len(buf) < colon + 1 + n + 1:
                    break
                payload = buf[colon + 1:colon + 1 + n]
                buf = buf[colon + 1 + n + 1:]
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                with self._cond:
                    (self._responses if msg.get("response") else self.events).append(msg)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> dict:
        """Run a baresip long command and return its response."""
        token = f"t{time.monotonic_ns()}"
        msg = {"command": command, "token": token}
        if params is not None:
            msg["params"] = params
        self._send(msg)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self._responses:
                    if r.get("token") == token:
                        self._responses.remove(r)
                        if not r.get("ok", True):
                            raise BaresipError(f"baresip {command} {params}: {r}")
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BaresipError(f"no response to {command}\n{self.log_tail()}")
                self._cond.wait(left)

    def wait_event(self, pred: Callable[[dict], bool] | str, timeout: float = 10.0) -> dict:
        """Wait for a ctrl_tcp event; a string matches its "type"
        (e.g. "CALL_ESTABLISHED", "CALL_CLOSED")."""
        match = (lambda e: e.get("type") == pred) if isinstance(pred, str) else pred
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if match(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BaresipError(f"no baresip event {pred!r}; events: {self.events}\n{self.log_tail()}")
                self._cond.wait(left)

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def send_dtmf(self, digits: str) -> None:
        """RFC 2833 telephone-events, one digit per command (baresip queues
        them itself)."""
        for d in digits:
            self.command("sndcode", d)

    def hangup(self) -> None:
        self.command("hangup")

    def transfer(self, uri: str) -> dict:
        """Blind transfer of the current call: a REFER to ``uri`` (menu's
        ``transfer`` command); baresip hangs up once the NOTIFY says 200."""
        return self.command("transfer", uri)

    # --- results -----------------------------------------------------------------
    def received_wav(self, timeout: float = 5.0) -> Path:
        """The dump of decoded (received) audio. Complete only after the call
        has ended (CALL_CLOSED), when libsndfile rewrites its header."""
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(self.dir.glob("dump-*-dec.wav"))
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise BaresipError(f"no dump-*-dec.wav in {self.dir}\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, n: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        # The menu module redraws a call status line ("[0:00:03] audio=...")
        # many times a second; it buries everything else.
        lines = [ln for ln in text.splitlines() if ln.strip() and "audio=" not in ln]
        return "\n".join(f"  | {line}" for line in lines[-n:])
