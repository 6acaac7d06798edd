"""The voicemail flows on the test kit: deposit (greeting, review, full box,
too short) and the owner's retrieval line (PIN, lockout, message menu,
greetings, PIN change)."""
from __future__ import annotations

import tempfile
from datetime import timedelta

import pytest
from hypothesis import given, settings, strategies as st

from ivrflows import voicemail, voicemail_retrieval
from ivrflows.testing import (DEFAULT_START, FakeMailbox, FlowMistake, fake_message, hangup,
                              press, run_flow, silence, speak)

BOX = "200"


def boxes(**kw) -> dict[str, FakeMailbox]:
    return {BOX: FakeMailbox(**kw)}


def deposit_run(script, tmp_path, **box):
    return run_flow(voicemail.flow, script, called=BOX, mailboxes=boxes(**box),
                    record_dir=tmp_path)


# -- deposit --------------------------------------------------------------------------------

def test_message_ended_by_hash_then_accepted(tmp_path):
    run = deposit_run([speak(8, then="#"), "3"], tmp_path)
    box = run.mailboxes[BOX]
    assert [m.duration for m in box.messages] == [pytest.approx(8.0)]
    assert box.messages[0].folder == "new" and not box.messages[0].urgent
    assert run.prompts[:2] == ["vm-the-mailbox-of", "vm-unavailable"]
    assert run.said == ["two zero zero"]
    assert "beep" in run.verbs and run.prompts[-2:] == ["vm-review", "vm-saved"]
    assert run.vars["voicemail"] == box.messages[0].id
    assert run.ended == "flow hung up"


def test_review_listen_then_record_again_keeps_only_the_second_take(tmp_path):
    run = deposit_run([speak(5, then="#"), "1", "2", speak(3, then="#"), "4"], tmp_path)
    box = run.mailboxes[BOX]
    assert len(run.recordings) == 2 and len(box.messages) == 1
    assert box.messages[0].path == run.recordings[1].path     # the take heard last
    assert box.messages[0].urgent                               # 4: send as urgent
    assert run.recordings[0].path in run.prompts                # 1: listened to the first


def test_hanging_up_while_recording_keeps_the_message_without_review(tmp_path):
    run = deposit_run([hangup(after=15)], tmp_path)
    assert len(run.mailboxes[BOX].messages) == 1
    assert "vm-review" not in run.prompts and run.ended == "caller hung up"


def test_hanging_up_during_the_review_still_files_the_message(tmp_path):
    run = deposit_run([speak(6, then="#"), hangup(during="vm-review")], tmp_path)
    assert len(run.mailboxes[BOX].messages) == 1
    assert run.ended == "caller hung up"


def test_a_full_box_says_so_and_records_nothing(tmp_path):
    full = [fake_message(seconds=3, id=f"m{i}") for i in range(2)]
    run = deposit_run([speak(8, then="#")], tmp_path, max_messages=2, messages=full)
    assert run.prompts == ["vm-box-full"]
    assert "record" not in run.verbs and run.recordings == []
    assert len(run.mailboxes[BOX].messages) == 2


def test_too_short_is_discarded(tmp_path):
    run = deposit_run([speak(1, then="#")], tmp_path, min_length=3.0)
    assert run.mailboxes[BOX].messages == [] and run.voicemails == []
    assert run.prompts[-1] == "vm-too-short" and "vm-review" not in run.prompts


def test_too_short_hang_up_is_discarded_silently(tmp_path):
    run = deposit_run([hangup(after=0.5)], tmp_path, min_length=2.0)
    assert run.mailboxes[BOX].messages == [] and run.ended == "caller hung up"


def test_recorded_greetings_win_in_the_right_order(tmp_path):
    greetings = {"unavailable": "/g/unavail.wav", "busy": "/g/busy.wav"}
    run = deposit_run([speak(4, then="#"), "3"], tmp_path, greetings=greetings)
    assert run.prompts[0] == "/g/unavail.wav"
    run = run_flow(voicemail.flow, [speak(4, then="#"), "3"], called=BOX,
                   vars={"voicemail_greeting": "busy"},
                   mailboxes=boxes(greetings=greetings), record_dir=tmp_path)
    assert run.prompts[0] == "/g/busy.wav"
    run = deposit_run([speak(4, then="#"), "3"], tmp_path,
                      greetings={**greetings, "temporary": "/g/away.wav"})
    assert run.prompts[0] == "/g/away.wav"
    run = deposit_run([speak(4, then="#"), "3"], tmp_path, greetings={"name": "/g/name.wav"})
    assert run.prompts[:2] == ["/g/name.wav", "vm-unavailable"] and run.said == []


