"""The post-call satisfaction survey: rate the call from 1 to N.

Runs after the agent hangs up, the caller still on the line
(``main_menu`` goes here when ``enqueue`` comes back ``answered``).  The
answer is filed with :meth:`ivrflows.Call.record_survey`, which the engine
stores with the call record: that is where the satisfaction and
participation KPIs come from (see ``KPI.md``).  No answer files nothing, so
participation counts only callers who really answered.

Call variables: ``survey_scale`` (2..10, default 5); ``survey_score`` is set
to the answer, so the call record shows it too.
"""
from __future__ import annotations

from ivrflows import Call, speech
from ivrflows.menu import choose

DEFAULT_SCALE = 5

PROMPTS = {
    "en": {
        "survey-question": "Before you go, please rate the call you just had. Press 1 if you "
                           "were very dissatisfied, up to",
        "survey-best": "if you were very satisfied.",
        "survey-thanks": "Thank you for your feedback. Goodbye.",
    },
    "fr": {
        "survey-question": "Avant de partir, merci d'évaluer votre appel. Appuyez sur 1 si "
                           "vous êtes très mécontent, jusqu'à",
        "survey-best": "si vous êtes très satisfait.",
        "survey-thanks": "Merci pour votre avis. Au revoir.",
    },
}


def is_satisfied(score: int, scale: int = DEFAULT_SCALE) -> bool:
    """Top-two-box counting (4 and 5 of 5, 9 and 10 of 10), the usual CSAT
    rule; on scales under 4 only the top answer.  The engine uses this for
    the satisfaction KPI, so a flow and a report never disagree."""
    return score >= (scale - 1 if scale >= 4 else scale)


def scale_of(call: Call) -> int:
    raw = call.vars.get("survey_scale", str(DEFAULT_SCALE))
    if not raw.isdigit() or not 2 <= int(raw) <= 10:
        raise ValueError(f"survey_scale must be a whole number from 2 to 10, not {raw!r}")
    return int(raw)


async def flow(call: Call) -> None:
    await call.answer()  # a no-op after a queue; makes the flow routable on its own
    scale = scale_of(call)
    score = await ask(call, scale)
    if score is None:
        await call.play("goodbye")
    else:
        await call.record_survey(score, scale=scale)
        call.vars["survey_score"] = str(score)
        await call.play("survey-thanks")
    await call.hangup()


async def ask(call: Call, scale: int = DEFAULT_SCALE, *, tries: int = 2) -> int | None:
    """The caller's score, or None when they gave none in ``tries`` tries."""
    for _ in range(tries):
        # Keys pressed during the question stop it and count as the answer.
        if await call.play("survey-question", barge_in=True) is None:
            if await call.say(speech.number(scale, call.language), barge_in=True) is None:
                await call.play("survey-best", barge_in=True)
        key = await choose(call, None, [str(n) for n in range(1, scale + 1)], tries=1,
                           invalid_prompt="invalid", no_input_prompt="no-input")
        if key is not None:
            return int(key)
    return None
