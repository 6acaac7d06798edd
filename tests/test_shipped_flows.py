"""The flows that ship in ivrflows/, tested with the flow kit.

These double as examples of testing a flow: a script of what the caller
presses, then assertions on what the flow did.
"""
from __future__ import annotations

import tempfile
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ivrflows import after_hours, main_menu, survey, welcome
from ivrflows.schedule import from_dict
from ivrflows.testing import QueueScript, hangup, press, run_flow, silence, speak
from sipagent.media.prompts import CATALOGUE

SHIPPED = [main_menu, after_hours, survey]


# -- main menu ------------------------------------------------------------------------------

def test_support_then_survey():
    run = run_flow(main_menu.flow, ["1", "1", "5"], vars={"queue": "support"})
    assert run.prompts[:3] == ["language-menu", "menu-main", "connecting"]
    assert run.enqueues == [{"queue": "support", "priority": 0, "skills": {},
                             "data": {"menu": "1", "language": "en"}}]
    assert run.flows == ["survey"]
    assert run.surveys == [{"question": "satisfaction", "score": 5, "scale": 5}]
    assert run.vars["survey_score"] == "5" and run.ended == "flow hung up"


def test_french_picks_the_prompt_set_and_reaches_the_agent_with_it():
    run = run_flow(main_menu.flow, ["2", "1", press("4", after=6)])
    assert run.language == "fr" and run.vars["language"] == "fr"
    assert ("fr", "menu-main") in run.prompt_uses
    assert run.enqueues[0]["data"]["language"] == "fr"
    assert "5" in run.said      # the survey's scale, read by the French voice


def test_no_language_choice_means_the_default():
    run = run_flow(main_menu.flow, [silence(), "1"])
    assert run.language == "en" and run.queued == ["support"]
    # No "try again" round for the language question.
    assert run.prompts[:2] == ["language-menu", "menu-main"]


def test_type_ahead_goes_two_levels_down_at_once():
    run = run_flow(main_menu.flow, ["12"], vars={"queue_sales": "sales"})
    assert run.queued == ["sales"]
    assert run.prompts.count("menu-main") == 1


def test_account_menu_reads_the_callers_number_and_goes_back():
    run = run_flow(main_menu.flow, ["1", "3", "1", "9", "2"], caller="+4930123")
    assert run.said[0] == "plus four nine three zero one two three"
    assert run.prompts.count("menu-account") == 2 and run.prompts.count("menu-main") == 2
    assert run.queued == ["support"]    # no sales queue configured: the route's queue


def test_billing_jumps_the_queue_a_little():
    run = run_flow(main_menu.flow, ["1", "3", "2"], vars={"queue_billing": "billing"})
    assert run.enqueues[0]["queue"] == "billing" and run.enqueues[0]["priority"] == 1


def test_operator_key_transfers_to_the_operator():
    run = run_flow(main_menu.flow, ["1", "0"], vars={"operator": "sip:desk@pbx"})
    assert run.transfers == ["sip:desk@pbx"] and run.ended == "transferred"
    assert run.queued == []


def test_operator_that_does_not_answer_puts_the_caller_first_in_line():
    run = run_flow(main_menu.flow, ["1", "0"], vars={"operator": "sip:desk@pbx"},
                   transfers={"sip:desk@pbx": False})
    assert run.enqueues[0]["priority"] == 10


def test_a_caller_who_cannot_work_the_menu_reaches_the_operator():
    run = run_flow(main_menu.flow, ["1", "7", silence(), "#"])
    assert run.prompts[1:7] == ["menu-main", "invalid", "menu-main", "no-input",
                                "menu-main", "invalid"]
    assert run.prompts[7] == "operator"
    assert run.enqueues[0]["priority"] == 10


def test_closed_goes_to_after_hours():
    run = run_flow(main_menu.flow, ["2", "1"], open=False, caller="+15550100")
    assert run.flows == ["after_hours"] and run.prompts[0] == "closed"
    assert run.callbacks[0]["number"] == "+15550100"
    assert run.queued == []


def test_the_routes_schedule_decides_at_the_time_of_the_call():
    office = from_dict({"timezone": "America/New_York", "hours": {"mon-fri": "09:00-17:00"}})
    monday_8am_ny = datetime(2026, 1, 5, 13, 0, tzinfo=timezone.utc)
    kw = {"schedules": {"office": office}, "route_schedule": "office"}
    assert run_flow(main_menu.flow, now=monday_8am_ny, **kw).flows[0] == "after_hours"
    assert run_flow(main_menu.flow, ["1", "1"], now=monday_8am_ny.replace(hour=15),
                    **kw).queued == ["support"]