def test_the_busy_flow_plays_the_busy_greeting(tmp_path):
    # silence(): the caller lets the greeting play (a key would skip it).
    run = run_flow(voicemail.busy, [silence(), speak(4, then="#"), "3"], called=BOX,
                   mailboxes=boxes(greetings={"busy": "/g/busy.wav"}), record_dir=tmp_path)
    assert run.prompts[0] == "/g/busy.wav" and len(run.mailboxes[BOX].messages) == 1


def test_a_key_skips_a_recorded_greeting_to_the_beep(tmp_path):
    run = deposit_run([press("#", after=0.5), speak(4, then="#"), "3"], tmp_path,
                      greetings={"unavailable": "/g/long.wav"})
    assert run.details("barge-in")[0] == "/g/long.wav stopped by key #"
    assert run.recordings[0].duration == pytest.approx(4.0)
    assert len(run.mailboxes[BOX].messages) == 1


def test_max_length_and_silence_come_from_the_box(tmp_path):
    run = deposit_run([speak(300)], tmp_path, max_length=30.0)
    assert run.recordings[0].ended_by == "max_length"
    assert run.recordings[0].duration == pytest.approx(30.0)
    assert "max 30s, silence 5s" in run.details("record")


def test_the_call_verb_runs_the_same_deposit(tmp_path):
    async def flow(call):
        await call.answer()
        call.vars["id"] = await call.voicemail(BOX, greeting="busy") or ""

    run = run_flow(flow, [speak(4, then="#"), "3"], mailboxes=boxes(), record_dir=tmp_path)
    assert run.vars["id"] == run.mailboxes[BOX].messages[0].id
    assert "vm-busy" in run.prompts


def test_an_unknown_box_is_a_flow_mistake(tmp_path):
    with pytest.raises(FlowMistake):
        run_flow(voicemail.flow, [], called="999", mailboxes=boxes(), record_dir=tmp_path)


@settings(max_examples=60, deadline=None)
@given(script=st.lists(st.one_of(
    st.text(alphabet="0123456789*#", min_size=1, max_size=3), st.builds(silence),
    st.builds(speak, st.floats(0, 200), st.sampled_from(["", "#"])),
    st.builds(hangup, after=st.floats(0, 30))), max_size=8),
    full=st.booleans(), min_length=st.sampled_from([0.0, 2.0, 10.0]))
def test_no_caller_breaks_the_deposit_and_nothing_short_is_filed(script, full, min_length):
    existing = [fake_message(id="old")] if full else []
    with tempfile.TemporaryDirectory() as tmp:
        run = run_flow(voicemail.flow, script, called=BOX, record_dir=tmp,
                       mailboxes=boxes(max_messages=1, min_length=min_length,
                                       messages=existing))
    assert run.ended in ("flow hung up", "caller hung up"), run
    filed = [m for m in run.mailboxes[BOX].messages if m.id != "old"]
    assert len(filed) <= (0 if full else 1)
    assert all(m.duration >= min_length for m in filed)


# -- retrieval ------------------------------------------------------------------------------

def owner_box(**kw) -> dict[str, FakeMailbox]:
    t = DEFAULT_START
    msgs = [fake_message("+15550111", 12, received=t - timedelta(hours=2), id="a"),
            fake_message("+15550122", 7, received=t - timedelta(hours=1), id="b"),
            fake_message("+15550133", 5, received=t - timedelta(days=1), id="c",
                         folder="saved")]
    return {BOX: FakeMailbox(pin="4321", messages=msgs, **kw)}


def retrieve(script, **kw):
    return run_flow(voicemail_retrieval.flow, script, mailboxes=kw.pop("mailboxes", owner_box()),
                    **kw)


def test_login_counts_and_save_then_delete():
    # box, PIN, new messages, save the first, delete the second, back, end.
    run = retrieve([BOX, "4321", "1", "9", "7", "9"])
    assert run.said[0] == "You have two new and one saved messages."
    box = run.mailboxes[BOX]
    assert {m.id: m.folder for m in box.messages} == {"a": "saved", "c": "saved"}
    assert "/fake/voicemail/a.wav" in run.prompts and "/fake/voicemail/b.wav" in run.prompts
    assert run.details("mark") == [f"{BOX}/a: saved", f"{BOX}/b: deleted"]
    assert "vm-last-message" in run.prompts and run.prompts[-1] == "vm-goodbye"


def test_skip_back_repeat_and_envelope():
    run = retrieve([BOX, "4321", "1", "6", "4", "1", "2", "*", "9"])
    plays = [p for p in run.prompts if p.startswith("/fake/")]
    assert plays == ["/fake/voicemail/a.wav", "/fake/voicemail/b.wav",
                     "/fake/voicemail/a.wav", "/fake/voicemail/a.wav"]
    envelope = run.said[-2]
    assert envelope.startswith("From plus one five five five zero one one one.")
    assert "Received Monday five January at eight o'clock." in envelope
    assert envelope.endswith("Length twelve seconds.")
    assert {m.folder for m in run.mailboxes[BOX].messages if m.id != "c"} == {"new"}


