"""Fax-on-demand: the caller picks documents by number and gets them by fax.

::

    [[routes]]
    number = "300"
    flow = "fax_on_demand"
    fax = true                          # fax-safe media from the first packet
    vars = { fax_mode = "both" }        # "one-call", "two-call" or "both"

What the caller hears::

    welcome, "enter the document number, then hash", the document's title
    unknown number           ->  "there is no document with that number" (3 tries)
    protected document       ->  "enter the PIN, then hash"; a wrong PIN 3 times: goodbye
    "1 for another document, 2 to finish" (up to MAX_DOCUMENTS)
    both modes               ->  "1 to receive on this line, 2 to send to another fax number"
    one-call                 ->  "press Start on your fax machine now", then the fax
    two-call                 ->  "enter the fax number, then hash", "your fax will be sent shortly"

One-call: the caller dialled from the handset of their fax machine; the
engine transmits on the same call once they press Start.  Two-call: the
documents go out later by a call of the engine's own (``[fax] dial``), with
retries; a caller may be on any phone.  Without ``[fax] dial`` the caller is
offered one-call only.

Call variables it sets: ``fax_documents`` (comma-separated numbers),
``fax_result`` (one-call: ``ok`` or T.30's status text) and ``fax_job``
(two-call: the job id).
"""
from __future__ import annotations

from ivrflows.call import Call
from ivrflows.fax_types import FaxUnavailable
from ivrflows.menu import choose

PROMPTS = {
    "en": {
        "fod-welcome": "Welcome to fax on demand.",
        "fod-enter-document": "Please enter the number of the document you want, then press hash.",
        "fod-no-such-document": "There is no document with that number.",
        "fod-enter-pin": "This document is protected. Please enter its PIN, then press hash.",
        "fod-wrong-pin": "That PIN is not correct.",
        "fod-added": "The document has been added.",
        "fod-another": "To add another document, press 1. To finish, press 2.",
        "fod-how": "To receive the documents on this line, press 1. "
                   "To have them sent to another fax number, press 2.",
        "fod-press-start": "Please press the Start button on your fax machine now.",
        "fod-enter-fax-number": "Please enter the fax number, then press hash.",
        "fod-queued": "Thank you. Your fax will be sent shortly. Goodbye.",
        "fod-two-call-off": "Sorry, we cannot send to another number. "
                            "You can receive the documents on this line.",
        "fod-nothing-chosen": "No document was chosen. Goodbye.",
    },
}

MAX_DOCUMENTS = 5
TRIES = 3


async def _pick(call: Call) -> str | None:
    """One document number the caller may have (PIN checked), or None."""
    for _ in range(TRIES):
        number = await call.gather("fod-enter-document", max_digits=10, timeout=8.0,
                                   inter_digit_timeout=4.0, valid=r"[0-9]{1,10}",
                                   no_input_prompt="no-input")
        if not number:
            return None
        document = await call.fax_document(number)
        if document is None:
            await call.play("fod-no-such-document")
            continue
        if document.title:
            await call.say(document.title)     # the caller hears they keyed the right one
        if not document.protected:
            return number
        for _ in range(TRIES):
            pin = await call.gather("fod-enter-pin", max_digits=12, timeout=8.0,
                                    inter_digit_timeout=4.0, valid=r"[0-9]{4,12}")
            if pin and await call.fax_unlock(number, pin):
                return number
            await call.play("fod-wrong-pin")
        return None
    return None


async def _choose_documents(call: Call) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < MAX_DOCUMENTS:
        number = await _pick(call)
        if number is None:
            break
        chosen.append(number)
        await call.play("fod-added")
        if len(chosen) == MAX_DOCUMENTS or await choose(call, "fod-another", ["1", "2"]) != "1":
            break
    return chosen


async def _two_call(call: Call, documents: list[str]) -> bool:
    """True once a job is queued; False sends the caller to one-call."""
    for _ in range(TRIES):
        number = await call.gather("fod-enter-fax-number", max_digits=20, timeout=10.0,
                                   inter_digit_timeout=4.0, valid=r"[0-9]{3,20}",
                                   invalid_prompt="invalid")
        if not number:
            continue
        try:
            call.vars["fax_job"] = await call.queue_fax(number, documents)
        except FaxUnavailable:
            await call.play("fod-two-call-off")
            return False
        await call.play("fod-queued")
        return True
    return False


async def flow(call: Call) -> None:
    await call.answer()
    await call.play("fod-welcome")
    documents = await _choose_documents(call)
    if not documents:
        await call.play("fod-nothing-chosen")
        await call.hangup()
        return
    call.vars["fax_documents"] = ",".join(documents)
    mode = call.vars.get("fax_mode", "both")
    if mode == "both":
        mode = "two-call" if await choose(call, "fod-how", ["1", "2"]) == "2" else "one-call"
    if mode == "two-call" and await _two_call(call, documents):
        await call.hangup()
        return
    await call.play("fod-press-start")
    result = await call.send_fax(documents)
    call.vars["fax_result"] = "ok" if result.ok else result.status_text
    await call.hangup()
