"""The stores' schemas are versioned (sipagent/store/migrations.py): an
older database, SQLite file or PostgreSQL schema, is brought up to date
with its rows kept; a newer one is refused with a clear error and left as
it was.  On both backends (tests/storekit.py)."""
from __future__ import annotations

import sqlite3

import pytest

from sipagent.fax.store import DB_FILE as FAX_FILE, MIGRATIONS as FAX_MIGRATIONS, FaxStore
from sipagent.store import people as people_module
from sipagent.store.agent_book import AgentSpec
from sipagent.store.backends import open_database
from sipagent.store.callbacks import CallbackStore
from sipagent.store.keypad_lockout import KeypadLockout
from sipagent.store.migrations import SchemaTooNew
from sipagent.store.people import PEOPLE_FILE, PeopleStore
from sipagent.store.webhook_delivery import MIGRATIONS as WEBHOOK_MIGRATIONS, WEBHOOK_FILE
from sipagent.voicemail.store import Mailbox, VoicemailStore

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL


def open_webhooks(place):
    return open_database(place, WEBHOOK_FILE, "webhooks", WEBHOOK_MIGRATIONS)


# (store name, its file, how the code opens it, its newest version)
STORES = {
    "callbacks": ("callbacks.sqlite3", CallbackStore, 1),
    "people": (PEOPLE_FILE, PeopleStore, 2),
    "agent_keypad": ("agent_keypad.sqlite3", KeypadLockout, 1),
    "voicemail": ("voicemail.sqlite3", lambda place: VoicemailStore(place, {}), 1),
    "fax": (FAX_FILE, FaxStore, 2),
    "webhooks": (WEBHOOK_FILE, open_webhooks, 1),
}


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_database_newer_than_the_code_is_refused_and_left_alone(store_place, store):
    file, open_store, newest = STORES[store]
    opened = open_store(store_place)
    opened.close()
    from storekit import set_schema_version

    set_schema_version(store_place, store, file, newest + 1)
    with pytest.raises(SchemaTooNew) as refused:
        open_store(store_place)
    message = str(refused.value)
    assert f"{store} schema {newest + 1} is newer than this sipacd understands ({newest})" \
        in message
    # Nothing was migrated down or written: the version is still the newer one.
    assert read_version(store_place, store, file) == newest + 1


def read_version(place, store: str, file: str) -> int:
    if place.database is None:
        db = sqlite3.connect(place.file(file))
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    import psycopg

    with psycopg.connect(place.database) as db:
        return db.execute(f'SELECT version FROM "{store}".schema_version WHERE store = %s',
                          (store,)).fetchone()[0]


def version_one(place, file: str, store: str, migrations):
    """The store's database as version 1 of its schema left it."""
    return open_database(place, file, store, migrations[:1])


def test_people_at_version_one_migrate_keeping_agents_in_their_order(store_place):
    db = version_one(store_place, PEOPLE_FILE, "people", people_module.MIGRATIONS)
    # zed was stored first but changed last.
    for agent, updated in (("zed", 20.0), ("amy", 10.0)):
        db.write("INSERT INTO agent_record (agent, spec, origin, removed, updated)"
                 " VALUES (?, ?, 'admin', 0, ?)",
                 (agent, f'{{"agent": "{agent}", "uri": "sip:{agent}@h"}}', updated))
    db.write("INSERT INTO person (name, role, origin, updated) VALUES ('ann', 'admin',"
             " 'admin', 1.0)")
    db.close()
    store = PeopleStore(store_place)
    try:
        assert read_version(store_place, "people", PEOPLE_FILE) == 2
        assert store.user("ann").role == "admin"
        store.agents.put(AgentSpec("bob", "sip:bob@h"), who="ann", action="agent.added",
                         before=None)
        order = list(store.agents.specs())
        if store_place.database is None:
            assert order == ["zed", "amy", "bob"]     # SQLite: as stored (rowid)
        else:
            assert order == ["amy", "zed", "bob"]     # PostgreSQL had none: by time changed
    finally:
        store.close()


def test_a_people_file_from_before_versions_migrates(tmp_path):
    # What sipacd wrote before its schemas had versions: the tables, user_version 0.
    path = tmp_path / PEOPLE_FILE
    db = sqlite3.connect(path)
    db.executescript(people_module.SCHEMA)
    db.execute("INSERT INTO agent_record (agent, spec, origin, removed, updated)"
               " VALUES ('zed', '{\"agent\": \"zed\", \"uri\": \"sip:z@h\"}', 'admin', 0, 5)")
    db.commit()
    db.close()
    store = PeopleStore(path)
    try:
        assert list(store.agents.specs()) == ["zed"]
        assert store.db.one("PRAGMA user_version")[0] == 2
    finally:
        store.close()


FAX_ROW = ("INSERT INTO fax (id, direction, ok, status, status_text, pages, bit_rate,"
           " resolution, ecm, remote_ident, seconds, call_id, remote, documents, job_id,"
           " tiff, pdf, started, ended) VALUES (?, 'send', 1, 0, 'OK', 1, 9600, 'fine', 1, 'x',"
           " 1.0, 'c', 'r', '[]', NULL, NULL, NULL, 0, ?)")


def test_fax_at_version_one_migrates_keeping_faxes_newest_first(store_place):
    db = version_one(store_place, FAX_FILE, "fax", FAX_MIGRATIONS)
    ids = ["b" * 32, "a" * 32, "c" * 32]          # recorded in this order, at one time
    for fax_id in ids:
        db.write(FAX_ROW, (fax_id, 100.0))
    db.close()
    store = FaxStore(store_place, clock=lambda: 100.0)
    try:
        newest_first = [f.id for f in store.faxes()]
        if store_place.database is None:
            assert newest_first == ids[::-1]         # SQLite: the order recorded (rowid)
        else:
            assert sorted(newest_first) == sorted(ids)
        store.record_fax("d" * 32, "send", {"ok": True}, call_id="c", remote="r", started=0)
        assert store.faxes()[0].id == "d" * 32       # a new one, at the same time, comes first
    finally:
        store.close()


def test_every_store_opens_a_fresh_database_at_its_newest_version(store_place):
    for store, (file, open_store, newest) in STORES.items():
        open_store(store_place).close()
        assert read_version(store_place, store, file) == newest, store


def test_a_mailbox_store_of_an_old_file_keeps_its_messages(tmp_path):
    # Voicemail before versions: rows and audio; the store opens them as they are.
    data = tmp_path / "data"
    data.mkdir()
    from sipagent.voicemail.store import SCHEMA as VM_SCHEMA
    from sipagent.store.outbox import SCHEMA as OUTBOX_SCHEMA

    db = sqlite3.connect(data / "voicemail.sqlite3")
    db.executescript(VM_SCHEMA + OUTBOX_SCHEMA)
    db.execute("INSERT INTO message VALUES (?, '200', 'new', '1', '', '200', 5.0, 3.0, 0, 10)",
               ("f" * 32,))
    db.commit()
    db.close()
    box = data / "voicemail" / "200"
    box.mkdir(parents=True)
    (box / f"{'f' * 32}.wav").write_bytes(b"RIFF")
    store = VoicemailStore(data, {"200": Mailbox("200", min_length=0)})
    try:
        assert [m.id for m in store.list("200")] == ["f" * 32] and store.strays_removed == 0
    finally:
        store.close()
