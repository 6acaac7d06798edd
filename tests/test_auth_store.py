"""The people store on a real SQLite file: password hashes, lockout, session
expiry, the audit trail, and how the config file's users and agents combine
with the database (sipagent/store/people.py, agent_book.py)."""
from __future__ import annotations

import sqlite3

import pytest

from sipagent.config.load import ConfigError, parse_config
from sipagent.store.agent_book import AgentSpec
from sipagent.store.people import PeopleStore, User, people_path, secret_hash
from sipagent.store.pin import hash_secret, verify_pin
pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(store_place, clock):
    s = PeopleStore(store_place, session_ttl=60, lockout_failures=3,
                    lockout_seconds=100, clock=clock)
    yield s
    s.close()


def user(name="ann", role="admin", password="right-password", **kw) -> User:
    return User(name, role, password_hash=hash_secret(password, log2_n=10), **kw)


def test_password_hash_is_salted_scrypt_and_verifies():
    a, b = hash_secret("same-password", log2_n=10), hash_secret("same-password", log2_n=10)
    assert a.startswith("scrypt$10$") and a != b          # a salt of its own each time
    assert verify_pin("same-password", a) and verify_pin("same-password", b)
    assert not verify_pin("other-password", a)
    assert "same-password" not in a


def test_login_lockout_refuses_even_the_right_password(store, clock):
    store.put_user(user())
    assert store.check_login("ann", "right-password").user.name == "ann"
    for _ in range(2):
        result = store.check_login("ann", "wrong")
        assert result.user is None and result.locked_for == 0
    third = store.check_login("ann", "wrong")
    assert third.user is None and third.locked_for == pytest.approx(100)
    clock.t += 40
    locked = store.check_login("ann", "right-password")
    assert locked.user is None and locked.locked_for == pytest.approx(60)
    clock.t += 61
    assert store.check_login("ann", "right-password").user is not None
    # A success resets the count: two more failures do not lock.
    store.check_login("ann", "wrong")
    store.check_login("ann", "wrong")
    assert store.check_login("ann", "right-password").user is not None


def test_unknown_user_is_refused_and_leaves_no_rows(store):
    assert store.check_login("nobody", "x").user is None
    assert store.db.read("SELECT * FROM login_failure") == []


def test_sessions_expire_and_store_only_a_hash(store, clock, tmp_path):
    store.put_user(user())
    secret, csrf = store.open_session("ann")
    session = store.session(secret)
    assert session.user.name == "ann" and session.csrf == csrf
    stored = store.db.read("SELECT secret_hash FROM session")
    assert stored == [(secret_hash(secret),)] and secret not in repr(stored)
    if store.db.dialect == "sqlite":
        raw = (tmp_path / "data" / "people.sqlite3").read_bytes()
        assert secret.encode() not in raw
    clock.t += 61
    assert store.session(secret) is None
    assert store.session("made-up") is None


def test_logout_new_password_and_removal_end_sessions(store):
    store.put_user(user())
    one, _ = store.open_session("ann")
    two, _ = store.open_session("ann")
    assert store.end_session(one) and store.session(one) is None
    assert store.session(two) is not None
    store.put_user(user(password="new-password"))
    assert store.session(two) is None
    three, _ = store.open_session("ann")
    store.remove_user("ann")
    assert store.session(three) is None and store.user("ann") is None


def test_role_change_applies_to_a_live_session(store):
    store.put_user(user(role="supervisor"))
    secret, _ = store.open_session("ann")
    old = store.user("ann")
    store.put_user(User("ann", "agent", "alice", None, old.password_hash))
    session = store.session(secret)
    assert (session.user.role, session.user.agent) == ("agent", "alice")


def test_config_users_seed_until_the_admin_touches_them(store):
    ann = User("ann", "admin", password_hash=hash_secret("a-password", log2_n=10),
               origin="config")
    bob = User("bob", "supervisor", queues=frozenset({"sales"}), origin="config")
    store.seed_users({"ann": ann, "bob": bob})
    assert store.user("bob").queues == {"sales"}
    # The file changes bob: followed.  The admin removes ann: stays removed.
    store.remove_user("ann", audit=("root", "user.removed", None, None))
    store.seed_users({"ann": ann, "bob": User("bob", "admin", origin="config")})
    assert store.user("ann") is None and store.user("bob").role == "admin"
    # The admin edits bob: the file no longer changes him.
    store.put_user(User("bob", "supervisor"))
    store.seed_users({"ann": ann, "bob": User("bob", "admin", origin="config")})
    assert store.user("bob").role == "supervisor"
    # A config user the file drops goes.
    store.seed_users({"cid": User("cid", "admin", origin="config")})
    store.seed_users({})
    assert store.user("cid") is None and store.user("bob") is not None


