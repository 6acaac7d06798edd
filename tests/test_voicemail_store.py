"""The voicemail store: atomic deposit and delete, crashes (real SIGKILL in a
child process), limits, PINs with lockout, greetings, paths kept inside."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ivrflows.call import MailboxFull, MessageTooShort
from sipagent.store.pin import hash_pin, is_pin_hash, verify_pin
from sipagent.voicemail.store import (DB_FILE, SHARED_STRAY_AGE, Mailbox, NoSuchMessage,
                                      UnknownMailbox, UnsafePath, VoicemailStore, wav_seconds)
pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL

REPO = Path(__file__).resolve().parent.parent
FAST_PIN = None   # filled once: hashing costs tens of milliseconds


def tone(path: Path, seconds: float, freq: float = 440.0, rate: int = 8000) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def pin_1234() -> str:
    return hash_pin("1234")


@pytest.fixture
def boxes(pin_1234):
    return {"200": Mailbox("200", owner="agent:alice", pin_hash=pin_1234, max_messages=3,
                           min_length=2.0, emails=("alice@example.com",)),
            "300": Mailbox("300", owner="queue:support", pin_hash=pin_1234)}


@pytest.fixture
def store(boxes, store_place):
    events: list[str] = []
    s = VoicemailStore(store_place, boxes, pin_attempts=3, lockout=600,
                       events=events.append)
    s.events = events
    yield s
    s.close()


def test_deposit_moves_the_file_in_and_lists_it(store, tmp_path):
    rec = tone(tmp_path / "rec.wav", 4.5)
    original = rec.read_bytes()
    mid = store.deposit("200", rec, "+15550100", "200", caller_name="Bob", urgent=True)
    assert not rec.exists()
    [m] = store.list("200")
    assert (m.id, m.folder, m.caller, m.caller_name, m.called, m.urgent) == \
        (mid, "new", "+15550100", "Bob", "200", True)
    assert m.duration == pytest.approx(4.5)
    assert Path(m.path).read_bytes() == original
    assert Path(m.path).parent == store.root / "200"
    assert store.counts("200") == (1, 0) and store.events == ["deposited"]
    # The notification is owed in the same transaction as the message.
    assert [(n.item_id, n.channel) for n in store.outbox.due(float("inf"))] == \
        [(mid, "email")]


def test_mark_saved_and_delete_change_the_index_and_the_disk(store, tmp_path):
    a = store.deposit("200", tone(tmp_path / "a.wav", 3), "1", "200")
    b = store.deposit("200", tone(tmp_path / "b.wav", 3), "2", "200")
    store.mark_saved("200", a)
    assert [m.id for m in store.list("200", "saved")] == [a]
    assert [m.id for m in store.list("200", "new")] == [b]
    path = Path(store.get("200", b).path)
    store.delete("200", b)
    assert not path.exists() and store.counts("200") == (0, 1)
    with pytest.raises(NoSuchMessage):
        store.get("200", b)
    with pytest.raises(NoSuchMessage):
        store.delete("200", b)


def test_a_full_box_refuses_and_keeps_the_recording(store, tmp_path):
    for i in range(3):
        store.deposit("200", tone(tmp_path / f"{i}.wav", 3), "1", "200")
    rec = tone(tmp_path / "late.wav", 3)
    with pytest.raises(MailboxFull):
        store.deposit("200", rec, "1", "200")
    assert rec.exists() and len(store.list("200")) == 3 and "full" in store.events


def test_two_nodes_filling_the_last_place_at_once_file_one(store_place, tmp_path,
                                                           monkeypatch):
    """Two stores on one database (two nodes, or the CLI beside the engine):
    the second deposit lands between the first's count and its commit."""
    import sipagent.voicemail.store as vm

    boxes = {"200": Mailbox("200", max_messages=1, min_length=0)}
    node_a, node_b = VoicemailStore(store_place, boxes), VoicemailStore(store_place, boxes)
    real_publish = vm.publish

    def publish_while_b_deposits(src, final):
        monkeypatch.setattr(vm, "publish", real_publish)
        node_b.deposit("200", tone(tmp_path / "b.wav", 2), "2", "200")
        real_publish(src, final)

    monkeypatch.setattr(vm, "publish", publish_while_b_deposits)
    rec = tone(tmp_path / "a.wav", 2)
    with pytest.raises(MailboxFull):
        node_a.deposit("200", rec, "1", "200")
    assert rec.exists()                                  # handed back, not lost
    assert [m.caller for m in node_a.list("200")] == ["2"]
    assert len(list(node_a.box_dir("200").glob("*.wav"))) == 1
    node_a.close()
    node_b.close()


