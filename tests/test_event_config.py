"""The [events] section: a bad value names its key."""
from __future__ import annotations

import pytest

from sipagent.config.load import ConfigError, parse_config

GOOD = 'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\nurl = "http://127.0.0.1:9/h"\n'


def parse(text: str):
    return parse_config("[queues.support]\n" + text, source="t.toml")


def test_defaults_and_a_webhook():
    config = parse('[events]\nnode_id = "acd-1"\n[[events.webhooks]]\n' + GOOD
                   + 'types = ["call.*"]\nqueues = ["support"]\n')
    sub = config.events.webhooks[0].subscription()
    assert (config.events.node_id, sub.name, sub.types, sub.queues) == (
        "acd-1", "http://127.0.0.1:9/h", frozenset({"call.*"}), frozenset({"support"}))
    assert parse("").events.heartbeat == 15.0 and parse("").event_node


@pytest.mark.parametrize("text, where, words", [
    ('[events]\nnode_id = "a b"\n', "events.node_id", "letters, digits"),
    ('[[events.webhooks]]\nurl = "http://x/h"\nsecret = "nope"\n', "events.webhooks[0].secret",
     "whsec_"),
    ('[[events.webhooks]]\nurl = "http://x/h"\nsecret = "whsec_c2hvcnQ="\n',
     "events.webhooks[0].secret", "24 to 64"),
    ('[[events.webhooks]]\n' + GOOD + 'types = ["call.exploded"]\n', "events.webhooks[0].types",
     "unknown event type"),
    ('[[events.webhooks]]\n' + GOOD + 'queues = ["nope"]\n', "events.webhooks[0].queues[0]",
     "unknown queue"),
    ('[[events.webhooks]]\n' + GOOD + '[[events.webhooks]]\n' + GOOD, "events.webhooks[1].name",
     "give each a name"),
    ('[events]\nheartbeat = 0\n', "events.heartbeat", "must be > 0"),
])
def test_a_bad_value_names_its_key(text, where, words):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert where in str(err.value) and words in str(err.value), str(err.value)