def test_agent_book_combines_file_and_database(store):
    book = store.agents
    a, b = AgentSpec("a", "sip:a@h"), AgentSpec("b", "sip:b@h")
    assert list(book.seed({"a": a, "b": b})) == ["a", "b"]
    book.put(AgentSpec("c", "sip:c@h"), who="ann", action="agent.added", before=None)
    book.put(b.with_(uri="sip:b2@h"), who="ann", action="agent.updated", before=b)
    book.remove("a", who="ann", before=a)
    # Next start, the file changed b and a: a stays removed, b keeps the admin's URI.
    running = book.seed({"a": a.with_(uri="sip:a9@h"), "b": b.with_(uri="sip:b9@h"),
                         "d": AgentSpec("d", "sip:d@h")})
    assert {k: v.uri for k, v in running.items()} == {"b": "sip:b2@h", "d": "sip:d@h",
                                                      "c": "sip:c@h"}
    assert list(running) == ["b", "d", "c"]      # file order, then the database's own
    # d, untouched by the admin, follows the file (and goes when the file drops it).
    assert "d" not in book.seed({"b": b})


def test_audit_rows_say_who_what_before_after_and_hide_secrets(store, clock):
    spec = AgentSpec("zed", "sip:zed@h", queues={"support": 1},
                     pin_hash=hash_secret("1234", log2_n=10))
    store.agents.put(spec, who="ann", action="agent.added", before=None)
    clock.t += 5
    store.agents.put(spec.with_(uri="sip:zed2@h"), who="token:ops", action="agent.updated",
                     before=spec)
    store.put_user(user("zed", "agent", agent="zed"), audit=("ann", "user.added", None, None))
    rows = store.audit()
    assert [(r["who"], r["action"], r["target"]) for r in rows] == [
        ("ann", "user.added", "zed"), ("token:ops", "agent.updated", "zed"),
        ("ann", "agent.added", "zed")]
    updated = rows[1]
    assert updated["t"] == clock.t
    assert (updated["before"]["uri"], updated["after"]["uri"]) == ("sip:zed@h", "sip:zed2@h")
    assert updated["after"]["pin"] is True
    assert "scrypt" not in repr(rows)
    assert store.audit(limit=1, before_id=rows[0]["id"])[0]["action"] == "agent.updated"
    assert [r["action"] for r in store.audit(target="nobody")] == []


def test_a_failed_change_leaves_neither_row_nor_audit(store):
    with pytest.raises(ValueError):
        store.put_user(User("x", "wizard"), audit=("ann", "user.added", None, None))
    assert store.user("x") is None and store.audit() == []


def test_the_file_is_sqlite_with_its_schema(tmp_path, store):
    if store.db.dialect == "sqlite":
        conn = sqlite3.connect(people_path(tmp_path / "data"))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        conn.close()
    else:   # the store's own schema (namespace) in the shared database
        tables = {r[0] for r in store.db.read("SELECT table_name FROM information_schema.tables"
                                              " WHERE table_schema = 'people'")}
    assert {"person", "session", "login_failure", "agent_record", "audit"} <= tables


BASE = '[queues.sales]\n[agents.alice]\nuri = "sip:alice@h"\nqueues = ["sales"]\n'


@pytest.mark.parametrize("text, problem", [
    ('[users.x]\nrole = "admin"\npassword_hash = "hunter2hunter2"\n',
     "users.x.password_hash: must be a 'scrypt$...' hash made by `sipacd passwd`"),
    ('[users.x]\nrole = "agent"\n', "users.x.agent: required key missing for role 'agent'"),
    ('[users.x]\nrole = "agent"\nagent = "bob"\n', "users.x.agent: unknown agent 'bob'"),
    ('[users.x]\nrole = "admin"\nqueues = ["sales"]\n',
     "users.x.queues: only for role 'supervisor'"),
    ('[users.x]\nrole = "supervisor"\nqueues = ["nope"]\n',
     "users.x.queues[0]: unknown queue 'nope'"),
    ('[users.x]\nrole = "wizard"\n', "users.x.role: bad value 'wizard'"),
    ('[auth]\nlockout_failures = 0\n', "auth.lockout_failures: must be >= 1"),
    ('[desktop]\ndispositions = ["a b"]\n', "desktop.dispositions[0]: bad value 'a b'"),
])
def test_bad_people_config_names_the_key(text, problem):
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + text)
    assert problem in str(err.value)
    assert "hunter2" not in str(err.value)


def test_sipacd_passwd_prints_a_hash_never_the_password(monkeypatch, capsys):
    import io

    from sipagent.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["passwd", "--stdin"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("scrypt$") and verify_pin("a-long-password", out)
    assert "a-long-password" not in out
    parse_config(BASE + f'[users.x]\nrole = "admin"\npassword_hash = "{out}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["passwd", "--stdin"]) == 2
    assert "at least 8" in capsys.readouterr().err


def test_the_demo_config_has_its_demo_login(tmp_path):
    from sipagent.config.load import load_default_config

    config = load_default_config(base_dir=tmp_path)
    demo = config.users["demo"]
    assert demo.role == "admin" and verify_pin("demo", demo.password_hash)
    assert config.desktop.dispositions
