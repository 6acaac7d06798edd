"""Taking a voicemail message: greeting, beep, record, review, file.

``deposit(call, box)`` is what :meth:`ivrflows.Call.voicemail` runs; call it
from any flow (a queue's overflow, "press 1 to leave a message", an agent
who did not answer).  ``flow`` is the same for a route whose only job is
voicemail::

    [[routes]]
    number = "200"
    flow = "voicemail"
    vars = { mailbox = "200" }          # default: the called number

Reaching it from elsewhere (the route's ``vars`` give the box)::

    [queues.support]
    on_timeout = "flow:voicemail"       # overflow after max_wait
    exit_key = "1"                      # "press 1 to leave a message"
    exit_flow = "voicemail"
    # an agent's own line that rings out: flow = "voicemail:busy" when the
    # agent was on a call, "voicemail" (unavailable) otherwise

    # in a flow: await call.voicemail(call.vars["mailbox"])

What the caller hears::

    box full                 ->  "the mailbox is full", goodbye; nothing recorded
    greeting                 ->  the temporary greeting if recorded, else the
                                 unavailable/busy one, else the default text
                                 (with the recorded name if there is one)
    beep, record             ->  until #, the box's max length, or quiet
    review (after # or quiet)->  1 listen, 2 record again, 3 keep, 4 keep as urgent
    too short                ->  discarded: "we did not hear a message"

A caller who hangs up while recording or while reviewing keeps the
message: hanging up is how most callers end a voicemail.

Call variables it reads (``flow``): ``mailbox``, ``voicemail_greeting``
(``unavailable`` or ``busy``).  It sets ``voicemail`` to the message id.
"""
from __future__ import annotations

from ivrflows import speech
from ivrflows.call import (GREETING_KINDS, Call, CallerHangup, MailboxFull, MessageTooShort,
                           Recording, VoicemailBox)
from ivrflows.menu import choose

PROMPTS = {
    "en": {
        "vm-unavailable": "is not available to take your call.",
        "vm-busy": "is on another call.",
        "vm-the-mailbox-of": "The person at extension",
        "vm-leave-message": "Please leave your message after the tone. Press hash when you "
                            "have finished.",
        "vm-review": "To listen to your message, press 1. To record it again, press 2. "
                     "To send it, press 3. To send it as urgent, press 4.",
        "vm-saved": "Your message has been saved. Goodbye.",
        "vm-too-short": "We did not hear a message. Goodbye.",
        "vm-box-full": "Sorry, this mailbox is full and cannot take any more messages. "
                       "Goodbye.",
    },
    "fr": {
        "vm-unavailable": "n'est pas disponible pour le moment.",
        "vm-busy": "est déjà en ligne.",
        "vm-the-mailbox-of": "La personne au poste",
        "vm-leave-message": "Laissez votre message après le bip. Appuyez sur dièse pour "
                            "terminer.",
        "vm-review": "Pour écouter votre message, appuyez sur 1. Pour le réenregistrer, "
                     "appuyez sur 2. Pour l'envoyer, appuyez sur 3. Pour l'envoyer en "
                     "urgent, appuyez sur 4.",
        "vm-saved": "Votre message a été enregistré. Au revoir.",
        "vm-too-short": "Nous n'avons pas entendu de message. Au revoir.",
        "vm-box-full": "Désolé, cette messagerie est pleine. Au revoir.",
    },
}

# How many times the caller may record again before the last take is kept:
# a caller stuck re-recording forever would hold a line for nothing.
MAX_TAKES = 5


async def flow(call: Call) -> None:
    await call.answer()
    box = call.vars.get("mailbox") or call.called
    message = await deposit(call, box, greeting=call.vars.get("voicemail_greeting"))
    if message:
        call.vars["voicemail"] = message
    await call.hangup()


async def busy(call: Call) -> None:
    """As :func:`flow`, with the box's busy greeting."""
    call.vars.setdefault("voicemail_greeting", "busy")
    await flow(call)


async def deposit(call: Call, box: str, greeting: str | None = None, *,
                  review: bool = True) -> str | None:
    """Take a message for ``box``; returns its id, or None when nothing was
    filed.  ``greeting``: ``unavailable`` (default) or ``busy`` picks the
    box's greeting of that kind; anything else is a prompt played instead."""
    info = await call.voicemail_box(box)
    if info.full:
        # Said before recording: a caller who talks for two minutes into a
        # full box and loses the message is worse off than one told at once.
        await call.play("vm-box-full")
        return None
    await _greet(call, info, greeting)
    takes = 0
    while True:
        takes += 1
        recording = await call.record("vm-leave-message", beep=True,
                                      max_length=info.max_length, silence=info.silence)
        if recording.duration < info.min_length:
            # Handed to the engine all the same: it is the one that refuses
            # (and counts) a short message, and removes the recording's file.
            return await _file(call, box, recording, urgent=False)
        if not review or recording.ended_by == "hangup" or takes >= MAX_TAKES:
            return await _file(call, box, recording, urgent=False)
        choice = await _review(call, box, recording)
        if choice == "again":
            continue
        return await _file(call, box, recording, urgent=choice == "urgent")


async def _greet(call: Call, info: VoicemailBox, greeting: str | None) -> None:
    kind = greeting or "unavailable"
    if kind not in GREETING_KINDS:
        await call.play(kind)           # the flow brought its own prompt
        return
    # A temporary greeting ("I am away until Monday") wins over the others,
    # as in every voicemail system callers know.
    recorded = info.greetings.get("temporary") or info.greetings.get(kind)
    if recorded:
        await call.play(recorded, barge_in=True)
        return
    name = info.greetings.get("name")
    if name:
        await call.play(name)
    else:
        await call.play("vm-the-mailbox-of")
        await call.say(speech.digits(info.number, call.language))
    await call.play("vm-busy" if kind == "busy" else "vm-unavailable")


async def _review(call: Call, box: str, recording: Recording) -> str:
    """'keep', 'urgent' or 'again'.  Hanging up or saying nothing keeps it."""
    try:
        while True:
            choice = await choose(call, "vm-review", ["1", "2", "3", "4"], tries=2)
            if choice == "1":
                await call.play(recording.path, barge_in=True)
                continue
            return {"2": "again", "4": "urgent"}.get(choice or "3", "keep")
    except CallerHangup:
        # The message was complete before the review started: file it, then
        # let the hang-up end the flow as usual.
        await _file_quietly(call, box, recording)
        raise


async def _file(call: Call, box: str, recording: Recording, *, urgent: bool) -> str | None:
    try:
        message = await call.leave_voicemail(recording, mailbox=box, urgent=urgent)
    except MailboxFull:
        # Filled up by another caller while this one was recording.
        await call.play("vm-box-full")
        return None
    except MessageTooShort:
        return await _discard(call, recording)
    if recording.ended_by != "hangup":
        await call.play("vm-saved")
    return message


async def _file_quietly(call: Call, box: str, recording: Recording) -> None:
    try:
        await call.leave_voicemail(recording, mailbox=box)
    except (MailboxFull, MessageTooShort):
        pass


async def _discard(call: Call, recording: Recording) -> None:
    if recording.ended_by != "hangup":
        await call.play("vm-too-short")
    return None