def test_too_short_is_refused(store, tmp_path):
    rec = tone(tmp_path / "short.wav", 1.5)
    with pytest.raises(MessageTooShort):
        store.deposit("200", rec, "1", "200")
    assert store.list("200") == [] and store.events == ["too_short"]


def test_an_incomplete_wav_is_refused(store, tmp_path):
    rec = tone(tmp_path / "cut.wav", 5)
    rec.write_bytes(rec.read_bytes()[:20000])      # header says more than there is
    with pytest.raises(ValueError):
        store.deposit("200", rec, "1", "200")
    assert store.list("200") == []


def test_a_failed_commit_hands_the_recording_back(store, tmp_path, monkeypatch):
    rec = tone(tmp_path / "rec.wav", 3)
    original = rec.read_bytes()

    def broken(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_insert_message", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.deposit("200", rec, "1", "200")
    assert rec.read_bytes() == original and store.list("200") == []
    assert list((store.root / "200").iterdir()) == []
    assert store.outbox.pending() == 0          # rolled back with the row


def test_unknown_box(store, tmp_path):
    with pytest.raises(UnknownMailbox):
        store.deposit("999", tone(tmp_path / "x.wav", 3), "1", "999")


@pytest.mark.parametrize("box", ["..", "../200", "200/../../etc", "", "a b", "/etc"])
def test_path_traversal_in_a_box_number_is_rejected(store, box):
    with pytest.raises((UnsafePath, UnknownMailbox)):
        store.list(box)
    with pytest.raises(UnsafePath):
        store.box_dir(box)


@pytest.mark.parametrize("mid", ["../../voicemail.sqlite3", "..", "x" * 32, "A" * 32, ""])
def test_path_traversal_in_a_message_id_is_rejected(store, mid):
    with pytest.raises(UnsafePath):
        store.message_path("200", mid)
    with pytest.raises(UnsafePath):
        store.get("200", mid)


def test_greeting_kinds_are_checked(store, tmp_path):
    with pytest.raises(UnsafePath):
        store.set_greeting("200", "../../evil", tone(tmp_path / "g.wav", 2))


def test_greeting_upload_is_converted_and_written_atomically(store, tmp_path):
    stereo16k = tmp_path / "up.wav"
    with wave.open(str(stereo16k), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 2 * 2, "<i2").tobytes())
    path = store.set_greeting("200", "busy", stereo16k.read_bytes())
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
        assert w.getnframes() == 16000
    assert store.info("200").greetings == {"busy": str(path)}
    assert [p.name for p in path.parent.iterdir()] == ["busy.wav"]   # no temp left
    rec = tone(tmp_path / "name.wav", 1.2)
    store.set_greeting("200", "name", rec)
    assert not rec.exists() and set(store.info("200").greetings) == {"busy", "name"}
    assert store.delete_greeting("200", "busy") and set(store.info("200").greetings) == {"name"}
    with pytest.raises(ValueError):
        store.set_greeting("200", "busy", b"not a wav at all")


