"""The main menu: an example flow that shows every common verb.

Read this file as the guide to writing flows.  A flow is a plain
``async def flow(call)``; ``call`` is an :class:`ivrflows.Call`, a real SIP
call on the engine and a fake one in tests (see
``tests/test_shipped_flows.py`` and ``sipacd flows simulate``).

What the caller gets::

    closed (route schedule)  ->  after_hours flow (message, voicemail, callback)
    language choice          ->  1 English, 2 French: picks the prompt set
    main menu                ->  1 support, 2 sales, 3 your account, 0 operator
      your account           ->  1 hear the number you call from, 2 billing,
                                 9 back, 0 operator
    after an agent           ->  the satisfaction survey
    nobody answers           ->  voicemail or callback offer

Route it in the config; queue names come from call variables, so one file
serves several routes (the route's ``queue`` arrives as ``vars["queue"]``)::

    [[routes]]
    number = "100"
    flow = "main_menu"
    queue = "support"
    schedule = "office"                                   # see ivrflows/schedule.py
    vars = { queue_sales = "sales", queue_billing = "billing" }

A caller hanging up raises :class:`ivrflows.CallerHangup` out of whatever
verb was running; a flow only catches it to clean up (``finally``).
"""
from __future__ import annotations

from ivrflows import Call, speech
from ivrflows.menu import BACK, back, choose, menu

# key -> language; the first is the default when the caller picks nothing.
LANGUAGES = {"1": "en", "2": "fr"}

# The text of every prompt this flow plays, per language.  The engine
# synthesizes missing prompt files from these; a recorded WAV in
# <prompts_dir>/<language>/<name>.wav replaces the synthetic voice.
PROMPTS = {
    "en": {
        "language-menu": "For English, press 1. Pour le français, appuyez sur 2.",
        "menu-main": "For support, press 1. For sales, press 2. For your account, press 3. "
                     "To speak to an operator, press 0.",
        "menu-account": "To hear the number you are calling from, press 1. For billing, "
                        "press 2. To go back, press 9. For an operator, press 0.",
        "caller-number-is": "You are calling from",
        "no-input": "Sorry, we did not hear your choice.",
        "operator": "Please hold for an operator.",
        "connecting": "Please hold while we connect you to an agent.",
        "no-agents": "Sorry, no agent is available right now.",
        "queue-timeout": "Sorry, nobody could take your call.",
        "invalid": "Sorry, that is not a valid choice.",
        "goodbye": "Thank you for calling. Goodbye.",
    },
    "fr": {
        "language-menu": "For English, press 1. Pour le français, appuyez sur 2.",
        "menu-main": "Pour le support, appuyez sur 1. Pour les ventes, appuyez sur 2. Pour "
                     "votre compte, appuyez sur 3. Pour parler à un opérateur, appuyez sur 0.",
        "menu-account": "Pour entendre le numéro depuis lequel vous appelez, appuyez sur 1. "
                        "Pour la facturation, appuyez sur 2. Pour revenir, appuyez sur 9. "
                        "Pour un opérateur, appuyez sur 0.",
        "caller-number-is": "Vous appelez depuis le",
        "no-input": "Désolé, nous n'avons pas entendu votre choix.",
        "operator": "Veuillez patienter, un opérateur va vous répondre.",
        "connecting": "Veuillez patienter, nous vous mettons en relation avec un conseiller.",
        "no-agents": "Désolé, aucun conseiller n'est disponible pour le moment.",
        "queue-timeout": "Désolé, personne n'a pu prendre votre appel.",
        "invalid": "Désolé, ce choix n'est pas valide.",
        "goodbye": "Merci de votre appel. Au revoir.",
    },
}


async def flow(call: Call) -> None:
    await call.answer()
    # is_open() asks the route's schedule (business hours, holidays, time
    # zone); a route without one is always open.
    if not call.is_open():
        return await call.goto_flow("after_hours")
    await choose_language(call)
    # A submenu's "9" returns BACK, which plays the main menu again.
    while await main_menu(call) == BACK:
        pass


async def choose_language(call: Call) -> None:
    # One short try: a caller who just waits gets the default language,
    # which is friendlier than a second round of a question in two languages.
    key = await choose(call, "language-menu", LANGUAGES, tries=1, timeout=3.0,
                       invalid_prompt=None, no_input_prompt=None)
    call.language = LANGUAGES.get(key or "", next(iter(LANGUAGES.values())))
    call.vars["language"] = call.language


async def main_menu(call: Call) -> object:
    return await menu(call, "menu-main", {
        "1": support,
        "2": sales,
        "3": account_menu,
    }, operator=operator)


async def account_menu(call: Call) -> object:
    return await menu(call, "menu-account", {
        "1": read_caller_number,
        "2": billing,
        "9": back,
    }, operator=operator)


async def read_caller_number(call: Call) -> object:
    await call.play("caller-number-is")
    # speech.digits reads "+4930..." key by key, not as one huge number.  A
    # caller id is not always a number ("anonymous", a SIP user name): only
    # its keys are read, and a number with none is said to be withheld.
    keys = "".join(ch for ch in call.caller or "" if ch in "+0123456789*#")
    await call.say(speech.digits(keys, call.language) if keys else "withheld")
    return await account_menu(call)


# -- the branches that end in a queue ----------------------------------------------------

async def support(call: Call) -> None:
    await to_agent(call, call.vars.get("queue", "support"))


async def sales(call: Call) -> None:
    await to_agent(call, call.vars.get("queue_sales", call.vars.get("queue", "support")))


async def billing(call: Call) -> None:
    await to_agent(call, call.vars.get("queue_billing", call.vars.get("queue", "support")),
                   priority=1)


async def operator(call: Call) -> None:
    await call.play("operator")
    target = call.vars.get("operator")
    # A configured operator number gets a blind transfer; if it does not
    # answer, the caller jumps the support queue instead of being dropped.
    if target and await call.transfer(target):
        return
    await to_agent(call, call.vars.get("queue", "support"), priority=10, announce=False)


async def to_agent(call: Call, queue: str, *, priority: int = 0, announce: bool = True) -> None:
    if announce:
        await call.play("connecting")
    # Agents see `data` on their screen: what the caller chose and in which language.
    outcome = await call.enqueue(queue, priority=priority, data={
        "menu": call.vars.get("menu_choice", ""), "language": call.language})
    call.vars["queue_result"] = outcome.result
    if outcome.answered:
        # The agent has hung up and the caller is still on the line.
        return await call.goto_flow("survey")
    await call.play("no-agents" if outcome.result == "empty" else "queue-timeout")
    await call.goto_flow("after_hours:offer")
