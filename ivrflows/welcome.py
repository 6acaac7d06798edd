"""The demo's front door: greet, take one key, queue the caller.

Key 1 (or no key) goes to the route's queue; 2 goes to "sales" when that
queue exists in the configuration, else to the same queue.
"""
from ivrflows import Call


async def flow(call: Call) -> None:
    await call.answer()
    digit = await call.gather("welcome", max_digits=1, timeout=4.0)
    call.vars["menu"] = digit or "none"
    queue = call.vars.get("queue", "support")
    if digit == "2":
        queue = call.vars.get("queue_sales", queue)
    outcome = await call.enqueue(queue, data={"menu": call.vars["menu"]})
    if outcome.answered:
        await call.play("goodbye")
    elif outcome.result == "empty":
        await call.play("no-agents")
    else:
        await call.play("queue-timeout")
    await call.hangup()
