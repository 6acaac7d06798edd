"""Running one admitted call: its flow, a fax heard during it, and the
fallback when the flow fails (the engine's half that a call sees).

A mixin of ``process.Engine``, which owns what it uses: ``config``,
``call_services``, ``live_calls``, ``metrics``, ``eventlog``, ``flows``,
``prompts``, ``keypad``, ``supervisor_keypad`` and ``_moh``.
"""
from __future__ import annotations

import asyncio
import time

import structlog

from ivrflows.call import CallerHangup
from sipagent.calls.flow_library import FlowLoadError
from sipagent.sip import message as sip_message
from sipagent.tasks import cancel_and_wait

log = structlog.get_logger("sipagent.engine")

# A calling fax machine gives up about 35 s after it was answered without
# hearing a fax answer (T.30's timer T1): switching later than this is useless.
FAX_DETECT_WINDOW = 30.0


class CallFlows:
    # -- one call's flow -------------------------------------------------------------
    async def _run_call(self, leg, route, called: str, caller: str, headers: dict) -> None:
        from sipagent.calls.sip_call import SipCall

        call_id = headers.get("Call-ID") or headers.get("i") or leg.label
        leg.label = call_id
        clog = log.bind(call_id=call_id)
        call = SipCall(leg, call_id=call_id, caller=caller, called=called, headers=headers,
                       services=self.call_services, route=route, log=clog)
        call.vars.update(route.vars)
        if route.queue:
            call.vars["queue"] = route.queue
        if route.language:
            call.language = route.language
        clog.info("call routed", called=called, caller=caller, flow=route.flow)
        self.eventlog.call_record(call_id, start=time.time(), caller=caller, called=called,
                                  caller_name=sip_message.display_name(headers) or None)
        self.live_calls[call_id] = call
        try:
            if route.fax_detect:
                await self._run_flow_hearing_fax(call, route, clog)
            else:
                await self._run_flow(call, route.flow)
        except CallerHangup:
            clog.info("caller hung up", flow=route.flow)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.flow_errors.labels(route.flow).inc()
            if isinstance(exc, FlowLoadError):
                clog.error("flow cannot be loaded", flow=route.flow, error=str(exc))
            else:
                clog.exception("flow raised", flow=route.flow)
            await self._fallback(call, route, clog)
        finally:
            if self.live_calls.get(call_id) is call:
                del self.live_calls[call_id]
            leg.end(None if call.answered else 480)
            self.metrics.calls.labels("inbound").inc()
            if self.eventlog is not None:
                self.eventlog.call_record(call_id, end=time.time())

    def _feature(self, spec: str) -> bool:
        """Whether a route's flow is a built-in feature (agents' and
        supervisors' keypad numbers): never a consultation from an agent's phone."""
        return (self.keypad is not None and self.keypad.serves(spec)) or \
            (self.supervisor_keypad is not None and self.supervisor_keypad.serves(spec))

    async def _run_flow(self, call, spec: str) -> None:
        if self.keypad is not None and self.keypad.serves(spec):
            return await self.keypad.run(call, spec)
        if self.supervisor_keypad is not None and self.supervisor_keypad.serves(spec):
            return await self.supervisor_keypad.run(call, spec)
        flow = self.flows.get(spec)
        await flow(call)

    async def _run_flow_hearing_fax(self, call, route, clog) -> None:
        """The route's flow, while listening for a fax machine's calling
        tone; once heard, the flow is cut short and the call continues in
        ``route.fax_detect`` (say, fax_receive)."""
        flow = asyncio.ensure_future(self._run_flow(call, route.flow))
        heard = asyncio.ensure_future(self._hear_fax_tone(call.leg))
        try:
            await asyncio.wait([flow, heard], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(heard)
        if not flow.done() and not heard.cancelled() and heard.exception() is None \
                and heard.result():
            await cancel_and_wait(flow)
            clog.info("fax calling tone heard; the call continues as fax", flow=route.fax_detect)
            call.vars["fax_detected"] = "1"
            await self._run_flow(call, route.fax_detect)
            return
        await flow

    async def _hear_fax_tone(self, leg) -> bool:
        """Whether CNG is heard within FAX_DETECT_WINDOW of the call's start."""
        from sipagent.sip.fax_media import audio_slot
        from sipagent.mediaports.cng import FaxToneListener

        loop = asyncio.get_running_loop()
        deadline = loop.time() + FAX_DETECT_WINDOW
        try:
            await asyncio.wait_for(leg.media_ready.wait(), FAX_DETECT_WINDOW)
        except TimeoutError:
            return False
        slot = audio_slot(leg) if not leg.is_ended else None
        if slot is None:
            return False
        with FaxToneListener() as listener:
            listener.attach(slot)
            return await listener.wait(timeout=max(0.0, deadline - loop.time()))

    async def run_flow_spec(self, call, spec: str) -> None:
        """Run another flow on this call (goto_flow, a queue's exit target)."""
        await self._run_flow(call, spec)

    async def _fallback(self, call, route, clog) -> None:
        try:
            if route.fallback:
                await self._run_flow(call, route.fallback)
                return
            if not call.leg.is_ended:
                await call.answer()
                await call.play("sorry-error")
        except CallerHangup:
            pass
        except Exception:
            clog.exception("fallback failed", flow=route.fallback or "apology")

    def _hold_music(self, queue: str):
        from sipagent.media.playback import MusicOnHold

        q = self.config.queues.get(queue)
        path = q.moh if q is not None and q.moh else self.prompts.music_on_hold()
        moh = self._moh.get(str(path))
        if moh is None:
            moh = self._moh[str(path)] = MusicOnHold(path)
        return moh
