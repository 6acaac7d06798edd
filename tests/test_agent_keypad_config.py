"""The agents' keypad without SIP: its config section, its pure rules and
its PIN lockout store (a real SQLite file)."""
from __future__ import annotations

import re
import textwrap

import pytest

from sipagent.calls.agent_keypad import command_allowed, feature_flow, state_prompt
from sipagent.config.features import FeaturesSection
from sipagent.config.load import ConfigError, parse_config
from sipagent.media.prompts import CATALOGUE
from sipagent.store.keypad_lockout import KeypadLockout
from sipagent.store.pin import hash_pin, is_pin_hash

from test_config import BASE, EXAMPLE      # BASE: one queue, alice, and route "100"

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL


def parse(text: str):
    return parse_config(textwrap.dedent(BASE + text), source="test.toml")


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith("test.toml: invalid configuration:")
    return {p.key: str(p) for p in info.value.problems}


def test_no_features_table_means_no_feature_numbers():
    config = parse("")
    assert config.features is None and config.keypad_settings() is None
    assert config.route_for("*71") is None


def test_feature_numbers_route_to_the_keypad_flow():
    config = parse('[features]\nlogout = "*81"\n[features.pause_reasons]\n1 = "lunch"\n'
                   '2 = "training"\n[agents.dave]\nuri = "sip:dave@h"\nnumber = "1001"\n'
                   'pin = "4711"\n[agents.2002]\nuri = "sip:bob@h"\n'
                   '[agents.carol]\nuri = "sip:carol@h"\n')
    assert config.route_for("*71").flow == feature_flow("login")
    assert config.route_for("*81").flow == feature_flow("logout")
    assert config.route_for("*75").flow == feature_flow("end_wrap_up")
    assert config.route_for("*72") is None
    assert config.route_for("100").flow == "welcome"
    settings = config.keypad_settings()
    agents = {a.agent_id: a for a in settings.agents}
    assert agents["dave"].number == "1001" and is_pin_hash(agents["dave"].pin_hash)
    assert "4711" not in repr(config)
    assert agents["2002"].number == "2002"       # an all-digit id is its own number
    assert agents["carol"].number is None and agents["carol"].pin_hash is None
    assert settings.pause_reasons == {"1": "lunch", "2": "training"}


def test_a_feature_number_wins_over_a_regex_route():
    config = parse('[features]\n[[routes]]\nnumber = "\\\\*.*"\nmatch = "regex"\nflow = "x"\n')
    assert config.route_for("*73").flow == feature_flow("pause")
    assert config.route_for("*99").flow == "x"


BAD = [
    # (extra TOML, dotted key, words)
    ('[features]\nlogin = "100"', "features.login", ["'100' is also the number of routes[0]"]),
    ('[features]\nready = "*71"', "features.ready", ["'*71' is also features.login"]),
    ('[features]\npause = "7 3"', "features.pause", ["bad feature number '7 3'"]),
    ('[features]\nlogin = 71', "features.login", ["expected a string"]),
    ('[features]\npin_attempts = 0', "features.pin_attempts", ["must be >= 1"]),
    ('[features]\nlockout = 0', "features.lockout", ["must be > 0"]),
    ('[features]\nlogni = "*70"', "features.logni", ["unknown key", "'login'"]),
    ('[features.pause_reasons]\n12 = "lunch"', "features.pause_reasons.12",
     ["bad reason code '12'"]),
    ('[features.pause_reasons]\n1 = ""', "features.pause_reasons.1", ["must not be empty"]),
    ('[agents.bob]\nuri = "sip:bob@h"\nnumber = "12ab"', "agents.bob.number",
     ["bad agent number '12ab'"]),
    ('[agents.bob]\nuri = "sip:bob@h"\nnumber = 1001', "agents.bob.number", ["expected a string"]),
    ('[agents.bob]\nuri = "sip:bob@h"\npin = "12"', "agents.bob.pin", ["4 to 12 digits"]),
    ('[agents.bob]\nuri = "sip:bob@h"\nnumber = "1001"\n[agents.carol]\nuri = "sip:carol@h"\n'
     'number = "1001"', "agents.carol.number", ["'1001' is also agents.bob's"]),
    ('[agents.1001]\nuri = "sip:bob@h"\n[agents.carol]\nuri = "sip:carol@h"\nnumber = "1001"',
     "agents.carol.number", ["'1001' is also agents.1001's"]),
]


