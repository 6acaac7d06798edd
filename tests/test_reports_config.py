"""The ``[console]`` section: defaults, a time zone checked against the
IANA database, thresholds whose warning comes before their alarm; each
mistake named by its key."""
from __future__ import annotations

from pathlib import Path

import pytest

from sipagent.config.load import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sipacd.toml"


def test_defaults():
    console = parse_config("").console
    assert console.timezone == "UTC" and console.zone.key == "UTC"
    assert (console.thresholds.sl_warn, console.thresholds.sl_alarm) == (0.8, 0.7)
    assert console.thresholds.long_call == 600.0


def test_the_example_documents_it():
    console = load_config(EXAMPLE).console
    assert console.timezone == "UTC"
    assert console.thresholds.waiting_alarm == 10


@pytest.mark.parametrize("text, key, words", [
    ('[console]\ntimezone = "Mars/Olympus"', "console.timezone", "unknown IANA time zone"),
    ('[console]\ntimezone = "../../etc/passwd"', "console.timezone", "unknown IANA time zone"),
    ('[console]\ntimezone = 5', "console.timezone", ""),
    ('[console.thresholds]\nabandon_warn = 1.5', "console.thresholds.abandon_warn", "<= 1"),
    ('[console.thresholds]\nwaiting_warn = 20', "console.thresholds",
     "waiting_warn (20) is above waiting_alarm (10)"),
    ('[console.thresholds]\nsl_warn = 0.5', "console.thresholds",
     "sl_warn (0.5) is below sl_alarm"),
    ('[console.thresholds]\nlong_call = 0', "console.thresholds.long_call", "must be > 0"),
    ('[console]\ncolour = "red"', "console.colour", ""),
])
def test_mistakes_name_the_key(text, key, words):
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    (problem,) = exc.value.problems
    assert problem.key == key and words in problem.message, problem


def test_a_zone_with_daylight_saving():
    assert parse_config('[console]\ntimezone = "America/New_York"').console.zone.key == \
        "America/New_York"
