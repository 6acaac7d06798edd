"""What people's logins and the desktop cost, on real SQLite files:

* a password check at the default scrypt cost (n = 2**14, r = 8): the
  login's CPU time, spent in a thread, never on the loop;
* a session lookup (the cookie's hash, joined with its user): what every
  cookie request pays on the loop;
* the screen pop's history query (``call_record`` by caller, newest first)
  over a log of ``--calls`` call records: call_record has no index on the
  caller, so this is a scan; the number says when one is worth adding.

Medians of ``--repeat`` runs; the machine is shared, so compare ratios.

    .venv/bin/python benchmarks/console_people.py [--calls 100000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sipagent.store.eventlog import EventLog, event_log_path, read_only  # noqa: E402
from sipagent.store.people import PeopleStore, User, people_path  # noqa: E402
from sipagent.store.pin import hash_secret  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = PeopleStore(people_path(tmp))
        store.put_user(User("ann", "admin", password_hash=hash_secret("ann-password")))
        secret, _ = store.open_session("ann")
        login = median_ms(lambda: store.check_login("ann", "ann-password"), args.repeat)
        lookup = median_ms(lambda: store.session(secret), args.repeat * 50)
        store.close()
        log = EventLog(event_log_path(tmp), flush_rows=5000)
        t0 = time.time() - 86400
        for i in range(args.calls):
            log.call_record(f"c{i}", start=t0 + i, caller=f"+1555{i % 5000:07d}", queue="q",
                            agent="a", outcome="answered")
        log.close()
        conn = read_only(event_log_path(tmp))
        sql = ("SELECT call_id, start FROM call_record WHERE caller = ? AND call_id != ?"
               " ORDER BY start DESC LIMIT 10")
        history = median_ms(lambda: conn.execute(sql, ("+15550000042", "x")).fetchall(),
                            args.repeat)
        conn.close()
    print(f"password check (scrypt 2**14): {login:.1f} ms median")
    print(f"session lookup: {lookup * 1000:.0f} us median")
    print(f"pop history over {args.calls} call records: {history:.2f} ms median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
