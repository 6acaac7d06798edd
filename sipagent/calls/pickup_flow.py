"""Call pickup from the agent's phone: the built-in flow behind two feature numbers.

``[features] pickup`` (``*8`` by default) picks up the oldest call ringing
in any queue the agent serves; ``directed_pickup`` (``**``) the call ringing
at one agent, named by its keypad number: dialled as one number
(``**1002``, what phones do; it needs a route that sends such numbers here,
see examples/sipacd.toml) or keyed in after ``**`` and hash.

The picking agent is the one whose phone calls (the From user is the user
of exactly one agent's ``uri``, as for the keypad commands); no PIN is
asked, and from any other phone the pickup is refused.  The engine answers
the call first, so it can speak if there is nothing to pick up, then hands
this very leg to the queue (:class:`sipagent.queue.pickup.CallPickup`): it
becomes the agent's leg of the conversation, and this flow only waits for
the talk to end.  Who wins two pickups of one call is the ACD core's
decision (acdcore/states.py, "Pickup").
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from sipagent.queue.runtime import QueueRuntime

PICKUP_COMMANDS = ("pickup", "directed_pickup")
NUMBER_DIGITS = 12
INTER_DIGIT_TIMEOUT = 4.0


class PhonePickup:
    def __init__(self, by_phone: Mapping[str, object], by_number: Mapping[str, object],
                 queues: QueueRuntime, *, directed_prefix: str, digit_timeout: float):
        """``by_phone``: From user -> agent, ``by_number``: keypad number ->
        agent (objects with an ``agent_id``)."""
        self._by_phone, self._by_number = by_phone, by_number
        self.queues = queues
        self.directed_prefix = directed_prefix
        self.digit_timeout = digit_timeout

    async def run(self, call, command: str) -> None:
        await call.answer()
        pickup = self.queues.pickup
        agent = self._by_phone.get(call.caller or "")
        if agent is None:
            pickup.count("refused", None, None, why=f"not an agent's phone: {call.caller!r}")
            await call.play("pickup-not-allowed")
            return await call.hangup()
        if command == "directed_pickup":
            target = self._by_number.get(await self._ringing_number(call))
            call_id = pickup.call_ringing_at(target.agent_id) if target is not None else None
        else:
            call_id = pickup.group_call(agent.agent_id)
        if call_id is None:
            pickup.count("nothing", None, agent.agent_id)
            result = "nothing"
        else:
            # No await between finding the call and taking it: nothing else runs.
            result = pickup.take(call_id, agent.agent_id, call.leg)
        if result != "picked_up":
            await call.play("pickup-nothing" if result == "nothing" else "pickup-not-allowed")
            return await call.hangup()
        await call.leg.ended   # the conversation owns the leg now

    async def _ringing_number(self, call) -> str:
        """The ringing agent's number: the rest of the dialled number, or keyed in."""
        called, prefix = call.called or "", self.directed_prefix
        if called.startswith(prefix) and len(called) > len(prefix):
            return called[len(prefix):]
        return await call.gather("pickup-enter-number", max_digits=NUMBER_DIGITS,
                                 timeout=self.digit_timeout,
                                 inter_digit_timeout=INTER_DIGIT_TIMEOUT, tries=2,
                                 no_input_prompt="agent-no-input")
