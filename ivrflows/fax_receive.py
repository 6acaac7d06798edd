"""A fax number: answer straight into receive mode.

::

    [[routes]]
    number = "350"
    flow = "fax_receive"
    fax = true

The pages are stored as TIFF and PDF with the result and delivered as
``[fax] receive_email`` / ``receive_webhook`` say.  Sets the call variables
``fax_id`` and ``fax_result`` (``ok`` or T.30's status text).
"""
from __future__ import annotations

from ivrflows.call import Call


async def flow(call: Call) -> None:
    await call.answer()
    result = await call.receive_fax()
    call.vars["fax_id"] = result.fax_id
    call.vars["fax_result"] = "ok" if result.ok else result.status_text
    await call.hangup()
