"""Ports for real-SIP tests and benchmarks: reserved machine-wide with lock
files and bind-tested before they are handed out, so two tests, two pytest
workers, a benchmark and another developer's run never pick the same one."""

from __future__ import annotations

import errno
import os
import random
import socket
from pathlib import Path

# Outside Linux's ephemeral range (32768-60999) so the kernel never hands one
# of these to an outgoing socket, and above pjsua's default RTP base (4000+)
# and baresip's default RTP range (10000-20000).
PORT_RANGE = (20100, 32000)
LOCK_DIR = Path(os.environ.get("SIPACD_PORT_LOCKS", "/tmp/sipacd-port-locks"))



def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class PortAllocator:
    """Hands out ports unique for this session and reserved against other
    processes: a lock file per port holds our PID; a lock whose PID is dead
    is stale and taken over. Nothing is reused within a session, so a port a
    test just closed (possibly still in TIME_WAIT) never goes to the next."""

    def __init__(self, lock_dir: Path = LOCK_DIR, port_range=PORT_RANGE):
        self.lock_dir = lock_dir
        self.lo, self.hi = port_range
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self.held: list[Path] = []
        # Start at a random place so parallel workers rarely contend at all.
        self.next = random.randrange(self.lo, self.hi)

    def _reserve(self, port: int) -> bool:
        lock = self.lock_dir / str(port)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
                try:
                    owner = int(lock.read_text() or "0")
                except (OSError, ValueError):
                    owner = 0
                if owner and _pid_alive(owner):
                    return False
                # Stale (owner died) or half-written; remove and retry once.
                try:
                    lock.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held.append(lock)
            return True
        return False

    def get(self) -> int:
        for _ in range(self.hi - self.lo):
            port = self.next
            self.next = self.lo if self.next + 1 >= self.hi else self.next + 1
            if self._reserve(port):
                if _bindable(port):
                    return port
                # In use by something that doesn't know our locks; keep the
                # lock so we don't try it again this session.
        raise RuntimeError(f"no free port in {self.lo}-{self.hi}")

    def block(self, n: int) -> int:
        """First of `n` consecutive free ports (for programs that derive
        ports from a base, like baresip's SIP/TLS on sip_port + 1)."""
        for _ in range(self.hi - self.lo):
            base = self.next
            if base + n > self.hi:
                self.next = self.lo
                continue
            self.next = base + n
            # Locks taken before a failure are kept: those ports are simply
            # not handed out again this session.
            if all(self._reserve(p) and _bindable(p) for p in range(base, base + n)):
                return base
        raise RuntimeError(f"no {n} consecutive free ports in {self.lo}-{self.hi}")

    def release_all(self) -> None:
        for lock in self.held:
            try:
                if lock.read_text() == str(os.getpid()):
                    lock.unlink()
            except OSError:
                pass
        self.held.clear()


class Ports:
    """What a test sees: `ports()` is one free port, `ports.many(n)` a list,
    `ports.block(n)` the first of n consecutive free ports."""

    def __init__(self, allocator: PortAllocator):
        self._alloc = allocator

    def __call__(self) -> int:
        return self._alloc.get()

    def many(self, n: int) -> list[int]:
        return [self._alloc.get() for _ in range(n)]

    def block(self, n: int) -> int:
        return self._alloc.block(n)
