"""The fake call: every verb of :class:`ivrflows.call.Call`, on virtual time.

The twin of ``sipagent/calls/sip_call.py``: same verbs, but the caller is a script
and the media is a transcript.  Use it through
:func:`ivrflows.testing.run_flow`, which also provides the virtual clock.
The fake is strict where the engine is: it refuses to play before the call
is answered, to queue for an unknown queue, or to use an unknown schedule,
because a flow that does so passes its tests and fails on the first caller.
The mailbox and fax verbs are mixins: ``fakevoicemail.py``, ``fakefax.py``.
"""
from __future__ import annotations

import asyncio
import copy
import importlib
import wave
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Callable, Iterable, Mapping

from ivrflows.call import CallerHangup, Prompt, QueueOutcome, Recording, gather_with_tries
from ivrflows.kit.fakefax import FakeFaxDocument, FakeFaxMachine, FakeFaxVerbs
from ivrflows.kit.fakevoicemail import FakeVoicemailVerbs
from ivrflows.kit.mailbox import FakeMailbox
from ivrflows.kit.errors import FlowMistake
from ivrflows.kit.run import Entry, Flow, FlowRun
from ivrflows.kit.script import Hangup, Press, QueueScript, Silence, Speak, Step, press
from ivrflows.schedule import Schedule, is_open


# -- the fake call ---------------------------------------------------------------------

