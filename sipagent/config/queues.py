"""The ``[queues.<name>]`` and ``[agents.<id>]`` sections: what the ACD
runs, and who answers (documented key by key in examples/sipacd.toml)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from sipagent.config.features import AgentNumber
from sipagent.config.values import (AgentUri, Count, FlowSpec, HeaderName, Name, NonEmptyStr,
                                    PositiveSeconds, Seconds, Section, Strategy, Target,
                                    WavFile, as_tuple, check_dtmf_key)
from sipagent.config.voicemail import PinHash


class QueueSection(Section):
    strategy: Strategy = "longest_idle"
    ring_timeout: PositiveSeconds = 15.0
    wrap_up: Seconds = 0.0
    max_len: Count = 0
    max_wait: Seconds = 0.0
    join_empty: bool = True
    leave_when_empty: bool = False
    # Consecutive unanswered offers before the agent is paused for them.
    autopause_after: Count = 0
    reject_delay: Seconds = 0.0
    weight: Count = 0
    moh: WavFile | None = None
    service_levels: Annotated[
        tuple[PositiveSeconds, ...], BeforeValidator(as_tuple), Field(min_length=1)
    ] = (20.0,)
    short_abandon: Seconds = 5.0
    announce_position_every: Seconds = 0.0
    # What the caller hears while waiting (sipagent/queue/hold.py).
    announce_first: NonEmptyStr | None = None
    announce_position_only_down: bool = True
    announce_ewt: bool = True
    periodic_prompts: Annotated[tuple[NonEmptyStr, ...], BeforeValidator(as_tuple)] = ()
    periodic_every: Seconds = 0.0
    exit_key: Annotated[str, AfterValidator(check_dtmf_key)] | None = None
    exit_flow: FlowSpec | None = None
    # Where callers go when the queue lets them go; unset: back to the flow.
    on_timeout: Target | None = None
    on_full: Target | None = None
    on_empty: Target | None = None
    # Callback in queue: keep the place, hang up, get called back.
    callback_key: Annotated[str, AfterValidator(check_dtmf_key)] | None = None
    callback_uri: Annotated[str, Field(pattern=r"^sips?:.*\{number\}.*@")] | None = None
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    callback_retry_delay: Seconds = 60.0
    # Who is rung first when a callback's turn comes (sipagent/queue/callback.py).
    callback_mode: Literal["agent_first", "caller_first"] = "agent_first"
    # The time-slot menu after the callback key: how many slots (0: no menu),
    # how long each, how far ahead the first, within which business hours.
    callback_slots: Annotated[int, Field(ge=0, le=8)] = 0
    callback_slot_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    callback_slot_lead: Annotated[int, Field(ge=0, le=1440)] = 15
    callback_schedule: Name | None = None
    caller_headers: dict[HeaderName, HeaderName] = {}
    skill_relax: Annotated[
        tuple[
            Annotated[tuple[PositiveSeconds, Annotated[int, Field(ge=1)]], BeforeValidator(as_tuple)],
            ...,
        ],
        BeforeValidator(as_tuple),
    ] = ()
    skill_any_after: Seconds = 0.0
    handle_time_hint: PositiveSeconds = 180.0
    # Talk-time limit (0: none): the agent hears a beep talk_limit_warning
    # seconds before it; at the limit the call ends, or goes to the target.
    talk_limit: Seconds = 0.0
    talk_limit_warning: Seconds = 10.0
    talk_limit_target: Target | None = None
    # Percent of connected calls recorded (0: none, 100: all), and a prompt
    # a caller to be recorded hears on joining (unset: none).
    recording: Annotated[float, Field(ge=0, le=100)] = 0.0
    recording_consent: NonEmptyStr | None = None
    # The priority a call transferred into this queue gets; unset: it keeps
    # its own (a high one puts transferred callers ahead of new ones).
    transfer_priority: int | None = None

    @field_validator("service_levels")
    @classmethod
    def _sorted_unique(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        # Each threshold becomes a histogram bucket edge; order and
        # duplicates carry no meaning, so normalise instead of complaining.
        return tuple(sorted(set(value)))


def _queue_list_to_penalties(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    dupes = sorted({q for q in value if isinstance(q, str) and value.count(q) > 1})
    if dupes:
        raise ValueError(f"queue listed twice: {', '.join(dupes)}")
    return {q: 0 for q in value} if all(isinstance(q, str) for q in value) else value


class AgentSection(Section):
    uri: AgentUri
    name: NonEmptyStr | None = None
    # queue -> penalty; agents with a lower penalty are offered calls first.
    queues: Annotated[dict[Name, Count], BeforeValidator(_queue_list_to_penalties)] = {}
    skills: dict[Name, Annotated[int, Field(ge=1, le=100)]] = {}
    wrap_up: Seconds | None = None
    auto_login: bool = True
    weight: Annotated[int, Field(ge=1)] = 1
    # Overrides the queues' talk_limit for this agent's calls (0: none).
    talk_limit: Seconds | None = None
    # Keypad feature numbers ([features]): what the agent keys in to say who
    # they are (unset: an all-digit agent id), and the PIN that proves it.
    number: AgentNumber | None = None
    pin: PinHash | None = None
