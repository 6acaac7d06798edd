"""Flow authoring for sipacd.

A flow is a plain ``async def flow(call)``.  ``call`` implements
:class:`ivrflows.call.Call`; the engine passes a real SIP call, tests pass
the test kit's fake.  Flows import from here, never from ``sipagent``.
"""
from ivrflows.call import Call, CallerHangup, QueueOutcome

__all__ = ["Call", "CallerHangup", "QueueOutcome"]
