"""Supervisors without SIP: the ``[supervisors.<id>]`` section, tokens that
name one, the monitor feature number and the queue scope rule."""
from __future__ import annotations

import re

import pytest

from sipagent.calls.supervisor_keypad import MONITOR_FLOW
from sipagent.config.supervisors import SupervisorSection
from sipagent.media.prompts import CATALOGUE
from sipagent.queue.monitoring import OutOfScope, Supervisor
from sipagent.store.pin import is_pin_hash, verify_pin

from test_agent_keypad_config import parse, problems   # on test_config's BASE: queue
from test_config import EXAMPLE                          # support, alice, route "100"

SAM = '[queues.sales]\n[supervisors.sam]\nphone = "sip:sam@h"\nnumber = "900"\npin = "4242"\n'
TOKEN = '[http.tokens.console]\nrole = "supervisor"\ntoken = "0123456789abcdef0123"\n'


def test_no_supervisors_and_no_features():
    config = parse("")
    assert config.supervisors == {} and config.supervisor_keypad_settings() is None
    assert config.supervisor_directory().people == {}
    assert config.route_for("*77") is None


def test_supervisors_load_with_hashed_pins_scope_and_their_tokens():
    config = parse(SAM + 'queues = ["sales"]\n[supervisors.ann]\n[features]\n'
                   + TOKEN + 'supervisor = "sam"\n')
    directory = config.supervisor_directory()
    sam, ann = directory.people["sam"], directory.people["ann"]
    assert (sam.phone, sam.number, sam.queues) == ("sip:sam@h", "900", frozenset({"sales"}))
    assert is_pin_hash(sam.pin_hash) and verify_pin("4242", sam.pin_hash)
    assert "4242" not in repr(config)
    assert (ann.phone, ann.number, ann.pin_hash, ann.queues) == (None, None, None, None)
    assert directory.for_token("console") is sam and directory.for_token("other") is None
    assert config.route_for("*77").flow == MONITOR_FLOW
    settings = config.supervisor_keypad_settings()
    assert settings.agent_numbers == {} and {s.supervisor_id for s in settings.supervisors} \
        == {"sam", "ann"}


def test_the_monitor_number_can_move_and_agents_numbers_are_known():
    config = parse('[features]\nmonitor = "*88"\n[agents.2002]\nuri = "sip:bob@h"\n'
                   '[agents.carol]\nuri = "sip:carol@h"\nnumber = "1003"\n')
    assert config.route_for("*88").flow == MONITOR_FLOW and config.route_for("*77") is None
    assert config.supervisor_keypad_settings().agent_numbers == {"2002": "2002",
                                                                 "1003": "carol"}


BAD = [
    (SAM + 'queues = ["sales", "billing"]', "supervisors.sam.queues[1]",
     ["unknown queue 'billing'", "defined queues: support, sales"]),
    (SAM + 'queues = "sales"', "supervisors.sam.queues", ["expected an array"]),
    ('[supervisors.sam]\nphone = "sam@h"', "supervisors.sam.phone", ["sip:"]),
    ('[supervisors.sam]\nnumber = "9a"', "supervisors.sam.number", ["bad agent number '9a'"]),
    ('[supervisors.sam]\npin = "12"', "supervisors.sam.pin", ["4 to 12 digits"]),
    ('[supervisors.sam]\nqueue = ["support"]', "supervisors.sam.queue", ["unknown key"]),
    (SAM + '[supervisors.ann]\nnumber = "900"', "supervisors.ann.number",
     ["'900' is also supervisors.sam's"]),
    (TOKEN + 'supervisor = "sam"', "http.tokens.console.supervisor",
     ["unknown supervisor 'sam'", "defined supervisors: none"]),
    (SAM + '[http.tokens.a]\nrole = "agent"\nagent = "alice"\ntoken = "0123456789abcdef0"\n'
     'supervisor = "sam"', "http.tokens.a.supervisor", ["only allowed for roles"]),
    ('[features]\nmonitor = "*71"', "features.monitor", ["'*71' is also features.login"]),
    ('[features]\nmonitor = "100"', "features.monitor", ["is also the number of routes[0]"]),
]


@pytest.mark.parametrize("extra, key, words", BAD, ids=[b[1] + ":" + b[2][0] for b in BAD])
def test_bad_supervisor_config_names_the_key(extra, key, words):
    found = problems(extra)
    assert key in found, f"no problem under {key!r}: {found}"
    for word in words:
        assert word in found[key], found[key]


def test_queue_scope():
    sam = Supervisor("sam", queues=frozenset({"sales"}))
    sam.check_scope("sales")
    with pytest.raises(OutOfScope, match=r"queue 'support' is outside supervisor 'sam'"):
        sam.check_scope("support")
    Supervisor("ann").check_scope("support")       # no queues listed: every queue


def test_every_refusal_has_a_prompt():
    from sipagent.calls import supervisor_keypad

    source = open(supervisor_keypad.__file__).read()
    used = set(re.findall(r'"((?:supervisor|agent)-[a-z-]+)"', source))
    assert used and used - set(CATALOGUE["en"]) == set()


def test_example_documents_every_supervisor_key():
    text = EXAMPLE.read_text()
    keys = list(SupervisorSection.model_fields) + ["monitor", "supervisor"]
    assert [k for k in keys if not re.search(rf"(?m)^#: {k} = ", text)] == []
    assert "#: [supervisors.sam]" in text     # loading it: test_config's every-key test