def test_nobody_answers_so_the_caller_can_leave_a_message(tmp_path):
    run = run_flow(main_menu.flow, ["1", "1", "1", speak(12, then="#")],
                   queues={"support": QueueScript("timeout", wait=300)}, record_dir=tmp_path)
    assert "queue-timeout" in run.prompts and run.flows == ["after_hours:offer"]
    assert run.voicemails[0]["mailbox"] == "general"
    assert run.voicemails[0]["recording"].duration == pytest.approx(12.0)


def test_abandon_in_the_queue_ends_the_flow_without_a_survey():
    run = run_flow(main_menu.flow, ["1", "1", hangup(after=45)])
    assert run.ended == "caller hung up" and run.surveys == [] and run.flows == []
    assert run.duration == pytest.approx(3.0 + 45, abs=1)


def test_works_with_only_the_demo_queue():
    for script in (["1", "1"], ["1", "2"], ["1", "3", "2"], ["1", "0"]):
        run = run_flow(main_menu.flow, script, vars={"queue": "support"},
                       known_queues=["support"])
        assert run.queued == ["support"], script


# -- after hours ----------------------------------------------------------------------------

def test_voicemail(tmp_path):
    run = run_flow(after_hours.flow, ["1", speak(20, then="#")], vars={"mailbox": "sales"},
                   record_dir=tmp_path)
    assert run.prompts[:3] == ["closed", "after-hours-menu", "voicemail-prompt"]
    assert run.voicemails[0]["mailbox"] == "sales"
    assert run.vars["voicemail"] == "vm-1"
    assert "voicemail-saved" in run.prompts and run.hangup_cause == 200


def test_hanging_up_ends_the_message_and_it_is_still_filed(tmp_path):
    run = run_flow(after_hours.flow, ["1", hangup(after=15)], record_dir=tmp_path)
    assert run.voicemails[0]["recording"].ended_by == "hangup"
    assert run.ended == "caller hung up"


def test_an_empty_message_is_not_filed(tmp_path):
    run = run_flow(after_hours.flow, ["1", silence()], record_dir=tmp_path)
    assert run.voicemails == [] and "voicemail-empty" in run.prompts


def test_callback_on_the_callers_own_number():
    run = run_flow(after_hours.flow, ["2", "1"], caller="+4930555", vars={"queue": "sales"})
    assert run.said == ["plus four nine three zero five five five"]
    assert run.callbacks == [{"number": "+4930555", "queue": "sales",
                              "data": {"reason": "after_hours", "caller": "+4930555"}}]
    assert run.prompts[-2:] == ["callback-booked", "goodbye"]


def test_callback_on_another_number():
    run = run_flow(after_hours.flow, ["2", "2", "0301234567#"])
    assert run.callbacks[0]["number"] == "0301234567"


def test_anonymous_callers_are_asked_for_a_number_straight_away():
    run = run_flow(after_hours.flow, ["2", "123", "0301234567#"], caller="anonymous")
    assert "callback-number-is" not in run.prompts
    assert run.prompts.count("invalid") == 1          # 123 is too short for a phone number
    assert run.callbacks[0]["number"] == "0301234567"


def test_callback_booked_even_if_the_caller_hangs_up_on_the_confirmation():
    run = run_flow(after_hours.flow, ["2", "1", hangup(during="callback-booked")])
    assert len(run.callbacks) == 1 and run.ended == "caller hung up"


def test_no_choice_says_goodbye():
    run = run_flow(after_hours.flow)
    assert run.prompts[-1] == "goodbye" and run.hangup_cause == 200
    assert run.voicemails == run.callbacks == []


# -- survey ---------------------------------------------------------------------------------

def answered(score_script, **kw):
    return run_flow(survey.flow, score_script, **kw)


def test_survey_answer_is_recorded_even_during_the_question():
    run = answered([press("4", after=0.2)])
    assert run.surveys == [{"question": "satisfaction", "score": 4, "scale": 5}]
    assert run.prompts == ["survey-question", "survey-thanks"]


def test_survey_scale_comes_from_the_call_variables():
    run = answered([press("10", after=6)], vars={"survey_scale": "10"})
    assert run.surveys[0]["score"] == 10 and run.surveys[0]["scale"] == 10
    assert "ten" in run.said
    run = answered(["1"], vars={"survey_scale": "10"})   # 1, then the pause ends it
    assert run.surveys[0]["score"] == 1


