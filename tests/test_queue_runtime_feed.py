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
