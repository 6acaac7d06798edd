"""Call restrictions and the [outbound] section (fast, no SIP)."""
from __future__ import annotations

import re

import pytest

from sipagent.config.outbound import ApplySection, OutboundSection, RuleSection
from sipagent.queue.restrictions import Restrictions, Rule
from test_config import BASE, EXAMPLE, error_of, parse

RULES = """
[outbound]
uri = "sip:{number}@pbx.example.com"
caller_id = "+4930123456"
[outbound.restrictions]
no_international = { deny = ["^00", "^\\\\+"] }
no_premium = { deny = ["^0900"] }
local_only = { allow = ["^0[1-8]"] }
[outbound.apply]
everyone = ["no_premium"]
roles = { agent = ["no_international"] }
agents = { alice = ["local_only"] }
"""


@pytest.fixture
def rules() -> Restrictions:
    return parse(BASE + RULES).outbound.compiled()


def test_everyone_role_and_agent_rules_add_up(rules):
    assert rules.check_number("bob", "admin", "09001234") == "no_premium"
    assert rules.check_number("bob", "admin", "0044123") is None      # admins: no role rule
    assert rules.check_number("bob", "agent", "0044123") == "no_international"
    assert rules.check_number("bob", "agent", "+44123") == "no_international"
    assert rules.check_number("bob", "agent", "0301234") is None
    # alice: local only (allow list), whoever asks
    assert rules.check_number("alice", "supervisor", "0301234") is None
    assert rules.check_number("alice", "supervisor", "0912345") == "local_only"
    assert rules.check_number(None, None, "0912345") is None


def test_first_refusing_rule_is_named_in_order(rules):
    # everyone before role before agent
    assert rules.check_number("alice", "agent", "09001") == "no_premium"
    assert rules.check_number("alice", "agent", "0049") == "no_international"


def test_deny_wins_over_allow():
    rule = Rule.compile("r", deny=["^0301"], allow=["^030"])
    assert rule.refuses("0301999") and not rule.refuses("0302999") and rule.refuses("040")


def test_no_rules_refuse_nothing():
    assert parse(BASE).outbound.compiled().check_number("alice", "agent", "+1900") is None


def test_bad_regex_names_the_key():
    err = str(error_of(BASE + '[outbound.restrictions]\nbad = { deny = ["^(00"] }\n'))
    assert "outbound.restrictions.bad.deny[0]" in err and "not a regular expression" in err


def test_rule_without_patterns_and_unknown_names_are_refused():
    err = str(error_of(BASE + "[outbound.restrictions]\nempty = {}\n"))
    assert "outbound.restrictions.empty" in err and "deny or allow" in err
    err = str(error_of(BASE + RULES.replace('everyone = ["no_premium"]',
                                            'everyone = ["no_premum"]')))
    assert "outbound.apply.everyone: unknown rule 'no_premum'" in err
    err = str(error_of(BASE + RULES.replace("agents = { alice", "agents = { alicia")))
    assert "outbound.apply.agents.alicia: unknown agent 'alicia'" in err
    err = str(error_of(BASE + RULES.replace("roles = { agent", "roles = { agnet")))
    assert "outbound.apply.roles.agnet" in err


@pytest.mark.parametrize("line,message", [
    ('uri = "pbx.example.com"', "outbound.uri: bad value 'pbx.example.com': must match"),
    ('caller_id = "+49 30"', "outbound.caller_id: bad caller id '+49 30': a SIP user part"),
    ('caller_name = "A \\"B\\""', "outbound.caller_name: bad display name 'A \"B\"'"),
    ("ring_timeout = 0", "outbound.ring_timeout: must be > 0"),
    ('agent_ring_timeout = "20"', "outbound.agent_ring_timeout: "),
    ("dial = 1", "outbound.dial: unknown key 'dial'"),
])
def test_bad_values_name_the_key(line, message):
    err = str(error_of(BASE + f"[outbound]\n{line}\n"))
    assert message in err, err


def test_uri_needs_a_caller_id():
    err = str(error_of(BASE + '[outbound]\nuri = "sip:{number}@pbx.example.com"\n'))
    assert "outbound.caller_id: required when uri is set" in err


def test_example_documents_every_outbound_key():
    text = EXAMPLE.read_text()
    keys = [*OutboundSection.model_fields, *RuleSection.model_fields,
            *ApplySection.model_fields]
    keys = [k for k in keys if k not in ("restrictions", "apply", "deny", "allow")]
    assert [k for k in keys if not re.search(rf"(?m)^#: {k} = ", text)] == []
    for header in ("#: [outbound]", "#: [outbound.restrictions]", "#: [outbound.apply]"):
        assert header in text
    assert "#: no_international = { deny = " in text and "allow" in text
