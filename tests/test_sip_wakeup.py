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


def test_a_burst_waits_in_the_socket_while_the_loop_is_busy(ports):
    """A thousand requests arrive while the loop does something else (here:
    nothing reads the socket until they are all sent); all are answered once
    it reads again.  Linux's default receive buffer holds about a hundred of
    them: the rest were dropped, and each drop would cost a retransmission
    0.5 s later (endpoint.SIP_RECEIVE_BUFFER)."""
    import socket
    import time

    from sipagent.sip.endpoint import SipEndpoint

    port = ports()
    burst = 1000

    async def go():
        ep = SipEndpoint(listen="127.0.0.1", port=port)
        ep.start()
        try:
            ep.start_polling()
            await asyncio.sleep(0.2)
            with SipSocket(port) as sip:
                sip.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                ids = [f"burst-{i}" for i in range(burst)]
                # The loop runs none of its callbacks (so pjsip reads
                # nothing) until this coroutine yields.
                for call_id in ids:
                    sip.send(sip.request("OPTIONS", call_id=call_id))

                def collect() -> set[str]:
                    answered: set[str] = set()
                    deadline = time.monotonic() + 20.0
                    sip.sock.settimeout(2.0)
                    while len(answered) < burst and time.monotonic() < deadline:
                        try:
                            data = sip.sock.recv(65535)
                        except socket.timeout:
                            break
                        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
                        if head.startswith("SIP/2.0 200"):
                            for line in head.split("\r\n"):
                                if line.lower().startswith(("call-id:", "i:")):
                                    answered.add(line.split(":", 1)[1].strip())
                    return answered

                answered = await asyncio.to_thread(collect)
            assert len(answered) == burst, f"{burst - len(answered)} of {burst} requests lost"
            assert ep.receive_buffer >= 2 << 20
        finally:
            ep.destroy()

    asyncio.run(go())
