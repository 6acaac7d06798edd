"""The engine process: starts and stops everything, admits or refuses
INVITEs (allow-list, capacity), and owns every pjsua2 object so that all
of them are gone before the library is destroyed.  Running an admitted
call's flow is ``call_flows``.
"""
from __future__ import annotations

import asyncio
import gc
import time
from typing import TYPE_CHECKING

import structlog

from acdcore.model import QueueConfig
from sipagent.sip import message as sip_message
from sipagent.queue.agent_admin import AgentAdmin, acd_config, agent_line, open_people
from sipagent.queue.runtime import QueueRuntime
from sipagent.sip.endpoint import SipEndpoint
from sipagent.fax.metrics import FaxMetrics
from sipagent.calls.agent_keypad import AgentKeypad
from sipagent.calls.supervisor_keypad import SupervisorKeypad
from sipagent.calls.flow_library import FlowLibrary
from sipagent.calls.services import CallServices
from sipagent.sip.leg import CallLeg
from sipagent.sip.rejections import RejectionLog
from sipagent.loop_watchdog import LoopWatchdog
from sipagent.engine.loop_priority import set_loop_priority
from sipagent.metrics import EngineMetrics
from sipagent.tasks import cancel_and_wait
from sipagent.media.prompts import PromptLibrary
from sipagent.voicemail.metrics import VoicemailMetrics
from sipagent.engine.call_flows import CallFlows

if TYPE_CHECKING:
    from sipagent.fax.runtime import FaxRuntime
    from sipagent.voicemail.runtime import VoicemailRuntime

log = structlog.get_logger("sipagent.engine")


def uses_fax(config) -> bool:
    """Whether this process carries fax: a fax route or two-call sending."""
    return any(r.fax or r.fax_detect for r in config.routes) or config.fax.dial is not None


def parse_invite(whole_msg: str) -> tuple[str, str, dict[str, str]]:
    """(called user, caller user, headers) from an INVITE's text."""
    fields = sip_message.headers(whole_msg)
    caller = sip_message.uri_user(fields.get("From") or fields.get("f") or "")
    return sip_message.request_user(whole_msg), caller, fields


