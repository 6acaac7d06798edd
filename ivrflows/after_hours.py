"""After hours: say we are closed, then offer a voicemail or a callback.

``flow`` is for a route (or ``main_menu``) when the schedule is closed;
``offer`` is the voicemail/callback choice alone, for callers nobody could
answer while open (``call.goto_flow("after_hours:offer")``).

Call variables it reads: ``mailbox`` (default ``general``), ``queue`` (where
the callback is queued, default ``support``), ``voicemail_max`` (seconds,
default 120).
"""
from __future__ import annotations

from ivrflows import Call, speech
from ivrflows.call import MailboxFull, MessageTooShort
from ivrflows.menu import choose

PROMPTS = {
    "en": {
        "closed": "Our contact centre is closed right now.",
        "after-hours-menu": "To leave a message, press 1. To be called back when we open, "
                            "press 2.",
        "voicemail-prompt": "Please leave your message after the tone. Press hash when you "
                            "have finished.",
        "voicemail-saved": "Your message has been saved. We will get back to you.",
        "voicemail-empty": "We did not hear a message.",
        "callback-number-is": "We will call you back on",
        "callback-confirm": "To confirm this number, press 1. To give another number, press 2.",
        "callback-enter-number": "Please enter your phone number, followed by hash.",
        "callback-booked": "Thank you. We will call you back as soon as we open.",
    },
    "fr": {
        "closed": "Notre centre de contact est actuellement fermé.",
        "after-hours-menu": "Pour laisser un message, appuyez sur 1. Pour être rappelé à "
                            "l'ouverture, appuyez sur 2.",
        "voicemail-prompt": "Laissez votre message après le bip. Appuyez sur dièse pour terminer.",
        "voicemail-saved": "Votre message a été enregistré. Nous vous recontacterons.",
        "voicemail-empty": "Nous n'avons pas entendu de message.",
        "callback-number-is": "Nous vous rappellerons au",
        "callback-confirm": "Pour confirmer ce numéro, appuyez sur 1. Pour donner un autre "
                            "numéro, appuyez sur 2.",
        "callback-enter-number": "Veuillez saisir votre numéro de téléphone, suivi de dièse.",
        "callback-booked": "Merci. Nous vous rappellerons dès notre ouverture.",
    },
}


async def flow(call: Call) -> None:
    await call.answer()
    await call.play("closed")
    await offer(call)


async def offer(call: Call) -> None:
    choice = await choose(call, "after-hours-menu", ["1", "2"], tries=2)
    if choice == "1":
        await leave_message(call)
    elif choice == "2":
        await offer_callback(call)
    else:
        await call.play("goodbye")
    await call.hangup()


async def leave_message(call: Call) -> None:
    recording = await call.record("voicemail-prompt", beep=True, silence=5.0,
                                  max_length=float(call.vars.get("voicemail_max", "120")))
    if recording.empty:
        # Also the caller who hung up at the beep: nothing worth filing.
        await call.play("voicemail-empty", "goodbye")
        return
    # Filed before anything else is played: record() returns normally when the
    # caller hangs up to end the message, and the next verb would raise.
    try:
        call.vars["voicemail"] = await call.leave_voicemail(
            recording, mailbox=call.vars.get("mailbox", "general"))
    except MessageTooShort:
        # Shorter than the box's minimum: the engine discarded it.
        await call.play("voicemail-empty", "goodbye")
        return
    except MailboxFull:
        await call.play("vm-box-full")
        return
    await call.play("voicemail-saved", "goodbye")


async def offer_callback(call: Call) -> None:
    number = call.caller if call.caller.lstrip("+").isdigit() else ""
    if number:
        await call.play("callback-number-is")
        await call.say(speech.digits(number, call.language))
        if await choose(call, "callback-confirm", ["1", "2"], tries=2) != "1":
            number = ""
    if not number:
        number = await call.gather("callback-enter-number", min_digits=6, max_digits=15,
                                   timeout=8.0, inter_digit_timeout=4.0, tries=2,
                                   invalid_prompt="invalid", no_input_prompt="no-input")
        if not number:
            await call.play("goodbye")
            return
    # Booked before the confirmation plays: a caller who hangs up on it still asked.
    await call.request_callback(number, queue=call.vars.get("queue", "support"),
                                data={"reason": "after_hours", "caller": call.caller})
    await call.play("callback-booked", "goodbye")