def test_pin_is_stored_as_a_salted_scrypt_hash(store, pin_1234, store_place):
    assert is_pin_hash(pin_1234) and "1234" not in pin_1234
    assert hash_pin("1234") != pin_1234          # a new salt each time
    assert verify_pin("1234", pin_1234) and not verify_pin("1235", pin_1234)
    store.set_pin("200", "98765")
    if store.db.dialect == "sqlite":
        db = b"".join(f.read_bytes() for f in store_place.dir.glob(DB_FILE + "*"))
    else:
        db = repr(store.db.read("SELECT * FROM mailbox")).encode()
    assert b"98765" not in db and b"scrypt$" in db
    assert store.login("200", "98765") == "ok" and store.login("200", "1234") == "wrong"
    with pytest.raises(ValueError):
        store.set_pin("200", "12")


def test_lockout_after_n_wrong_pins_survives_a_restart(boxes, store_place):
    now = [1000.0]
    events: list[str] = []

    def open_store():
        return VoicemailStore(store_place, boxes, pin_attempts=3, lockout=600,
                              events=events.append, clock=lambda: now[0])

    s = open_store()
    assert [s.login("200", "0000") for _ in range(3)] == ["wrong"] * 3
    assert events.count("lockout") == 1 and events.count("pin_wrong") == 3
    assert s.login("200", "1234") == "locked"          # the right PIN does not help
    s.close()
    s = open_store()
    assert s.login("200", "1234") == "locked" and s.lock_state("200")[1] == 1600.0
    now[0] = 1601.0
    assert s.login("200", "1234") == "ok" and s.lock_state("200") == (0, 0.0)
    assert s.login("999", "1234") == "wrong"           # no box: same answer as a bad PIN
    s.close()


def test_an_owners_pin_survives_a_restart_but_a_config_pin_follows_the_config(boxes,
                                                                            store_place):
    s = VoicemailStore(store_place, boxes)
    s.set_pin("200", "5555")
    s.close()
    changed = {n: Mailbox(n, pin_hash=hash_pin("7777")) for n in boxes}
    s = VoicemailStore(store_place, changed)
    assert s.login("200", "5555") == "ok"      # the owner's choice stays
    assert s.login("300", "7777") == "ok"      # never changed by its owner: the config's
    s.close()


def test_api_settings_are_kept_over_the_config(tmp_path, boxes, store_place):
    s = VoicemailStore(store_place, boxes)
    s.update_box("200", emails=["x@example.com"], max_messages=50)
    with pytest.raises(ValueError):
        s.update_box("200", pin_hash="nope")
    s.close()
    s = VoicemailStore(store_place, boxes)
    assert s.mailbox("200").emails == ("x@example.com",) and s.mailbox("200").max_messages == 50
    s.close()


def test_retention_sweep_deletes_only_old_messages(tmp_path, store_place):
    now = [10 * 86400.0]
    s = VoicemailStore(store_place, {"1": Mailbox("1", retention_days=2, min_length=0)},
                       clock=lambda: now[0])
    old = s.deposit("1", tone(tmp_path / "o.wav", 1), "1", "1", received=now[0] - 3 * 86400)
    new = s.deposit("1", tone(tmp_path / "n.wav", 1), "1", "1")
    assert s.sweep_retention() == 1 and [m.id for m in s.list("1")] == [new]
    assert not (s.root / "1" / f"{old}.wav").exists()
    s.close()


def test_clean_strays_removes_temporaries_and_orphans_but_not_messages(store, tmp_path):
    mid = store.deposit("300", tone(tmp_path / "a.wav", 3), "1", "300")
    box = store.root / "300"
    (box / f".{'b' * 32}.tmp.wav").write_bytes(b"half")
    (box / f"{'c' * 32}.wav").write_bytes(b"orphan")
    (box / "greetings").mkdir()
    (box / "greetings" / ".busy-1.tmp.wav").write_bytes(b"half")
    if store.db.dialect == "postgresql":
        # A shared folder: these could be another node's deposit under way.
        assert store.clean_strays() == 0
        for path in box.rglob("*.wav"):
            os.utime(path, (time.time() - SHARED_STRAY_AGE - 1,) * 2)
    assert store.clean_strays() == 3
    assert sorted(p.name for p in box.rglob("*") if p.is_file()) == [f"{mid}.wav"]


# -- crashes: a real SIGKILL in a child process ---------------------------------------