class Engine(CallFlows):
    def __init__(self, config):
        self.config = config
        thresholds = {t for q in config.queues.values() for t in (*q.service_levels, q.short_abandon)}
        self.metrics = EngineMetrics(thresholds)
        self.metrics.declare_queues(config.queues)
        # Every refusal is counted; only the first of a kind and a periodic
        # summary are logged, so a flood cannot flood the log.
        self.rejections = RejectionLog(lambda reason: self.metrics.sip_rejected.labels(reason).inc())
        self.sip = SipEndpoint(listen=str(config.sip.listen), port=config.sip.port,
                               transports=config.sip.transports, codecs=config.sip.codecs,
                               user_agent=config.sip.user_agent,
                               pjsip_level=config.log.pjsip_level,
                               concealment=not uses_fax(config),
                               allow=config.trunk.allow, on_rejected=self._refused,
                               on_refer=self._refer)
        self.metrics.add_live_gauges(self._live)
        self.prompts = PromptLibrary(config.flows.prompts_dir, config.flows.language)
        self.flows = FlowLibrary(config.flows.dir, on_reload=self._flow_reloaded,
                                 on_prompts=self.prompts.add_texts)
        self.legs: set = set()
        self.account = None
        self.queues: QueueRuntime | None = None
        self.keypad: AgentKeypad | None = None   # feature numbers, from start() to stop()
        self.supervisor_keypad: SupervisorKeypad | None = None   # ditto, the monitor number
        self._calls: set[asyncio.Task] = set()
        self.live_calls: dict[str, object] = {}   # call id -> SipCall, while its flow runs
        self._moh: dict[str, object] = {}
        self._accepting = False
        self.capacity = config.sip.max_calls
        self.people = None           # console users, sessions, agent records: start() to stop()
        self.agent_admin = None      # run-time agent changes (queue/agent_admin.py), ditto
        self.inbound: set = set()
        self.eventlog = None
        self.events = None           # the public event stream (store/event_stream.py), ditto
        self.cluster = None          # this node's leases, with [cluster] (cluster/node.py), ditto
        self._webhooks = None        # its webhook deliverer, ditto
        self.callback_store = None   # pending callbacks on disk, from start() to stop()
        self.conversations = None    # conversation recordings (queue/recordings.py), ditto
        self._sweeper: asyncio.Task | None = None
        self.watchdog = None
        self.schedules = dict(config.schedules)
        self.recordings_dir = config.data.dir / "recordings"
        self.call_services: CallServices | None = None  # what calls touch, start() to stop()
        self._voicemail: VoicemailRuntime | None = None  # from start() to stop()
        self.voicemail_metrics = VoicemailMetrics(self.metrics.registry)
        self.voicemail_metrics.watch_usage(lambda: self.voicemail)
        self._fax: FaxRuntime | None = None              # from start() to stop()
        self.fax_metrics = FaxMetrics(self.metrics.registry)
        self.fax_metrics.watch_jobs(lambda: self._fax.job_gauges() if self._fax else None)
        CallLeg.on_t38_rejected = self.fax_metrics.t38_rejected.inc
        # call.voicemail() runs the shipped deposit flow from any flow, so its
        # prompts must have texts even when no route names the file; a flows
        # folder's own voicemail.py, loaded later, still has the last word.
        from ivrflows import voicemail as voicemail_flow, voicemail_retrieval
        self.prompts.add_texts(voicemail_flow.PROMPTS)
        self.prompts.add_texts(voicemail_retrieval.PROMPTS)

    # -- voicemail and fax as the HTTP API and the CLI read them: the store,
    # notifier, FaxService (with its dialer) and the API's hook for new fax jobs;
    # None outside start() to stop() (and the hook also without two-call fax).
    voicemail = property(lambda self: self._voicemail and self._voicemail.store)
    voicemail_notifier = property(lambda self: self._voicemail and self._voicemail.notifier)
    fax = property(lambda self: self._fax and self._fax.service)
    fax_store = property(lambda self: self._fax and self._fax.store)
    fax_notifier = property(lambda self: self._fax and self._fax.notifier)
    fax_dialer_wake = property(lambda self: self._fax and self._fax.dialer
                               and self._fax.dialer.wake)

    # -- start / stop ----------------------------------------------------------
    async def start(self) -> None:
        from sipagent.sip.account import TrunkAccount

        from sipagent.fax.runtime import FaxRuntime
        from sipagent.store.eventlog import HEARTBEAT_INTERVAL, EventLog
        from sipagent.store.event_stream import EventStream
        from sipagent.store.webhook_delivery import WebhookDeliverer
        from sipagent.store.callbacks import CallbackStore
        from sipagent.media.recording import clean_stray_recordings
        from sipagent.queue.recordings import Recordings
        from sipagent.voicemail.runtime import VoicemailRuntime

        self.config.data.dir.mkdir(parents=True, exist_ok=True)
        place = self.config.data.place
        self.eventlog = EventLog(place, heartbeat_interval=HEARTBEAT_INTERVAL,
                                 node=self.config.event_node)
        # Before the close-out below: what it closes is published too.
        self.events = EventStream(self.eventlog, node=self.config.event_node)
        stray = clean_stray_recordings(self.recordings_dir)
        rec = self.config.recording
        self.conversations = Recordings(rec.dir or self.config.data.dir / "conversations",
                                        retention_days=rec.retention_days)
        stray += self.conversations.clean_strays()
        if stray:
            log.warning("removed half-written recordings of a previous run", count=stray)
        download_base = f"http://{self.config.http.listen}:{self.config.http.port}"
        vm = self.config.voicemail
        self._voicemail = await VoicemailRuntime.open(
            place, vm, vm.mailboxes(self.config.mailboxes),
            self.voicemail_metrics, download_base=download_base)
        self._fax = await FaxRuntime.open(
            place, self.config.fax, vm, self.fax_metrics,
            download_base=download_base, account=lambda: self.account, track_leg=self.track,
            schedules=self.schedules)
        # Calls, records and logins a crash left open are closed (engine_restart)
        # at the previous run's last heartbeat, before this run logs anything.
        await asyncio.to_thread(self.eventlog.close_dangling)
        made = await asyncio.to_thread(self.prompts.ensure_catalogue)
        if made:
            log.info("prompts rendered", count=made, dir=str(self.prompts.dir))
        self.sip.start()
        self.account = TrunkAccount.open(self.sip, self.config, self._incoming)
        agents = await asyncio.to_thread(self._open_people)
        self.queues = QueueRuntime(
            [self._queue_config(n, q) for n, q in self.config.queues.items()],
            [acd_config(a) for a in agents.values()],
            {n: agent_line(a) for n, a in agents.items()},
            settings=dict(self.config.queues), account_provider=lambda: self.account,
            hold_music=self._hold_music, prompts=self.prompts, metrics=self.metrics,
            track_leg=self.track, run_flow=self.run_flow_spec, eventlog=self.eventlog,
            transfer=self.config.transfer, monitor=self.config.monitor,
            recordings=self.conversations, call_keys=self.config.call_keys)
        self.queues.outbound.configure(self.config.outbound, self.config.sip,
                                       self.config.trunk.registration)
        # A node of several logs agents in as their partitions come to it.
        self.queues.start(log_in=self.config.cluster is None)
        ec = self.config.events
        self._webhooks = WebhookDeliverer(
            self.events, self.config.data.place, [w.subscription() for w in ec.webhooks],
            queues_of=self.agent_queues, timeout=ec.webhook_timeout, retry_base=ec.retry_base,
            retry_max=ec.retry_max)
        await self._webhooks.start()
        self.agent_admin = AgentAdmin(self.queues, self.people.agents,
                                      events=getattr(self, "events", None),
                                      max_agents=self.capacity - 1)
        self._sweeper = asyncio.get_running_loop().create_task(
            self.conversations.keep_sweeping())
        self.callback_store = await asyncio.to_thread(CallbackStore, self.config.data.place)
        # A node of several takes up the callbacks of its partitions as they
        # come to it (engine/cluster_node.py), not every pending one.
        pending = [] if self.config.cluster is not None else \
            await asyncio.to_thread(self.callback_store.pending)
        self.queues.callbacks.attach(self.callback_store, self.schedules, self.prompts, pending)
        self.queues.operations.supervisors = self.config.supervisor_directory()
        self._keypads(agents)
        self.agent_admin.on_change = self._keypads    # numbers and PINs of admin changes
        self.call_services = CallServices(
            prompts=self.prompts, queues=self.queues, schedules=self.schedules,
            account=lambda: self.account, track_leg=self.track, run_flow=self.run_flow_spec,
            eventlog=self.eventlog, metrics=self.metrics, recordings_dir=self.recordings_dir,
            voicemail=self.voicemail, voicemail_notifier=self.voicemail_notifier,
            fax=self.fax)
        if self.fax.dialer is not None:
            self.fax.dialer.start()
        if self.config.cluster is not None:
            from sipagent.engine.cluster_node import join_cluster

            self.cluster = await join_cluster(self, agents, HEARTBEAT_INTERVAL)
        self.sip.start_polling()
        self.watchdog = LoopWatchdog(self.config.flows.dir,
                                     on_stall=self.metrics.loop_stalls.inc)
        self.watchdog.start()
        set_loop_priority(self.config.sip.loop_priority)   # after start's threads: they keep theirs
        self._accepting = True
        # What start made lives as long as the engine: out of the collector's
        # sight (until stop), so that its full collections under load scan
        # only what the calls made.  benchmarks/load.py at 50 calls/s: the
        # longest full collection 164 -> 77 ms, dispatch p99 3.6-4.2 -> 2.8 ms.
        gc.collect()
        gc.freeze()
        log.info("engine ready", sip=f"{self.config.sip.listen}:{self.config.sip.port}",
                 capacity=self.capacity, queues=list(self.config.queues),
                 agents=len(self.config.agents))

    async def stop(self) -> None:
        """Hang up live calls, release every pjsua2 object, destroy the library."""
        self._accepting = False
        if self.fax is not None and self.fax.dialer is not None:
            self.fax.dialer.halt()          # no new outbound fax calls from here on
        if self.watchdog is not None:
            self.watchdog.stop()
        log.info("engine stopping", live_legs=len(self.legs))
        if self.cluster is not None:     # hand the partitions over before the calls end
            await self.cluster.stop()
            self.cluster = None
        for leg in list(self.legs):
            leg.end()
        if self.queues:
            self.queues.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0
        while self.legs and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await cancel_and_wait(*self._calls)
        self.call_services = None
        if self.fax is not None and self.fax.dialer is not None:
            await self.fax.dialer.stop()
        await self.sip.pump(0.1)  # let recorders and players finish their last frames
        if self.conversations is not None:
            await self.conversations.settle()
            await cancel_and_wait(self._sweeper)
        self.legs.clear()
        self.queues = None
        self.supervisor_keypad = None
        if self.keypad is not None:
            self.keypad.close()
            self.keypad = None
        for moh in self._moh.values():
            moh.release()
        self._moh.clear()
        self.account = None
        # Back in the collector's sight (start froze them): whatever of start's
        # pjsua2 objects sits in a cycle goes now, before the library does.
        gc.unfreeze()
        gc.collect()
        voicemail, fax, self._voicemail, self._fax = self._voicemail, self._fax, None, None
        if voicemail is not None:
            await voicemail.close()
        if fax is not None:
            await fax.close()
        if self.callback_store is not None:   # after the queues: their last changes
            await asyncio.to_thread(self.callback_store.close)
            self.callback_store = None
        self.agent_admin = None
        if self.people is not None:
            await asyncio.to_thread(self.people.close)
            self.people = None
        if self._webhooks is not None:
            await self._webhooks.stop()
            self._webhooks = None
        if self.eventlog is not None:
            await asyncio.to_thread(self.eventlog.close)
            self.eventlog = None
        if self.events is not None:      # after the log's last commit reached it
            self.events.close()
        # A Call destroyed after libDestroy aborts the process (pjlib assertion).
        # Legs still referenced now (seen when a flow was cut short by shutdown)
        # are disowned: their C++ objects are left to process exit.
        stray = CallLeg.disown_all()
        if stray:
            log.warning("call legs still referenced at shutdown were disowned", count=stray)
        self.sip.destroy()
        self.rejections.close()
        log.info("engine stopped")

    @property
    def inbound_limit(self) -> int:
        """Legs callers may use: all but one per agent (agents change at run time)."""
        agents = len(self.queues.lines) if self.queues else len(self.config.agents)
        return self.capacity - agents

    def _keypads(self, agents: dict) -> None:
        """The feature numbers' flows, for the running agents (at start, and
        again after each admin change: a new agent's number and PIN work at once)."""
        settings = self.config.keypad_settings(agents)
        if settings is None:
            return
        if self.keypad is None:
            self.keypad = AgentKeypad.open(self.config.data.place, settings, self.queues,
                                           self.metrics)
        else:     # the same PIN lockout store
            self.keypad = AgentKeypad(settings, self.queues, self.keypad.lockout, self.metrics)
        self.supervisor_keypad = SupervisorKeypad(self.config.supervisor_keypad_settings(agents),
                                                  self.queues.operations, self.keypad.lockout)

    def _open_people(self) -> dict:
        """The people store (``self.people``); the agents to run."""
        self.people, agents = open_people(self.config)
        return agents

    # -- admission ----------------------------------------------------------------
    def _incoming(self, leg, rdata) -> None:
        """Called from pjsua2's onIncomingCall with a fresh leg; decides at once
        but answers from the loop (never from inside the callback)."""
        self.track(leg)
        src = rdata.srcAddress.rsplit(":", 1)[0].strip("[]")
        called, caller, headers = parse_invite(rdata.wholeMsg)
        loop = asyncio.get_running_loop()
        if not self.config.trunk.allows(src):
            # The request guard refuses these before pjsua; kept as a second lock.
            self.rejections.rejected("forbidden", src, "INVITE from a source not allowed",
                                     called=called)
            loop.call_soon(leg.end, 403)
            return
        if not sip_message.offers_audio(rdata.wholeMsg, self.config.sip.codecs):
            self.rejections.rejected("no_media", src, "INVITE offers no audio the engine takes",
                                     called=called)
            loop.call_soon(leg.end, 488)
            return
        # Callers may use every leg but one per agent: with waiting callers
        # filling all of them, no agent could be rung and nobody would leave.
        self.inbound.add(leg)
        leg.ended.add_done_callback(lambda _f: self.inbound.discard(leg))
        if not self._accepting or len(self.inbound) > self.inbound_limit \
                or len(self.legs) > self.capacity:
            self.rejections.rejected("capacity", src, "at capacity; refusing call",
                                     legs=len(self.legs) - 1, called=called)
            loop.call_soon(leg.end, 503, {"Retry-After": str(self.config.sip.retry_after)})
            return
        route = self.config.route_for(called)
        consulting = self.queues.operations.consulting_agent(caller) if self.queues else None
        if consulting is not None and not (route and self._feature(route.flow)):
            # The agent's own phone, on a queue call, dials out: a consultation.
            task = loop.create_task(self.queues.operations.phone_consult(consulting, leg, called))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            return
        if route is None:
            self.rejections.rejected("no_route", src, "no route for the called number",
                                     called=called, caller=caller)
            loop.call_soon(leg.end, 404)
            return
        if route.fax or route.fax_detect:
            leg.use_fax_media(self.fax.jitter_policy())   # before the answer makes the stream
        task = loop.create_task(self._run_call(leg, route, called, caller, headers))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def _refer(self, handle: int, sip_call_id: str, refer_to: str) -> int:
        """A phone's REFER (sipagent/sip/refer.pyx): the queue runtime's to take."""
        if self.queues is None:
            return 503
        return self.queues.operations.phone_refer(handle, sip_call_id, refer_to)

    def _refused(self, reason: str, method: str, source: str) -> None:
        """The request guard refused a request (it has answered already)."""
        self.rejections.rejected(reason, source, "SIP request refused", method=method)

    def track(self, leg) -> None:
        """Count a leg toward capacity and keep it referenced until it ends."""
        self.legs.add(leg)
        loop = asyncio.get_running_loop()
        leg.ended.add_done_callback(lambda _f: loop.call_soon(self.legs.discard, leg))

    # -- helpers -------------------------------------------------------------------------
    def _live(self) -> dict:
        snap = self.queues.snapshot() if self.queues else {"waiting": {}, "agents": {}}
        windows = list(self.queues.stats.window_gauges(time.time())) if self.queues else []
        # A node of several exports the live figures of the queues it runs.
        runs = None if self.config.cluster is None else \
            set() if self.cluster is None else self.cluster.queues_run()
        return {"active_calls": len(self.legs), "capacity": self.capacity, "windows": windows,
                "runs": runs, **snap}

    def agent_queues(self, agent_id: str) -> list[str]:
        """The queues an agent serves (for event filters; any thread)."""
        queues = self.queues
        return queues.agent_queues(agent_id) if queues is not None else []

    def _flow_reloaded(self, spec: str, ok: bool) -> None:
        self.metrics.flow_reloads.labels("ok" if ok else "failed").inc()

    @staticmethod
    def _queue_config(name: str, q) -> QueueConfig:
        return QueueConfig(name=name, strategy=q.strategy, ring_timeout=q.ring_timeout,
                           wrap_up=q.wrap_up, max_len=q.max_len, max_wait=q.max_wait,
                           join_empty=q.join_empty, leave_when_empty=q.leave_when_empty,
                           weight=q.weight, autopause_after=q.autopause_after,
                           reject_delay=q.reject_delay, skill_relax=q.skill_relax,
                           skill_any_after=q.skill_any_after,
                           handle_time_hint=q.handle_time_hint)
