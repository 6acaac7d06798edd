"""The queue runtime survives an event its ACD core refuses: it logs it and
goes on (the logging itself once raised TypeError, structlog's message
argument being called ``event``)."""
from __future__ import annotations

import asyncio

import structlog

from acdcore import events as ev
from apikit import EngineApp


def test_an_event_the_core_refuses_is_logged_and_the_runtime_goes_on(tmp_path):
    async def go():
        engine = EngineApp(tmp_path)
        try:
            runtime = engine.queues
            with structlog.testing.capture_logs() as logged:
                # The core knows no agent "nobody": it raises, the runtime logs.
                runtime.feed(ev.AgentPaused(runtime.now(), "nobody", "lunch"))
            refused = [e for e in logged if e["event"] == "acd core rejected an event"]
            assert len(refused) == 1 and "nobody" in refused[0]["acd_event"]
            # And the runtime still works: a known agent logs in.
            before = runtime.scheduler.agent_state("alice")
            runtime.feed(ev.AgentLoggedIn(runtime.now(), "alice"))
            assert (before, runtime.scheduler.agent_state("alice")) == ("logged_out", "available")
        finally:
            engine.close()
    asyncio.run(go())


def test_the_runtime_runs_the_core_on_int_ids_and_sees_its_own(tmp_path):
    """Production's path: the runtime's str ids go through the core's id
    table (ints inside, on the compiled core), actions come back with the
    runtime's ids; a refused raw event is logged by name like any other."""
    from acdcore.scheduler import COMPILED, InternedScheduler

    async def go():
        engine = EngineApp(tmp_path)
        try:
            runtime = engine.queues
            assert type(runtime.scheduler) is InternedScheduler
            with structlog.testing.capture_logs() as logged:
                runtime.feed_raw(ev.EV_CALL_ENDED, runtime.now(), "no-such-call")
            refused = [e for e in logged if e["event"] == "acd core rejected an event"]
            assert [(e["acd_event"], e["call_id"]) for e in refused] == \
                [("CallEnded", "no-such-call")]
            queue = next(iter(runtime.settings))
            out = runtime.scheduler.handle_raw(ev.EV_CALL_ARRIVED, runtime.now(), "sip-1@x",
                                               None, None, queue, 0)
            assert all(a.call_id == "sip-1@x" for a in out)
            if COMPILED:
                key = runtime.scheduler.calls.key_of("sip-1@x")
                assert type(key) is int
                assert runtime.scheduler.core.queue_position(key) == \
                    runtime.scheduler.queue_position("sip-1@x")
        finally:
            engine.close()
    asyncio.run(go())


def test_a_dial_that_fails_here_is_not_offered_again_at_once(tmp_path):
    """pjsua refusing to dial (its call slots full) is not the phone's no:
    the offer is rejected after a back-off, so the core does not offer the
    call again straight away and spin on the failure."""
    from types import SimpleNamespace

    from sipagent.queue import runtime as runtime_module

    async def go():
        engine = EngineApp(tmp_path)
        try:
            runtime = engine.queues
            queue = next(iter(runtime.settings))
            runtime.entries["c1"] = SimpleNamespace(call_id="c1", caller="555", called="100",
                                                    queue=queue, callback=None, data={},
                                                    call=None)
            dials, fed = [], []

            def refuse(uri, **kw):
                dials.append(uri)
                raise RuntimeError("pjsua_call_make_call: Too many objects (PJ_ETOOMANY)")

            runtime.dial_out = refuse
            runtime.feed = fed.append
            assert runtime._dial_agent("c1", "alice") is None
            await asyncio.sleep(0.05)
            assert len(dials) == 1 and fed == []           # not at once
            await asyncio.sleep(runtime_module.LOCAL_DIAL_BACKOFF)
            assert [type(e).__name__ for e in fed] == ["OfferRejected"]
            assert (fed[0].call_id, fed[0].agent_id) == ("c1", "alice")
        finally:
            del runtime.entries["c1"]
            engine.close()
    asyncio.run(go())


def test_a_batch_sends_its_invites_and_cancels_before_it_writes_anything_down(tmp_path):
    """One event's actions: the INVITE to an agent leaves before the batch's
    bookkeeping (a wrap-up's end, an earlier offer's record), and a
    withdrawn offer's CANCEL still goes before a new INVITE to the same
    agent, in the core's order.  The records keep the core's order too."""
    from types import SimpleNamespace

    from acdcore import actions as act

    async def go():
        engine = EngineApp(tmp_path)
        try:
            runtime = engine.queues
            queue = next(iter(runtime.settings))
            happened = []
            for call_id in ("c0", "c1", "c2"):
                runtime.entries[call_id] = SimpleNamespace(
                    call_id=call_id, caller="555", called="100", queue=queue, callback=None,
                    data={}, call=None)

            def leg(name):
                return SimpleNamespace(end=lambda: happened.append(("cancel", name)))

            def dial(uri, *, label, headers):
                happened.append(("invite", label))
                return leg(label)

            runtime.dial_out = dial
            runtime.track_leg = lambda leg: None
            runtime.spawn = lambda coro: coro.close()
            runtime.stats = SimpleNamespace(
                offer=lambda q, t, call_id, agent_id: happened.append(("offer noted", call_id)),
                offer_lost=lambda q, t, call_id, agent_id, reason:
                    happened.append(("offer lost noted", call_id)),
                agent=lambda t, agent_id, kind, *rest: happened.append((kind, agent_id)))
            # (One agent is configured: the batch is not one the core would
            # make, but the runtime's order does not depend on the agents.)
            runtime.offers[("c0", "alice")] = leg("c0->alice")
            runtime._act([act.WrapUpEnded("alice"), act.Offer("c1", "alice"),
                          act.CancelOffer("c0", "alice", "answered_elsewhere"),
                          act.Offer("c2", "alice")])
            assert happened == [
                ("invite", "c1->alice"), ("cancel", "c0->alice"), ("invite", "c2->alice"),
                ("WRAPUP_END", "alice"), ("offer noted", "c1"), ("offer lost noted", "c0"),
                ("offer noted", "c2")]
            assert set(runtime.offers) == {("c1", "alice"), ("c2", "alice")}
        finally:
            runtime.offers.clear()
            for call_id in ("c0", "c1", "c2"):
                runtime.entries.pop(call_id, None)
            engine.close()
    asyncio.run(go())