@pytest.mark.parametrize("extra, key, words", BAD, ids=[b[1] + ":" + b[2][0] for b in BAD])
def test_bad_keypad_config_names_the_key(extra, key, words):
    found = problems(extra)
    assert key in found, f"no problem under {key!r}: {found}"
    for word in words:
        assert word in found[key], found[key]


def test_a_wrong_pin_is_not_echoed():
    found = problems('[agents.bob]\nuri = "sip:bob@h"\npin = "98765432109876"')
    assert "98765432109876" not in found["agents.bob.pin"]


def test_commands_follow_the_agent_state_table():
    assert command_allowed("login", "logged_out")
    assert not command_allowed("login", "available")
    assert not command_allowed("pause", "logged_out")
    assert command_allowed("pause", "wrap_up") and command_allowed("pause", "busy")
    assert command_allowed("end_wrap_up", "wrap_up")
    assert not command_allowed("end_wrap_up", "logged_out")
    assert not command_allowed("ready", "logged_out")


def test_every_state_has_a_spoken_prompt():
    from acdcore.states import AGENT_STATE_NAMES

    missing = [s for s in AGENT_STATE_NAMES if state_prompt(s) not in CATALOGUE["en"]]
    assert missing == []


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


PIN_HASH = hash_pin("4711", log2_n=4)


def test_wrong_pins_lock_the_agent_and_the_lock_survives_reopening(store_place):
    clock = Clock()
    store = KeypadLockout(store_place, pin_attempts=3, lockout=60, clock=clock)
    assert [store.check("alice", "1111", PIN_HASH) for _ in range(3)] == ["wrong", "wrong",
                                                                            "locked"]
    assert store.check("alice", "4711", PIN_HASH) == "locked"
    assert store.check("bob", "4711", PIN_HASH) == "ok"      # one agent's lock only
    store.close()
    store = KeypadLockout(store_place, pin_attempts=3, lockout=60, clock=clock)
    assert store.check("alice", "4711", PIN_HASH) == "locked"
    clock.now += 61
    assert store.check("alice", "4711", PIN_HASH) == "ok"
    store.close()


def test_a_right_pin_clears_the_wrong_ones(store_place):
    store = KeypadLockout(store_place, pin_attempts=3, lockout=60, clock=Clock())
    assert store.check("alice", "1111", PIN_HASH) == "wrong"
    assert store.check("alice", "2222", PIN_HASH) == "wrong"
    assert store.check("alice", "4711", PIN_HASH) == "ok"
    assert store.check("alice", "1111", PIN_HASH) == "wrong"
    assert store.check("alice", "1111", PIN_HASH) == "wrong"
    assert store.check("alice", "4711", PIN_HASH) == "ok"   # two wrong: not yet locked
    store.close()


def test_unknown_agents_and_agents_without_pin_are_refused(store_place):
    store = KeypadLockout(store_place, pin_attempts=1, lockout=60, clock=Clock())
    assert store.check(None, "4711", None) == "wrong"
    assert store.check("carol", "4711", None) == "locked"   # the one try allowed
    assert store.check("carol", "4711", None) == "locked"
    assert store.locked_until("nobody") == 0.0
    store.close()


def test_example_documents_every_keypad_key():
    text = EXAMPLE.read_text()
    keys = [k for k in FeaturesSection.model_fields if k != "pause_reasons"] + ["number", "pin"]
    assert [k for k in keys if not re.search(rf"(?m)^#: {k} = ", text)] == []
    assert "#: [features]" in text and "#: [features.pause_reasons]" in text
