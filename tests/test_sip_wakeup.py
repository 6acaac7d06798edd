"""A SIP packet is handled when it arrives, not at the next idle poll: the
loop watches the SIP socket (sipagent/sip/endpoint.py).  With the idle poll
stretched to a minute, an OPTIONS must still be answered at once -- on a
poll-only endpoint it waits the whole minute."""
from __future__ import annotations

import asyncio

import pytest

from rawsip import SipSocket

pytestmark = pytest.mark.sip


def test_a_packet_wakes_the_endpoint_between_idle_polls(ports):
    from sipagent.sip.endpoint import SipEndpoint

    port = ports()

    async def go():
        ep = SipEndpoint(listen="127.0.0.1", port=port)
        ep.start()
        try:
            ep.idle_poll = 60.0
            ep.start_polling()
            await asyncio.sleep(0.2)           # the poll ran once and now sleeps
            with SipSocket(port) as sip:
                sip.send(sip.request("OPTIONS"))
                answers = await asyncio.to_thread(sip.answers, 3.0)
            assert [a.code for a in answers if a.code >= 200] == [200]
        finally:
            ep.destroy()

    asyncio.run(go())