def test_survey_retries_once_then_files_nothing():
    run = answered(["9", "1"])
    assert run.surveys[0]["score"] == 1 and "invalid" in run.prompts
    run = answered(["9", silence()])
    assert run.surveys == [] and run.prompts[-1] == "goodbye"


def test_survey_answer_is_kept_when_the_caller_hangs_up_on_the_thanks():
    run = answered(["3", hangup(during="survey-thanks")])
    assert run.surveys[0]["score"] == 3 and run.ended == "caller hung up"


@pytest.mark.parametrize("scale, satisfied", [
    (5, [4, 5]), (10, [9, 10]), (7, [6, 7]), (4, [3, 4]), (3, [3]), (2, [2]),
])
def test_satisfied_is_top_two_box(scale, satisfied):
    assert [s for s in range(1, scale + 1) if survey.is_satisfied(s, scale)] == satisfied


def test_bad_scale_is_a_clear_error():
    with pytest.raises(ValueError, match="survey_scale"):
        answered([], vars={"survey_scale": "eleven"})


# -- the demo's welcome flow ----------------------------------------------------------------

def test_welcome_still_works():
    run = run_flow(welcome.flow, ["2"], vars={"queue": "support", "queue_sales": "sales"})
    assert run.queued == ["sales"] and run.enqueues[0]["data"] == {"menu": "2"}
    run = run_flow(welcome.flow, [], vars={"queue": "support"})
    assert run.queued == ["support"] and run.prompts[-1] == "goodbye"


# -- every prompt has words ---------------------------------------------------------------

SCRIPTS = [[], ["1", "1", "4"], ["2", "1", "4"], ["2", "3", "1", "9", "0"], ["2", "9", "9", "9"],
           ["1", "3", "2"], ["2", "2", "1"]]


@pytest.mark.parametrize("module", SHIPPED, ids=lambda m: m.__name__)
@pytest.mark.parametrize("script", SCRIPTS, ids=str)
@pytest.mark.parametrize("is_open", [True, False])
def test_every_prompt_played_has_a_text_in_its_language(module, script, is_open, tmp_path):
    known: dict[str, set[str]] = {}
    for source in [CATALOGUE, *(m.PROMPTS for m in SHIPPED)]:
        for language, prompts in source.items():
            known.setdefault(language, set()).update(prompts)
    run = run_flow(module.flow, script, open=is_open, record_dir=tmp_path,
                   queues={"support": QueueScript("timeout")} if "9" in script else None)
    missing = [(lang, name) for lang, name in run.prompt_uses if name not in known.get(lang, ())]
    assert missing == []


def test_prompt_sets_have_the_same_names_in_every_language():
    for module in SHIPPED:
        assert set(module.PROMPTS["en"]) == set(module.PROMPTS["fr"]), module.__name__


# -- any caller at all ----------------------------------------------------------------------

_steps = st.one_of(
    st.text(alphabet="0123456789*#", min_size=1, max_size=4),
    st.builds(press, st.text(alphabet="0123456789*#", min_size=1, max_size=3),
              after=st.floats(0, 12)),
    st.builds(silence),
    st.builds(speak, st.floats(0, 200), st.sampled_from(["", "#"])),
    st.builds(hangup, after=st.floats(0, 30)),
)


@settings(max_examples=150, deadline=None)
@given(module=st.sampled_from(SHIPPED), script=st.lists(_steps, max_size=8),
       is_open=st.booleans(),
       queue=st.sampled_from(["answered", "timeout", "empty", "full"]),
       caller=st.sampled_from(["+15550100", "anonymous", ""]),
       scale=st.integers(2, 10))
def test_no_caller_can_break_a_shipped_flow(module, script, is_open, queue, caller, scale):
    # Whatever the caller does, the flow ends the call itself (or hands it
    # on): it never raises, never hangs, never drops a caller silently.
    with tempfile.TemporaryDirectory() as tmp:
        run = run_flow(module.flow, script, open=is_open, caller=caller, record_dir=tmp,
                       queues={"support": QueueScript(queue)},
                       vars={"survey_scale": str(scale)})
    assert run.ended in ("flow hung up", "transferred", "caller hung up"), run
    for survey_answer in run.surveys:
        assert 1 <= survey_answer["score"] <= survey_answer["scale"] == scale
