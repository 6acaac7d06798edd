"""The shipped fax flows on the test kit: choosing documents, PINs, one-call
and two-call, receive.  (Over SIP: tests/test_fax_engine_sip.py.)"""
from __future__ import annotations

import pytest

from ivrflows import fax_on_demand, fax_receive
from ivrflows.kit.fakefax import FakeFaxDocument, FakeFaxMachine
from ivrflows.fax_types import FaxRefused
from ivrflows.testing import hangup, run_flow, silence

LIBRARY = {"101": FakeFaxDocument("Price list", pages=2),
           "102": FakeFaxDocument("Internal memo", pages=1, pin="4711")}


def test_one_call_sends_the_chosen_document_on_the_same_line():
    run = run_flow(fax_on_demand.flow, ["101#", "2", "1"], fax_documents=LIBRARY)
    assert [f["documents"] for f in run.faxes] == ["101"]
    assert run.faxes[0]["result"].ok and run.faxes[0]["result"].pages == 2
    assert run.vars["fax_result"] == "ok" and run.vars["fax_documents"] == "101"
    # "Press Start" comes before the modem starts.
    verbs = [(e.verb, e.detail) for e in run.transcript if e.who == "flow"]
    assert verbs.index(("play", "fod-press-start")) < verbs.index(("send fax", "101"))
    assert run.ended == "flow hung up"
    assert "Price list" in run.said


def test_two_documents_go_as_one_fax():
    run = run_flow(fax_on_demand.flow, ["101#", "1", "102#", "4711#", "2", "1"],
                   fax_documents=LIBRARY)
    assert [f["documents"] for f in run.faxes] == ["101,102"]
    assert run.faxes[0]["result"].pages == 3


def test_a_protected_document_needs_its_pin():
    run = run_flow(fax_on_demand.flow, ["102#", "1111#", "2222#", "3333#"],
                   fax_documents=LIBRARY)
    assert run.faxes == [] and run.fax_jobs == []
    assert run.prompts.count("fod-wrong-pin") == 3
    assert "fod-nothing-chosen" in run.prompts


def test_an_unknown_number_is_said_and_asked_again():
    run = run_flow(fax_on_demand.flow, ["999#", "101#", "2", "1"], fax_documents=LIBRARY)
    assert "fod-no-such-document" in run.prompts
    assert [f["documents"] for f in run.faxes] == ["101"]


def test_two_call_queues_a_job_for_the_fax_number():
    run = run_flow(fax_on_demand.flow, ["102#", "4711#", "2", "2", "5550123#"],
                   fax_documents=LIBRARY)
    assert run.faxes == []
    assert run.fax_jobs == [{"id": "fax-job-1", "number": "5550123", "documents": ["102"]}]
    assert run.vars["fax_job"] == "fax-job-1"
    assert "fod-queued" in run.prompts


def test_without_two_call_the_caller_gets_one_call():
    run = run_flow(fax_on_demand.flow, ["101#", "2", "2", "5550123#"], fax_documents=LIBRARY,
                   fax_two_call=False)
    assert run.fax_jobs == [] and "fod-two-call-off" in run.prompts
    assert [f["documents"] for f in run.faxes] == ["101"]


def test_a_machine_that_hangs_up_mid_fax_leaves_a_failed_result():
    run = run_flow(fax_on_demand.flow, ["101#", "2", "1"], fax_documents=LIBRARY,
                   fax_machine=FakeFaxMachine(hangs_up_after=1))
    result = run.faxes[0]["result"]
    assert not result.ok and result.pages == 1
    assert run.ended == "caller hung up"


def test_the_kit_refuses_a_locked_document_like_the_engine():
    async def flow(call):
        await call.answer()
        await call.send_fax(["102"])

    with pytest.raises(FaxRefused) as refused:
        run_flow(flow, fax_documents=LIBRARY)
    assert refused.value.reason == "pin"


def test_receive_route_records_the_fax():
    run = run_flow(fax_receive.flow, [silence()])
    assert run.faxes[0]["verb"] == "receive fax" and run.vars["fax_result"] == "ok"
    assert run.vars["fax_id"] == "fax-1"


def test_caller_hanging_up_while_choosing_sends_nothing():
    run = run_flow(fax_on_demand.flow, ["10", hangup()], fax_documents=LIBRARY)
    assert run.faxes == [] and run.ended == "caller hung up"