class FakeCall(FakeVoicemailVerbs, FakeFaxVerbs):
    def __init__(self, script: Iterable[Step], *, caller: str, called: str,
                 headers: Mapping[str, str], vars: Mapping[str, str], language: str,
                 now: datetime, open: bool | None, schedules: Mapping[str, Schedule],
                 route_schedule: str | None, queues: Mapping[str, QueueScript],
                 known_queues: Iterable[str] | None, transfers: Mapping[str, bool],
                 flows: Mapping[str, Flow] | Callable[[str], Flow] | None,
                 prompt_seconds: float | Mapping[str, float], record_dir: Path | None,
                 mailboxes: Mapping[str, FakeMailbox] | None = None,
                 fax_documents: Mapping[str, FakeFaxDocument] | None = None,
                 fax_machine: FakeFaxMachine | None = None, fax_two_call: bool = True):
        self.call_id = "fake-call-1"
        self.caller, self.called = caller, called
        self.headers = dict(headers)
        self.vars: dict[str, str] = dict(vars)
        self._language = language
        self._start = now
        self._open, self._schedules, self._route_schedule = open, schedules, route_schedule
        self._queues = queues
        self._known_queues = set(known_queues) if known_queues is not None else None
        self._transfer_answers, self._flows = transfers, flows
        self._prompt_seconds, self._record_dir = prompt_seconds, record_dir
        self._steps: deque[Step] = deque()   # taken one per listen
        self._timed: list[Press | Hangup] = []  # at a call time
        self._armed: list[Hangup] = []          # when a prompt starts
        for step in (press(s) if isinstance(s, str) else s for s in script):
            if getattr(step, "at", None) is not None:
                self._timed.append(step)  # type: ignore[arg-type]
            elif isinstance(step, Hangup) and step.during:
                self._armed.append(step)
            else:
                self._steps.append(step)
        self._talk = 0.0                      # how long the current step's caller talks
        self._keys: deque[str] = deque()
        self._poke = asyncio.Event()          # a key arrived or the call ended
        self._gone: str | None = None         # why the call is no longer the flow's
        self._caller_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.answered = self.early_media = False
        self._result = FlowRun([], vars=self.vars)
        # Known boxes are strict (an unknown one is a mistake); without any,
        # every box springs into existence empty, as the old kit behaved.
        self._strict_boxes = mailboxes is not None
        self._result.mailboxes = {k: copy.deepcopy(v) for k, v in (mailboxes or {}).items()}
        self._opened: set[str] = set()       # boxes the caller logged into
        self._fax_library = dict(fax_documents or {})
        self._fax_machine = fax_machine or FakeFaxMachine()
        self._fax_two_call = fax_two_call
        self._fax_unlocked: set[str] = set()

    @property
    def language(self) -> str:
        return self._language

    @language.setter
    def language(self, value: str) -> None:
        # A property only so that a language switch shows in the transcript.
        if value != self._language:
            self._log("flow", "language", value)
        self._language = value

    # -- the kit's side --------------------------------------------------------------
    async def run(self, flow: Flow, raise_errors: bool) -> FlowRun:
        loop = asyncio.get_running_loop()
        for step in self._timed:
            loop.call_at(step.at, self._start_aside, step)  # type: ignore[arg-type]
        try:
            await flow(self)
            self._log("flow", "return")
        except CallerHangup:
            self._result.ended = self._gone or "caller hung up"
            self._log("flow", "ended", f"by CallerHangup ({self._result.ended})")
        except Exception as exc:
            self._log("flow", "raised", f"{type(exc).__name__}: {exc}")
            if raise_errors:
                raise
            self._result.ended = "raised"
        finally:
            for t in [*self._tasks, *([self._caller_task] if self._caller_task else [])]:
                t.cancel()
        if self._result.ended == "returned" and self._gone:
            self._result.ended = self._gone
        self._result.language = self.language
        return self._result

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _log(self, who: str, verb: str, detail: str = "") -> None:
        self._result.transcript.append(Entry(round(self._now(), 3), who, verb, detail))

    def _check(self) -> None:
        if self._gone:
            raise CallerHangup(self.call_id)

    def _need_answer(self, verb: str) -> None:
        self._check()
        if not (self.answered or self.early_media):
            raise FlowMistake(f"{verb} before answer: call 'await call.answer()' first "
                              "(or answer(early_media=True))")

    def _end(self, why: str) -> None:
        if not self._gone:
            self._gone = why
            self._poke.set()

    # -- the caller ------------------------------------------------------------------
    def _listen(self) -> None:
        """The flow listens: the caller takes the next step, unless still busy."""
        if self._keys or (self._caller_task and not self._caller_task.done()):
            return
        self._start_step(self._steps.popleft() if self._steps else Silence())

    def _start_step(self, step: Step) -> None:
        if self._gone:
            return
        self._talk = step.seconds if isinstance(step, Speak) else \
            step.after if isinstance(step, (Press, Hangup)) else 0.0
        if isinstance(step, Silence):
            return
        self._caller_task = asyncio.get_running_loop().create_task(self._act(step))

    def _start_aside(self, step: Step) -> None:
        """A timed or prompt-triggered step: runs beside the scripted ones."""
        if not self._gone:
            task = asyncio.get_running_loop().create_task(self._act(step))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _act(self, step: Step) -> None:
        if isinstance(step, Hangup):
            await asyncio.sleep(step.after)
            self._log("caller", "hangup")
            self._end("caller hung up")
            return
        keys, pause, gap = ((step.keys, step.after, step.gap) if isinstance(step, Press)
                            else (step.then, step.seconds, 0.3))  # type: ignore[union-attr]
        if isinstance(step, Press) and step.at is not None:
            pause = 0.0   # already started at its time
        await asyncio.sleep(pause)
        for i, key in enumerate(keys):
            if self._gone:
                return
            if i:
                await asyncio.sleep(gap)
            self._log("caller", "press", key)
            self._keys.append(key)
            self._poke.set()

    def _arm(self, name: str) -> None:
        for step in [s for s in self._armed if s.during == name]:
            self._armed.remove(step)
            self._start_aside(Hangup(step.after))

    # -- waiting ---------------------------------------------------------------------
    async def _pause(self, seconds: float) -> None:
        await self._key_within(seconds, interrupt=False)

    async def _key_within(self, seconds: float, *, interrupt: bool = True,
                          take: bool = True) -> str | None:
        """The first key within ``seconds`` (None if none); raises on hang-up."""
        deadline = self._now() + seconds
        while True:
            self._check()
            if interrupt and self._keys:
                return self._keys.popleft() if take else self._keys[0]
            left = deadline - self._now()
            if left <= 0:
                return None
            self._poke.clear()
            try:
                await asyncio.wait_for(self._poke.wait(), left)
            except TimeoutError:
                pass

    def _duration(self, name: str) -> float:
        if isinstance(self._prompt_seconds, Mapping):
            return self._prompt_seconds.get(name, self._prompt_seconds.get("*", 2.0))
        return self._prompt_seconds

    async def _hear(self, verb: str, name: str, seconds: float, barge_in: bool) -> str | None:
        self._log("flow", verb, name)
        if verb == "play":
            self._result.prompt_uses.append((self.language, name))
        self._arm(name)
        key = await self._key_within(seconds, interrupt=barge_in, take=False)
        if key is not None:
            self._log("flow", "barge-in", f"{name} stopped by key {key}")
        return key

    # -- the line --------------------------------------------------------------------
    async def answer(self, *, early_media: bool = False) -> None:
        self._check()
        if self.answered:
            return
        self._log("flow", "answer", "183 early media" if early_media else "200 OK")
        self.answered = not early_media
        self.early_media = early_media

    async def hangup(self, cause: int = 200) -> None:
        if self._gone:
            return
        self._log("flow", "hangup", str(cause))
        self._result.hangup_cause = cause
        self._end("flow hung up")

    # -- saying things ---------------------------------------------------------------
    async def play(self, *prompts: str, barge_in: bool = False) -> str | None:
        if barge_in:
            self._check()
            self._listen()
        return await self._play(prompts, barge_in)

    async def _play(self, prompts: Iterable[str], barge_in: bool) -> str | None:
        for name in prompts:
            self._need_answer(f"play({name!r})")
            key = await self._hear("play", name, self._duration(name), barge_in)
            if key is not None:
                return key
        return None

    async def say(self, text: str, *, language: str | None = None, voice: str | None = None,
                  barge_in: bool = False) -> str | None:
        self._need_answer("say")
        lang = language or self.language
        shown = text if lang == self.language and voice is None else \
            f"{text} [{lang}{'/' + voice if voice else ''}]"
        if barge_in:
            self._listen()
        # About the pace of espeak-ng at 150 words a minute.
        return await self._hear("say", shown, max(0.5, 0.065 * len(text)), barge_in)

    # -- listening -------------------------------------------------------------------
    async def gather(self, prompt: Prompt | None = None, *, max_digits: int = 1,
                     timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                     terminators: str = "#", min_digits: int = 1, tries: int = 1,
                     valid: str | None = None, invalid_prompt: str | None = None,
                     no_input_prompt: str | None = None, barge_in: bool = True) -> str:
        if max_digits < 1 or min_digits > max_digits:
            raise ValueError(f"gather: need 1 <= min_digits <= max_digits, "
                             f"got {min_digits} and {max_digits}")

        async def attempt(prompt: Prompt | None) -> str:
            self._need_answer("gather")
            names = [prompt] if isinstance(prompt, str) else list(prompt or ())
            self._log("flow", "gather", f"{max_digits} digit{'s' if max_digits > 1 else ''}, "
                      f"{timeout:g}s" + (f", valid {valid}" if valid else ""))
            if barge_in:
                self._listen()
                await self._play(names, barge_in=True)
            else:
                await self._play(names, barge_in=False)
                self._keys.clear()
                self._listen()
            digits, wait = "", timeout
            while len(digits) < max_digits:
                key = await self._key_within(wait)
                if key is None or key in terminators:
                    break
                digits, wait = digits + key, inter_digit_timeout
            self._log("flow", "digits", repr(digits) if digits else "no input")
            return digits

        return await gather_with_tries(attempt, self.play, prompt, tries=tries,
                                       min_digits=min_digits, valid=valid,
                                       invalid_prompt=invalid_prompt,
                                       no_input_prompt=no_input_prompt)

    async def record(self, prompt: Prompt | None = None, *, beep: bool = True,
                     max_length: float = 120.0, silence: float = 5.0,
                     terminators: str = "#") -> Recording:
        names = [prompt] if isinstance(prompt, str) else list(prompt or ())
        await self.play(*names)
        self._need_answer("record")
        if beep:
            self._log("flow", "beep")
        self._keys.clear()
        self._log("flow", "record", f"max {max_length:g}s, silence {silence:g}s")
        self._listen()
        start, talk = self._now(), self._talk
        ended_by, length = "max_length", max_length
        while True:
            quiet_at = start + talk + silence - self._now()
            left = min(quiet_at, start + max_length - self._now())
            try:
                key = await self._key_within(left)
            except CallerHangup:
                if self._gone != "caller hung up":
                    raise
                ended_by, length = "hangup", self._now() - start
                break
            if key is None:
                if quiet_at <= left:
                    ended_by, length = "silence", min(talk, max_length)
                break
            if key in terminators:
                ended_by, length = "terminator", self._now() - start
                break
        recording = Recording(self._write_wav(length), round(length, 3), ended_by)  # type: ignore[arg-type]
        self._log("flow", "recorded", f"{length:.1f}s, ended by {ended_by}")
        self._result.recordings.append(recording)
        return recording

    def _write_wav(self, seconds: float) -> str:
        folder = self._record_dir or Path(mkdtemp(prefix="ivrflows-rec-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.call_id}-{len(self._result.recordings) + 1}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * int(8000 * seconds))
        return str(path)

    # -- where the call goes ---------------------------------------------------------
    async def enqueue(self, queue: str, *, priority: int = 0,
                      skills: Mapping[str, int] | None = None,
                      data: Mapping[str, str] | None = None) -> QueueOutcome:
        self._need_answer("enqueue")
        if self._known_queues is not None and queue not in self._known_queues:
            raise FlowMistake(f"no queue named {queue!r} (known: "
                              f"{', '.join(sorted(self._known_queues)) or 'none'})")
        data = dict(data or {})
        self._result.enqueues.append({"queue": queue, "priority": priority,
                                     "skills": dict(skills or {}), "data": data})
        extra = "".join([f" priority {priority}" if priority else "",
                         f" skills {dict(skills)}" if skills else "", f" data {data}" if data else ""])
        self._log("flow", "enqueue", queue + extra)
        plan = self._queues.get(queue, QueueScript())
        start = self._now()
        # A queue asks the caller nothing, so it takes a step only when the
        # step can mean something here: an exit key, or abandoning (hangup).
        if plan.exit_key or (self._steps and isinstance(self._steps[0], Hangup)):
            self._listen()
        while (left := start + plan.wait - self._now()) > 0:
            key = await self._key_within(left)
            if key is None:
                break
            if key == plan.exit_key:
                self._log("queue", "exit_key", f"{queue} after {self._now() - start:g}s")
                return QueueOutcome("exit_key", queue, self._now() - start, data=data)
            self._listen()
        wait = self._now() - start
        if plan.result != "answered":
            self._log("queue", plan.result, f"{queue} after {wait:g}s")
            return QueueOutcome(plan.result, queue, wait, data=data)
        self._log("queue", "answered", f"{queue} by {plan.agent} after {wait:g}s")
        await self._pause(plan.talk)
        self._log("queue", "hung up", f"{plan.agent} after {plan.talk:g}s talk")
        return QueueOutcome("answered", queue, wait, agent=plan.agent, data=data)

    async def transfer(self, target: str) -> bool:
        self._check()
        self._log("flow", "transfer", target)
        ok = self._transfer_answers.get(target, True)
        if ok:
            self._end("transferred")
        else:
            self._log("flow", "transfer failed", target)
        return ok

    async def goto_flow(self, flow: str) -> None:
        self._check()
        self._log("flow", "goto", flow)
        await self._resolve(flow)(self)

    def _resolve(self, spec: str) -> Flow:
        if callable(self._flows):
            return self._flows(spec)
        if self._flows is not None and spec in self._flows:
            return self._flows[spec]
        module, _, name = spec.partition(":")
        try:
            return getattr(importlib.import_module(f"ivrflows.{module}"), name or "flow")
        except (ImportError, AttributeError):
            raise FlowMistake(f"no flow {spec!r} (pass flows={{...}} to run_flow)") from None

    # -- the business ----------------------------------------------------------------
    def is_open(self, schedule: str | None = None) -> bool:
        name = schedule or self._route_schedule
        if self._open is not None:
            answer = self._open
        elif name is None:
            answer = True
        elif name not in self._schedules:
            raise FlowMistake(f"no schedule named {name!r} (known: "
                              f"{', '.join(sorted(self._schedules)) or 'none'})")
        else:
            answer = is_open(self._schedules[name], self.now())
        where = name or "no schedule"
        self._log("flow", "is_open", f"{where}: {'open' if answer else 'closed'}"
                  + (" (forced)" if self._open is not None else ""))
        return answer

    def now(self) -> datetime:
        """The wall-clock time in the fake world: the start plus call time."""
        return self._start + timedelta(seconds=self._now())

    async def request_callback(self, number: str, *, queue: str,
                               data: Mapping[str, str] | None = None,
                               at: datetime | None = None) -> str:
        callback_id = f"cb-{len(self._result.callbacks) + 1}"
        booking = {"number": number, "queue": queue, "data": dict(data or {})}
        if at is not None:
            booking["at"] = at
        self._result.callbacks.append(booking)
        self._log("flow", "callback", f"{number} in {queue}" + (f" at {at.isoformat()}" if at else ""))
        return callback_id

    async def record_survey(self, score: int, *, scale: int = 5,
                            question: str = "satisfaction") -> None:
        if not 1 <= score <= scale:
            raise ValueError(f"survey score {score} outside 1..{scale}")
        self._result.surveys.append({"question": question, "score": score, "scale": scale})
        self._log("flow", "survey", f"{question}: {score}/{scale}")
