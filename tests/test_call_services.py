"""A SipCall gets everything it touches from its CallServices: no engine."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

sip_call = pytest.importorskip("sipagent.calls.sip_call")   # needs pjsua2

from sipagent.calls.services import CallServices  # noqa: E402


def test_a_call_built_from_services_alone_says_which_part_is_missing():
    services = CallServices(prompts=SimpleNamespace(language="fr"), queues=None, schedules={},
                            account=lambda: None, track_leg=None, run_flow=None, eventlog=None,
                            metrics=None, recordings_dir=Path("unused"), voicemail=None,
                            voicemail_notifier=None, fax=None)
    call = sip_call.SipCall(SimpleNamespace(is_ended=False), call_id="c1", caller="100",
                            called="200", headers={}, services=services,
                            route=SimpleNamespace(schedule=None), log=structlog.get_logger("t"))
    assert call.language == "fr" and call.is_open()
    with pytest.raises(LookupError, match="^voicemail is not configured on this engine$"):
        asyncio.run(call.voicemail_box("200"))
    with pytest.raises(LookupError, match="^fax is not set up on this engine$"):
        asyncio.run(call.fax_document("1"))