CHILD = textwrap.dedent("""
    import os, signal, sys, wave
    from pathlib import Path
    import numpy as np
    import sipagent.store.files as vf
    import sipagent.voicemail.store as vs

    data, incoming, crash_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    store = vs.VoicemailStore(data, {"200": vs.Mailbox("200", min_length=0,
                                                        max_messages=10_000)})

    def die(*_a, **_k):
        os.kill(os.getpid(), signal.SIGKILL)

    if crash_at == "during-copy":
        # Another file system: the copy is under way when the process dies.
        def half_copy(src, tmp):
            with open(src, "rb") as f, open(tmp, "wb") as out:
                out.write(f.read(30000))
                out.flush()
            die()
        vf.copy_into = half_copy
        def cross_device(a, b):
            raise OSError(18, "Invalid cross-device link")
        vf.os.rename = cross_device
    elif crash_at == "before-row":
        vs.VoicemailStore._insert_message = die
    elif crash_at == "before-unlink":
        real_unlink = Path.unlink
        def unlink(self, missing_ok=False):
            if self.parent.parent == store.root:
                die()
            return real_unlink(self, missing_ok=missing_ok)
        Path.unlink = unlink
        [m] = store.list("200")
        store.delete("200", m.id)
    n = 0
    while True:       # "loop": deposit until killed from outside
        n += 1
        rec = incoming / f"rec-{n}.wav"
        t = np.arange(8000 * 6) / 8000
        with wave.open(str(rec), "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
            w.writeframes((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes())
        store.deposit("200", rec, "+1555", "200")
        print(n, flush=True)
""")


def run_child(tmp_path: Path, crash_at: str, kill_after: float | None = None) -> int:
    data, incoming = tmp_path / "data", tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(data), str(incoming), crash_at],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    return proc.returncode


def assert_every_listed_message_is_complete(store: VoicemailStore) -> None:
    for m in store.list("200"):
        assert wav_seconds(Path(m.path)) == pytest.approx(m.duration)
        assert m.duration == pytest.approx(6.0)


@pytest.mark.parametrize("crash_at", ["during-copy", "before-row"])
def test_killed_mid_deposit_leaves_nothing_half_done(tmp_path, crash_at):
    run_child(tmp_path, crash_at)
    box = tmp_path / "data" / "voicemail" / "200"
    leftovers = [p.name for p in box.iterdir()]
    assert leftovers, "the crash should have left a file behind to clean"
    store = VoicemailStore(tmp_path / "data", {"200": Mailbox("200", min_length=0)})
    assert store.strays_removed == len(leftovers)
    assert store.list("200") == [] and list(box.iterdir()) == []
    # The box works after the restart.
    mid = store.deposit("200", tone(tmp_path / "after.wav", 3), "1", "200")
    assert [m.id for m in store.list("200")] == [mid]
    store.close()


def test_killed_between_row_and_file_of_a_delete(tmp_path):
    s = VoicemailStore(tmp_path / "data", {"200": Mailbox("200", min_length=0)})
    s.deposit("200", tone(tmp_path / "a.wav", 3), "1", "200")
    s.close()
    run_child(tmp_path, "before-unlink")
    s = VoicemailStore(tmp_path / "data", {"200": Mailbox("200", min_length=0)})
    assert s.strays_removed == 1 and s.list("200") == []
    assert list((tmp_path / "data" / "voicemail" / "200").iterdir()) == []
    s.close()


@pytest.mark.parametrize("kill_after", [0.3, 0.55, 0.8, 1.1])
def test_killed_at_a_random_moment_of_a_deposit_loop(tmp_path, kill_after):
    run_child(tmp_path, "loop", kill_after=kill_after)
    store = VoicemailStore(tmp_path / "data", {"200": Mailbox("200", min_length=0)})
    assert_every_listed_message_is_complete(store)
    box = store.root / "200"        # absent when killed before the first deposit
    on_disk = sorted(p.stem for p in box.iterdir()) if box.exists() else []
    assert on_disk == sorted(m.id for m in store.list("200"))
    store.close()
