"""Shared fixtures: collision-free ports, a work dir, and the pjsua2 gate.

Real-SIP tests bind real sockets on 127.0.0.1. Two tests (or two parallel
pytest workers, or another developer's run on the same machine) that pick the
same port would fail in confusing ways, so ports are reserved machine-wide
with lock files and bind-tested before they are handed out.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

import pytest

# The repo root, so `sipagent`/`acdcore` import whether pytest was started as
# `pytest` or `python -m pytest`, installed or not.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from portlocks import PortAllocator, Ports  # noqa: E402


def _pjsua2_problem() -> str | None:
    # A real import, not find_spec: a build with a bad RUNPATH is found but
    # fails to load libpjsua.so, and that should skip too, with the reason.
    try:
        import pjsua2  # noqa: F401
    except Exception as e:  # ImportError, OSError from the loader
        return f"{type(e).__name__}: {e}"
    return None


_PJSUA2_PROBLEM = _pjsua2_problem()
PJSUA2_AVAILABLE = _PJSUA2_PROBLEM is None
PJSUA2_SKIP_REASON = (f"pjsua2 is not importable ({_PJSUA2_PROBLEM}): build it into "
                      "the virtualenv with scripts/build-pjsua2")


@pytest.fixture(scope="session")
def port_allocator():
    alloc = PortAllocator()
    atexit.register(alloc.release_all)  # also when the session is interrupted
    yield alloc
    alloc.release_all()


@pytest.fixture
def ports(port_allocator) -> Ports:
    return Ports(port_allocator)


@pytest.fixture(scope="module")
def postgres(port_allocator):
    """A PostgreSQL server of the module's own (tests/clusterkit.py)."""
    from clusterkit import Postgres

    with Postgres(Ports(port_allocator)()) as server:
        yield server


@pytest.fixture(scope="session")
def prompts_dir(tmp_path_factory) -> Path:
    """One rendered prompt set for the session: espeak-ng once, not per test."""
    return tmp_path_factory.mktemp("prompts")


@pytest.fixture
def workdir(tmp_path) -> Path:
    """Per-test directory for recordings, configs and process logs."""
    d = tmp_path / "work"
    d.mkdir()
    return d


def pytest_collection_modifyitems(config, items):
    if PJSUA2_AVAILABLE:
        return
    skip = pytest.mark.skip(reason=PJSUA2_SKIP_REASON)
    for item in items:
        if "sip" in item.keywords:
            item.add_marker(skip)
