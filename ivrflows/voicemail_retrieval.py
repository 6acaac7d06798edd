"""The owner's voicemail line: log in with a PIN, hear and manage messages.

Route it in the config; with ``mailbox`` in the route's variables the box
number is not asked (a per-owner line), otherwise it is::

    [[routes]]
    number = "*98"
    flow = "voicemail_retrieval"

What the owner gets::

    box number, PIN          ->  3 tries a call; the engine locks the box for a
                                 while after too many wrong PINs in a row
    "you have N new and M saved messages"
    main menu                ->  1 new messages, 2 saved messages,
                                 3 greetings, 4 change PIN, 9 end
      each message           ->  played (a key stops it), then
                                 1 repeat, 2 envelope (who, when, how long),
                                 3 call the caller back, 4 previous, 6 next,
                                 7 delete, 9 save, * main menu
      greetings              ->  1 unavailable, 2 busy, 3 your name,
                                 4 temporary, 5 remove the temporary one,
                                 * main menu; each recording can be reviewed
      change PIN             ->  new PIN twice, 4 to 12 digits

Call variables it reads: ``mailbox``, ``timezone`` (for the envelope's time,
default UTC).
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivrflows import speech
from ivrflows.call import Call, GreetingKind, VoicemailFolder, VoicemailMessage
from ivrflows.menu import choose

PROMPTS = {
    "en": {
        "vm-enter-box": "Please enter your mailbox number, followed by hash.",
        "vm-enter-pin": "Please enter your PIN, followed by hash.",
        "vm-login-incorrect": "Sorry, that mailbox and PIN do not match.",
        "vm-locked": "This mailbox is locked after too many wrong PINs. Please try again "
                     "later.",
        "vm-main-menu": "For new messages, press 1. For saved messages, press 2. For your "
                        "greetings, press 3. To change your PIN, press 4. To end, press 9.",
        "vm-no-messages": "There are no messages in this folder.",
        "vm-urgent": "Urgent message.",
        "vm-message-menu": "To hear it again, press 1. For the envelope, press 2. To call "
                           "back, press 3. Previous, 4. Next, 6. Delete, 7. Save, 9. "
                           "For the main menu, press star.",
        "vm-first-message": "This is the first message.",
        "vm-last-message": "There are no more messages.",
        "vm-message-deleted": "Message deleted.",
        "vm-message-saved": "Message saved.",
        "vm-callback-failed": "The caller could not be reached.",
        "vm-no-number": "The caller's number is not known.",
        "vm-greetings-menu": "To record your unavailable greeting, press 1. Your busy "
                             "greeting, 2. Your name, 3. A temporary greeting, 4. To remove "
                             "the temporary greeting, press 5. For the main menu, press star.",
        "vm-record-greeting": "Record your greeting after the tone. Press hash when you have "
                              "finished.",
        "vm-greeting-review": "To listen to it, press 1. To record it again, press 2. To keep "
                              "it, press 3.",
        "vm-greeting-saved": "Your greeting has been saved.",
        "vm-greeting-removed": "The temporary greeting has been removed.",
        "vm-nothing-recorded": "Nothing was recorded.",
        "vm-new-pin": "Please enter your new PIN, four to twelve digits, followed by hash.",
        "vm-new-pin-again": "Please enter it again, followed by hash.",
        "vm-pin-changed": "Your PIN has been changed.",
        "vm-pin-mismatch": "The two PINs were different. Your PIN has not been changed.",
        "vm-goodbye": "Goodbye.",
        "invalid": "Sorry, that is not a valid choice.",
        "no-input": "Sorry, we did not hear your choice.",
    },
    "fr": {
        "vm-enter-box": "Veuillez saisir votre numéro de messagerie, suivi de dièse.",
        "vm-enter-pin": "Veuillez saisir votre code, suivi de dièse.",
        "vm-login-incorrect": "Désolé, ce numéro de messagerie et ce code ne correspondent pas.",
        "vm-locked": "Cette messagerie est bloquée après trop de codes erronés. Veuillez "
                     "réessayer plus tard.",
        "vm-main-menu": "Pour les nouveaux messages, appuyez sur 1. Pour les messages "
                        "enregistrés, 2. Pour vos annonces, 3. Pour changer votre code, 4. "
                        "Pour terminer, 9.",
        "vm-no-messages": "Il n'y a aucun message dans ce dossier.",
        "vm-urgent": "Message urgent.",
        "vm-message-menu": "Pour le réécouter, appuyez sur 1. Pour l'enveloppe, 2. Pour "
                           "rappeler, 3. Précédent, 4. Suivant, 6. Supprimer, 7. Enregistrer, "
                           "9. Pour le menu principal, appuyez sur étoile.",
        "vm-first-message": "C'est le premier message.",
        "vm-last-message": "Il n'y a plus de messages.",
        "vm-message-deleted": "Message supprimé.",
        "vm-message-saved": "Message enregistré.",
        "vm-callback-failed": "L'appelant n'a pas pu être joint.",
        "vm-no-number": "Le numéro de l'appelant est inconnu.",
        "vm-greetings-menu": "Pour enregistrer votre annonce d'absence, appuyez sur 1. "
                             "Votre annonce d'occupation, 2. Votre nom, 3. Une annonce "
                             "temporaire, 4. Pour supprimer l'annonce temporaire, 5. Pour le "
                             "menu principal, appuyez sur étoile.",
        "vm-record-greeting": "Enregistrez votre annonce après le bip. Appuyez sur dièse pour "
                              "terminer.",
        "vm-greeting-review": "Pour l'écouter, appuyez sur 1. Pour la réenregistrer, 2. Pour "
                              "la garder, 3.",
        "vm-greeting-saved": "Votre annonce a été enregistrée.",
        "vm-greeting-removed": "L'annonce temporaire a été supprimée.",
        "vm-nothing-recorded": "Rien n'a été enregistré.",
        "vm-new-pin": "Veuillez saisir votre nouveau code, de quatre à douze chiffres, suivi "
                      "de dièse.",
        "vm-new-pin-again": "Veuillez le saisir à nouveau, suivi de dièse.",
        "vm-pin-changed": "Votre code a été changé.",
        "vm-pin-mismatch": "Les deux codes sont différents. Votre code n'a pas été changé.",
        "vm-goodbye": "Au revoir.",
        "invalid": "Désolé, ce choix n'est pas valide.",
        "no-input": "Désolé, nous n'avons pas entendu votre choix.",
    },
}

# Spoken with say(): counts and envelopes change with every call.
TEXTS = {
    "en": {"counts": "You have {new} new and {saved} saved messages.",
           "message": "Message {n}.",
           "from": "From {caller}.", "name": "{name}.", "unknown": "From an unknown caller.",
           "received": "Received {when}.", "length": "Length {length}."},
    "fr": {"counts": "Vous avez {new} nouveaux messages et {saved} messages enregistrés.",
           "message": "Message {n}.",
           "from": "De {caller}.", "name": "{name}.", "unknown": "D'un appelant inconnu.",
           "received": "Reçu le {when}.", "length": "Durée {length}."},
}

LOGIN_TRIES = 3
GREETING_KEYS: dict[str, GreetingKind] = {"1": "unavailable", "2": "busy", "3": "name",
                                          "4": "temporary"}


async def flow(call: Call) -> None:
    await call.answer()
    box = await login(call)
    if box is not None:
        await main_menu(call, box)
        if not call_gone(call):
            await call.play("vm-goodbye")
    await call.hangup()


def call_gone(call: Call) -> bool:
    return bool(call.vars.get("_voicemail_transferred"))


async def login(call: Call) -> str | None:
    """The box the caller proved to own, or None (hung up on by then)."""
    preset = call.vars.get("mailbox")
    for _ in range(LOGIN_TRIES):
        box = preset or await call.gather("vm-enter-box", max_digits=12, timeout=8.0,
                                          inter_digit_timeout=4.0, tries=2,
                                          no_input_prompt="no-input")
        if not box:
            return None
        pin = await call.gather("vm-enter-pin", max_digits=12, timeout=8.0,
                                inter_digit_timeout=4.0, tries=2, no_input_prompt="no-input")
        if not pin:
            return None
        result = await call.voicemail_login(box, pin)
        if result == "ok":
            return box
        if result == "locked":
            await call.play("vm-locked")
            return None
        await call.play("vm-login-incorrect")
    return None


async def main_menu(call: Call, box: str) -> None:
    while True:
        info = await call.voicemail_box(box)
        await call.say(_text(call, "counts", new=speech.number(info.new, call.language),
                             saved=speech.number(info.saved, call.language)))
        choice = await choose(call, "vm-main-menu", ["1", "2", "3", "4", "9"], tries=2)
        if choice in ("1", "2"):
            await messages(call, box, "new" if choice == "1" else "saved")
            if call_gone(call):
                return
        elif choice == "3":
            await greetings_menu(call, box)
        elif choice == "4":
            await change_pin(call, box)
        else:
            return


async def messages(call: Call, box: str, folder: VoicemailFolder) -> None:
    """Walk a folder; returns to the main menu on * or when the list ends."""
    listing = await call.voicemail_messages(box, folder)
    if not listing:
        await call.play("vm-no-messages")
        return
    i, play = 0, True
    while True:
        message = listing[i]
        if play:
            await call.say(_text(call, "message", n=speech.number(i + 1, call.language)))
            if message.urgent:
                await call.play("vm-urgent")
            # A key stops the message and is the caller's menu choice.
            await call.play(message.path, barge_in=True)
        play = False
        choice = await choose(call, "vm-message-menu",
                              ["1", "2", "3", "4", "6", "7", "9", "*"], tries=2)
        if choice is None or choice == "*":
            return
        if choice == "1":
            play = True
        elif choice == "2":
            await envelope(call, message)
        elif choice == "3":
            if await call_back(call, message):
                return
        elif choice == "4":
            if i == 0:
                await call.play("vm-first-message")
            else:
                i, play = i - 1, True
        elif choice in ("6", "7", "9"):
            if choice == "7":
                await call.voicemail_mark(box, message.id, "deleted")
                await call.play("vm-message-deleted")
                del listing[i]
            elif choice == "9" and message.folder != "saved":
                await call.voicemail_mark(box, message.id, "saved")
                await call.play("vm-message-saved")
                del listing[i]
            else:
                i += 1
            if i >= len(listing):
                await call.play("vm-last-message")
                return
            play = True


async def envelope(call: Call, message: VoicemailMessage) -> None:
    lang = call.language
    parts = [_text(call, "from", caller=speech.digits(message.caller, lang))
             if message.caller.lstrip("+").isdigit() else _text(call, "unknown")]
    if message.caller_name:
        parts.append(_text(call, "name", name=message.caller_name))
    parts.append(_text(call, "received", when=_when(message.received, call)))
    parts.append(_text(call, "length", length=speech.duration(message.duration, lang)))
    await call.say(" ".join(parts))


async def call_back(call: Call, message: VoicemailMessage) -> bool:
    """True when the call went to the caller (the flow is over)."""
    if not message.caller.lstrip("+").isdigit():
        await call.play("vm-no-number")
        return False
    if await call.transfer(message.caller):
        call.vars["_voicemail_transferred"] = "1"
        return True
    await call.play("vm-callback-failed")
    return False


async def greetings_menu(call: Call, box: str) -> None:
    while True:
        choice = await choose(call, "vm-greetings-menu", ["1", "2", "3", "4", "5", "*"],
                              tries=2)
        if choice is None or choice == "*":
            return
        if choice == "5":
            await call.voicemail_set_greeting(box, "temporary", None)
            await call.play("vm-greeting-removed")
        else:
            await record_greeting(call, box, GREETING_KEYS[choice])


async def record_greeting(call: Call, box: str, kind: GreetingKind) -> None:
    # A name is a couple of seconds; a greeting rarely passes a minute.
    max_length = 10.0 if kind == "name" else 60.0
    while True:
        recording = await call.record("vm-record-greeting", beep=True,
                                      max_length=max_length, silence=3.0)
        if recording.empty:
            await call.play("vm-nothing-recorded")
            return
        choice = await choose(call, "vm-greeting-review", ["1", "2", "3"], tries=2)
        while choice == "1":
            await call.play(recording.path, barge_in=True)
            choice = await choose(call, "vm-greeting-review", ["1", "2", "3"], tries=2)
        if choice == "2":
            continue
        if choice is None:
            return          # nothing chosen: the old greeting stays
        await call.voicemail_set_greeting(box, kind, recording)
        await call.play("vm-greeting-saved")
        return


async def change_pin(call: Call, box: str) -> None:
    first = await call.gather("vm-new-pin", min_digits=4, max_digits=12, timeout=8.0,
                              inter_digit_timeout=4.0, tries=2, valid=r"[0-9]{4,12}",
                              invalid_prompt="invalid", no_input_prompt="no-input")
    if not first:
        return
    again = await call.gather("vm-new-pin-again", min_digits=4, max_digits=12, timeout=8.0,
                              inter_digit_timeout=4.0, tries=1)
    if again != first:
        await call.play("vm-pin-mismatch")
        return
    await call.voicemail_set_pin(box, first)
    await call.play("vm-pin-changed")


def _text(call: Call, key: str, **values: str) -> str:
    table = TEXTS.get(call.language.split("-")[0].split("_")[0], TEXTS["en"])
    return table[key].format(**values)


def _when(received: datetime, call: Call) -> str:
    try:
        zone = ZoneInfo(call.vars.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = received.astimezone(zone if received.tzinfo else timezone.utc)
    if call.language == "en" or call.language.startswith(("en-", "en_")):
        minute = "o'clock" if local.minute == 0 else \
            ("oh " if local.minute < 10 else "") + speech.number(local.minute)
        return (f"{local:%A} {speech.number(local.day)} {local:%B} at "
                f"{speech.number(local.hour)} {minute}")
    return f"{local:%d/%m} {local:%H:%M}"
