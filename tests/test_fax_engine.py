"""The fax engine without SIP: two spandsp terminals back to back in memory.

This is the reference the SIP fax test is judged against; if this fails the
problem is in the engine (or spandsp settings), not in the call's audio.
"""

from __future__ import annotations

import asyncio

import pytest

from faxkit import assert_pixel_identical, make_document

# Not importorskip: a missing build must fail the suite, not hide it.
from sipagent.mediaports.fax import FaxSession  # noqa: E402
from simphones.fax_memory import transfer_in_memory  # noqa: E402


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    return make_document(tmp_path_factory.mktemp("fax") / "doc.tif", pages=3)


@pytest.mark.parametrize("codec,ecm", [("alaw", True), ("ulaw", True), ("alaw", False)])
def test_multipage_transfer_is_pixel_exact(document, tmp_path, codec, ecm):
    rx_path = tmp_path / "rx.tif"
    tx = FaxSession("send", str(document), calling=True, ident="+1 555 0100", ecm=ecm)
    rx = FaxSession("receive", str(rx_path), calling=False, ident="+1 555 0199", ecm=ecm)
    with tx, rx:
        line_seconds = transfer_in_memory(tx, rx, codec=codec)
        sent, got = tx.poll(), rx.poll()
    assert sent is not None and got is not None, f"no phase E after {line_seconds} s of line audio"
    assert sent["ok"] and got["ok"], (sent, got)
    assert sent["pages"] == got["pages"] == 3
    assert sent["remote_ident"] == "+1 555 0199" and got["remote_ident"] == "+1 555 0100"
    assert got["ecm"] is ecm
    assert got["bit_rate"] == 14400
    assert got["resolution"] == "R8/fine"
    assert 0 < got["line_seconds"] <= line_seconds
    assert_pixel_identical(document, rx_path)


def test_answerer_can_be_the_sender(document, tmp_path):
    # Fax-on-demand: the engine answers the SIP call yet transmits.
    rx_path = tmp_path / "rx.tif"
    with FaxSession("receive", str(rx_path), calling=True) as rx, \
            FaxSession("send", str(document), calling=False) as tx:
        transfer_in_memory(rx, tx)
        assert tx.poll()["ok"] and rx.poll()["ok"]
    assert_pixel_identical(document, rx_path)


def test_slipped_samples_break_the_transfer(document, tmp_path):
    # One sample lost per second of audio (what RTP hops between two
    # processes did before the jitter buffer was pinned) is enough to fail
    # training: this is why the SIP path must deliver every sample.
    with FaxSession("send", str(document), calling=True) as tx, \
            FaxSession("receive", str(tmp_path / "rx.tif"), calling=False) as rx:
        transfer_in_memory(tx, rx, splice_every=8000, splice_len=1)
        assert not tx.poll()["ok"]
        assert not rx.poll()["ok"]


def test_a_closed_session_refuses_work(tmp_path, document):
    with FaxSession("send", str(document), calling=True) as tx, \
            FaxSession("receive", str(tmp_path / "rx.tif"), calling=False) as rx:
        rx.close()
        with pytest.raises(RuntimeError, match="closed"):
            transfer_in_memory(tx, rx)
        with pytest.raises(RuntimeError, match="closed"):
            rx.poll()


def test_result_reaches_the_event_loop_through_the_eventfd(document, tmp_path):
    tx = FaxSession("send", str(document), calling=True)
    rx = FaxSession("receive", str(tmp_path / "rx.tif"), calling=False)

    async def main():
        waiter = asyncio.ensure_future(rx.wait(timeout=5))
        await asyncio.sleep(0)
        assert not waiter.done() and rx.poll() is None
        # The transfer itself runs in another (non-Python-visible) thread,
        # as the bridge's clock thread would.
        await asyncio.get_running_loop().run_in_executor(None, lambda: transfer_in_memory(tx, rx))
        return await waiter

    with tx, rx:
        result = asyncio.run(main())
    assert result["ok"] and result["pages"] == 3


def test_bad_arguments_fail_at_once(tmp_path):
    with pytest.raises(FileNotFoundError):
        FaxSession("send", str(tmp_path / "missing.tif"), calling=True)
    with pytest.raises(FileNotFoundError):
        FaxSession("receive", str(tmp_path / "no" / "such" / "dir.tif"), calling=False)
    with pytest.raises(ValueError):
        FaxSession("poll", str(tmp_path / "x.tif"), calling=True)
    with pytest.raises(ValueError):
        FaxSession("receive", str(tmp_path / "x.tif"), calling=True, ident="x" * 21)


def test_a_resumed_send_starts_at_the_first_unconfirmed_page(document, tmp_path):
    # A two-call job that failed after page 1 was confirmed sends pages 2..3
    # on its retry; pages_tx counts only this attempt's confirmed pages.
    from sipagent.mediaports.tiffpages import read_pages

    rx_path = tmp_path / "rx.tif"
    with FaxSession("send", str(document), calling=True, start_page=1) as tx, \
            FaxSession("receive", str(rx_path), calling=False) as rx:
        transfer_in_memory(tx, rx)
        sent, got = tx.poll(), rx.poll()
    assert sent["ok"] and got["ok"], (sent, got)
    assert sent["pages"] == got["pages"] == 2
    assert read_pages(rx_path) == read_pages(document)[1:]


def test_terminate_reports_a_dropped_call_with_the_pages_so_far(document, tmp_path):
    # The far end hangs up mid-transfer: the session still yields a result.
    with FaxSession("send", str(document), calling=True) as tx, \
            FaxSession("receive", str(tmp_path / "rx.tif"), calling=False) as rx:
        transfer_in_memory(tx, rx, max_seconds=50.0)   # page 1 confirmed, page 2 on the line
        assert tx.poll() is None
        tx.terminate()
        sent = tx.poll()
    assert sent is not None and not sent["ok"]
    assert "dropped" in sent["status_text"].lower(), sent
    assert sent["pages"] == 1