def test_a_key_during_the_message_is_the_menu_choice():
    run = retrieve([BOX, "4321", "1", press("7", after=1.0), "*", "9"],
                   prompt_seconds={"*": 2.0, "/fake/voicemail/a.wav": 12.0})
    assert [m.id for m in run.mailboxes[BOX].messages] == ["b", "c"]


def test_urgent_messages_come_first():
    box = owner_box()
    box[BOX].messages.append(fake_message("+15550144", 3, urgent=True, id="u"))
    run = retrieve([BOX, "4321", "1", "*", "9"], mailboxes=box)
    assert run.prompts[run.prompts.index("vm-urgent") + 1] == "/fake/voicemail/u.wav"


def test_call_back_transfers_to_the_caller():
    run = retrieve([BOX, "4321", "2", "3"])
    assert run.transfers == ["+15550133"] and run.ended == "transferred"


def test_wrong_pin_three_times_then_locked_whatever_the_pin():
    run = retrieve([BOX, "1111", BOX, "2222", BOX, "3333"])
    assert run.details("login") == [f"{BOX}: wrong"] * 3
    assert run.mailboxes[BOX].locked
    assert run.prompts.count("vm-login-incorrect") == 3 and run.ended == "flow hung up"
    locked = run.mailboxes
    again = retrieve([BOX, "4321", "1"], mailboxes=locked)
    assert again.details("login") == [f"{BOX}: locked"]
    assert "vm-locked" in again.prompts and "vm-main-menu" not in again.prompts


def test_an_unknown_box_sounds_like_a_wrong_pin():
    run = retrieve(["999", "4321", BOX, "4321", "9"])
    assert run.details("login") == ["999: wrong", f"{BOX}: ok"]


def test_the_box_from_the_route_skips_the_question():
    run = retrieve(["4321", "9"], vars={"mailbox": BOX})
    assert "vm-enter-box" not in run.prompts and run.details("login") == [f"{BOX}: ok"]


def test_record_a_greeting_with_review(tmp_path):
    run = retrieve([BOX, "4321", "3", "1", speak(4, then="#"), "1", "3", "*", "9"],
                   record_dir=tmp_path)
    assert run.mailboxes[BOX].greetings == {"unavailable": run.recordings[0].path}
    assert "vm-greeting-saved" in run.prompts


def test_remove_the_temporary_greeting():
    box = owner_box(greetings={"temporary": "/g/away.wav"})
    run = retrieve([BOX, "4321", "3", "5", "*", "9"], mailboxes=box)
    assert run.mailboxes[BOX].greetings == {}


def test_change_pin_twice_the_same():
    run = retrieve([BOX, "4321", "4", "98765", "98765", "9"])
    assert run.mailboxes[BOX].pin == "98765" and "vm-pin-changed" in run.prompts
    run = retrieve([BOX, "4321", "4", "98765", "98766", "9"])
    assert run.mailboxes[BOX].pin == "4321" and "vm-pin-mismatch" in run.prompts


def test_message_verbs_need_a_login():
    async def sneaky(call):
        await call.answer()
        await call.voicemail_messages(BOX)

    with pytest.raises(FlowMistake):
        run_flow(sneaky, mailboxes=owner_box())


@pytest.mark.parametrize("module", [voicemail, voicemail_retrieval])
def test_prompt_sets_match_across_languages(module):
    assert set(module.PROMPTS["en"]) == set(module.PROMPTS["fr"])


@pytest.mark.parametrize("script", [
    [BOX, "4321", "1", "1", "2", "3"], [BOX, "4321", "2", "6"], [BOX, "4321", "3", "2",
                                                                  speak(3, then="#"), "3"],
    [BOX, "4321", "4", "1234", "1234"], [BOX, "1", BOX, "2", BOX, "3"],
])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_prompt_played_has_a_text(script, language, tmp_path):
    from sipagent.media.prompts import CATALOGUE

    known = {**CATALOGUE.get(language, {}), **voicemail.PROMPTS[language],
             **voicemail_retrieval.PROMPTS[language]}
    for flow, sc in [(voicemail_retrieval.flow, script),
                     (voicemail.flow, [speak(5, then="#"), "1", "3"])]:
        run = run_flow(flow, sc, language=language, called=BOX, mailboxes=owner_box(),
                       record_dir=tmp_path)
        missing = [n for lang, n in run.prompt_uses if n not in known and not n.endswith(".wav")]
        assert missing == []
