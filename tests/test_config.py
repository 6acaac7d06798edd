"""The configuration layer: what loads, and what an operator is told when it does not."""
from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from sipagent.config.load import (
    Config,
    ConfigError,
    flow_target,
    load_config,
    load_default_config,
    parse_config,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "sipacd.toml"

# The smallest file that lets references resolve in the bad-config cases.
BASE = """
[queues.support]
[agents.alice]
uri = "sip:alice@127.0.0.1:5072"
queues = ["support"]
[[routes]]
number = "100"
flow = "welcome"
queue = "support"
"""


def parse(text: str, **kw) -> Config:
    return parse_config(textwrap.dedent(text), source="test.toml", **kw)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


# --- what loads -----------------------------------------------------------------

def test_default_config_is_the_demo_setup():
    config = load_default_config()
    assert (config.sip.listen, config.sip.port, config.http.port) == ("127.0.0.1", 5070, 8070)
    route = config.route_for("100")
    assert route is not None and (route.flow, route.queue) == ("welcome", "support")
    support = config.queues["support"]
    assert support.strategy == "longest_idle"
    assert (support.ring_timeout, support.wrap_up, support.short_abandon) == (10, 2, 5)
    assert support.service_levels == (20,)
    assert {a: c.uri for a, c in config.agents.items()} == {
        "alice": "sip:alice@127.0.0.1:5072",
        "bob": "sip:bob@127.0.0.1:5073",
        "carol": "sip:carol@127.0.0.1:5074",
    }
    assert all(a.queues == {"support": 0} for a in config.agents.values())


def test_default_config_data_dir_is_in_the_demo_home_not_the_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIPACD_DEMO_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = load_default_config()
    assert config.data.dir == tmp_path / "cache" / "sipacd" / "demo-data"
    assert config.flows.prompts_dir == config.data.dir / "prompts"
    monkeypatch.setenv("SIPACD_DEMO_HOME", str(tmp_path / "home"))
    assert load_default_config().data.dir == tmp_path / "home" / "demo-data"
    assert load_default_config(base_dir=tmp_path / "x").data.dir == tmp_path / "x" / "demo-data"


def test_example_loads():
    config = load_config(EXAMPLE)
    assert config.data.dir == REPO / "examples" / "sipacd-data"
    assert config.agents["alice"].queues == {"support": 0, "sales": 1}
    assert config.route_for("250").queue == "sales"
    assert config.route_for("2500") is None


def test_example_loads_with_every_optional_key_enabled(tmp_path):
    # "#: " marks the optional settings the example shows commented out;
    # they must stay valid too, or the documentation lies.
    text = re.sub(r"(?m)^#: ", "", EXAMPLE.read_text())
    assert text.count("\n") == EXAMPLE.read_text().count("\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "moh").mkdir()
    (tmp_path / "moh" / "support.wav").write_bytes(b"RIFF")
    path = tmp_path / "sipacd.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.trunk.registration.registrar == "sip:pbx.example.com"
    assert config.http.tokens["alice-phone"].agent == "alice"
    assert config.flows.dir == tmp_path / "flows"
    assert config.queues["support"].moh == tmp_path / "moh" / "support.wav"
    assert config.queues["sales"].exit_key == "#"


def test_example_documents_every_key():
    # A key the models accept but the example never shows is undocumented.
    text = EXAMPLE.read_text()
    sections = {
        "sip": Config.model_fields["sip"].annotation,
        "trunk": Config.model_fields["trunk"].annotation,
        "http": Config.model_fields["http"].annotation,
        "data": Config.model_fields["data"].annotation,
        "flows": Config.model_fields["flows"].annotation,
        "log": Config.model_fields["log"].annotation,
    }
    from sipagent.config.load import AgentSection, HttpToken, QueueSection, RouteEntry, TrunkRegistration

    models = [*sections.values(), AgentSection, HttpToken, QueueSection, RouteEntry, TrunkRegistration]
    missing = [
        f"{m.__name__}.{key}"
        for m in models
        for key in m.model_fields
        if key not in ("registration", "tokens")
        and not re.search(rf"(?m)^(#: )?{key} = ", text)
    ]
    assert missing == []


def test_empty_file_gives_documented_defaults():
    config = parse("")
    assert config.sip.model_dump() == {
        "listen": "127.0.0.1", "port": 5060, "transports": ("udp",), "max_calls": 400,
        "retry_after": 30, "codecs": ("PCMU", "PCMA"), "user_agent": "sipacd",
        "media_address": None, "rtp_ports": None, "loop_priority": "normal",
    }
    assert config.trunk.allow == ("127.0.0.0/8",)
    assert config.trunk.registration is None
    assert (config.http.listen, config.http.port, config.http.metrics_token) == ("127.0.0.1", 8080, None)
    assert config.log.model_dump() == {"level": "info", "format": "auto", "pjsip_level": 2}
    assert config.flows.language == "en"
    assert (config.flows.dir / "__init__.py").is_file()  # the shipped ivrflows package
    assert config.routes == () and config.queues == {} and config.agents == {}


def test_queue_defaults():
    queue = parse("[queues.q]").queues["q"]
    assert queue.model_dump() == {
        "strategy": "longest_idle", "ring_timeout": 15, "wrap_up": 0, "max_len": 0,
        "max_wait": 0, "join_empty": True, "leave_when_empty": False, "autopause_after": 0,
        "reject_delay": 0, "weight": 0, "moh": None, "service_levels": (20,),
        "short_abandon": 5, "announce_first": None, "announce_position_every": 0,
        "announce_position_only_down": True, "announce_ewt": True, "periodic_prompts": (),
        "periodic_every": 0, "exit_key": None, "exit_flow": None, "on_timeout": None,
        "on_full": None, "on_empty": None, "callback_key": None, "callback_uri": None,
        "callback_attempts": 3, "callback_retry_delay": 60, "callback_mode": "agent_first",
        "callback_slots": 0, "callback_slot_minutes": 60, "callback_slot_lead": 15,
        "callback_schedule": None,
        "caller_headers": {}, "skill_relax": (), "skill_any_after": 0, "handle_time_hint": 180,
        "talk_limit": 0, "talk_limit_warning": 10, "talk_limit_target": None,
        "recording": 0, "recording_consent": None, "transfer_priority": None,
    }


def test_config_is_frozen():
    config = load_default_config()
    with pytest.raises(ValidationError):
        config.sip.port = 1
    assert isinstance(config.model_dump(), dict)


# --- paths ------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "music").mkdir()
    (etc / "music" / "hold.wav").write_bytes(b"RIFF")
    (etc / "sipacd.toml").write_text(textwrap.dedent("""
        [data]
        dir = "../var/sipacd"
        [queues.q]
        moh = "music/hold.wav"
    """))
    monkeypatch.chdir(tmp_path)  # somewhere else than the file's folder
    config = load_config("etc/sipacd.toml")
    assert config.data.dir == tmp_path / "var" / "sipacd"
    assert config.flows.prompts_dir == tmp_path / "var" / "sipacd" / "prompts"
    assert config.queues["q"].moh == etc / "music" / "hold.wav"


def test_absolute_and_explicit_paths_are_kept(tmp_path):
    config = parse(f"""
        [data]
        dir = "{tmp_path}/data"
        [flows]
        dir = "{tmp_path}"
        prompts_dir = "/srv/prompts"
    """)
    assert config.data.dir == tmp_path / "data"
    assert config.flows.dir == tmp_path
    assert config.flows.prompts_dir == Path("/srv/prompts")


def test_parse_config_resolves_against_base_dir(tmp_path):
    assert parse("", base_dir=tmp_path).data.dir == tmp_path / "sipacd-data"
    assert parse("").data.dir == Path(os.getcwd()) / "sipacd-data"


# --- conveniences the runtime relies on -------------------------------------------

def test_route_lookup_prefers_exact_numbers_then_patterns_in_order():
    config = parse("""
        [[routes]]
        number = "1.."
        match = "regex"
        flow = "first"
        [[routes]]
        number = "1[0-9]+"
        match = "regex"
        flow = "second"
        [[routes]]
        number = "100"
        flow = "exact"
    """)
    assert config.route_for("100").flow == "exact"
    assert config.route_for("123").flow == "first"
    assert config.route_for("1234").flow == "second"  # whole number must match
    assert config.route_for("200") is None


def test_flow_spec_split():
    assert flow_target("welcome") == ("welcome", "flow")
    assert flow_target("voicemail:leave") == ("voicemail", "leave")


def test_trunk_allow_list():
    trunk = parse('[trunk]\nallow = ["10.1.0.0/16", "192.0.2.7", "2001:db8::/32"]').trunk
    assert trunk.allow == ("10.1.0.0/16", "192.0.2.7/32", "2001:db8::/32")
    assert trunk.allows("10.1.2.3") and trunk.allows("192.0.2.7") and trunk.allows("2001:db8::1")
    assert not trunk.allows("10.2.0.1") and not trunk.allows("127.0.0.1")
    assert not trunk.allows("not-an-address")


def test_agent_queue_list_means_penalty_zero_and_service_levels_are_normalised():
    config = parse(BASE + """
        [queues.sales]
        service_levels = [30, 10, 30]
        [agents.bob]
        uri = "sips:bob@[::1]:5061;transport=tls"
        queues = ["support", "sales"]
    """)
    assert config.agents["bob"].queues == {"support": 0, "sales": 0}
    assert config.queues["sales"].service_levels == (10, 30)


def test_lowercase_codecs_and_upper_case_levels_are_accepted():
    config = parse('[sip]\ncodecs = ["pcma"]\n[log]\nlevel = "DEBUG"')
    assert config.sip.codecs == ("PCMA",)
    assert config.log.level == "debug"


# --- what an operator is told -----------------------------------------------------

BAD = [
    # (name, extra TOML, dotted key, words about what is wrong)
    ("unknown key", "[sip]\nprot = 5061", "sip.prot", ["unknown key", "did you mean 'port'"]),
    ("unknown top-level table", "[sipp]\nport = 1", "sipp", ["unknown key"]),
    ("misspelt flow", '[[routes]]\nnumber = "200"\nflwo = "x"', "routes[1].flwo", ["unknown key 'flwo'"]),
    ("missing flow", '[[routes]]\nnumber = "200"\nflwo = "x"', "routes[1].flow", ["required key missing"]),
    ("negative ring timeout", "[queues.sales]\nring_timeout = -3",
     "queues.sales.ring_timeout", ["must be > 0", "got -3"]),
    ("string for a number", '[queues.sales]\nwrap_up = "5"', "queues.sales.wrap_up",
     ["wrong type", "expected a number", "'5'"]),
    ("bool for an int", "[sip]\nport = true", "sip.port", ["wrong type", "expected an integer"]),
    ("integer route number", '[[routes]]\nnumber = 200\nflow = "x"', "routes[1].number",
     ["wrong type", "expected a string", 'quote it: "200"']),
    ("port out of range", "[sip]\nport = 70000", "sip.port", ["must be <= 65535"]),
    ("too many calls", "[sip]\nmax_calls = 1024", "sip.max_calls", ["must be <= 1000"]),
    ("unknown transport", '[sip]\ntransports = ["udp", "sctp"]', "sip.transports[1]",
     ["bad value 'sctp'", "'udp' or 'tcp'"]),
    ("unsupported codec", '[sip]\ncodecs = ["G729"]', "sip.codecs[0]", ["bad value 'G729'"]),
    ("unknown loop priority", '[sip]\nloop_priority = "urgent"', "sip.loop_priority",
     ["bad value 'urgent'", "realtime"]),
    ("duplicate codec", '[sip]\ncodecs = ["PCMU", "PCMU"]', "sip.codecs", ["listed twice"]),
    ("no codec", "[sip]\ncodecs = []", "sip.codecs", ["must not be empty"]),
    ("listen is a host name", '[http]\nlisten = "localhost"', "http.listen", ["not an IP address"]),
    ("bad CIDR", '[trunk]\nallow = ["10.0.0.0/33"]', "trunk.allow[0]", ["bad CIDR"]),
    ("CIDR with host bits", '[trunk]\nallow = ["10.0.0.1/8"]', "trunk.allow[0]",
     ["bad CIDR", "did you mean '10.0.0.0/8'"]),
    ("registration without registrar", '[trunk.registration]\nusername = "u"\npassword = "p"',
     "trunk.registration.registrar", ["required key missing"]),
    ("registrar not a URI", '[trunk.registration]\nregistrar = "pbx"\nusername = "u"\npassword = "p"',
     "trunk.registration.registrar", ["not a SIP URI"]),
    ("agent URI without scheme", '[agents.bob]\nuri = "bob"', "agents.bob.uri", ["not a SIP URI: 'bob'"]),
    ("agent URI without user", '[agents.bob]\nuri = "sip:127.0.0.1"', "agents.bob.uri", ["not a SIP URI"]),
    ("agent URI bad port", '[agents.bob]\nuri = "sip:bob@h:99999"', "agents.bob.uri", ["out of range"]),
    ("agent missing URI", "[agents.bob]\nname = \"Bob\"", "agents.bob.uri", ["required key missing"]),
    ("agent unknown queue", '[agents.bob]\nuri = "sip:bob@h"\nqueues = ["support", "sales"]',
     "agents.bob.queues.sales", ["unknown queue 'sales'"]),
    ("agent negative penalty", '[agents.bob]\nuri = "sip:bob@h"\nqueues = { support = -1 }',
     "agents.bob.queues.support", ["must be >= 0"]),
    ("skill out of range", '[agents.bob]\nuri = "sip:bob@h"\nskills = { french = 101 }',
     "agents.bob.skills.french", ["must be <= 100"]),
    ("duplicate agent URI", '[agents.bob]\nuri = "sip:alice@127.0.0.1:5072"', "agents.bob.uri",
     ["same URI as agents.alice"]),
    ("bad agent id", '[agents."bob smith"]\nuri = "sip:bob@h"', 'agents."bob smith"', ["bad name"]),
    ("route unknown queue", '[[routes]]\nnumber = "200"\nflow = "x"\nqueue = "sales"',
     "routes[1].queue", ["unknown queue 'sales'"]),
    ("duplicate route", '[[routes]]\nnumber = "100"\nflow = "x"', "routes[1].number",
     ["duplicate route for '100'", "routes[0]"]),
    ("bad flow spec", '[[routes]]\nnumber = "200"\nflow = "a.b"', "routes[1].flow", ["bad flow 'a.b'"]),
    ("bad fallback", '[[routes]]\nnumber = "200"\nflow = "a"\nfallback = "a:b:c"',
     "routes[1].fallback", ["bad flow"]),
    ("bad regex", '[[routes]]\nnumber = "2(("\nmatch = "regex"\nflow = "a"', "routes[1].number",
     ["bad regex"]),
    ("bad match kind", '[[routes]]\nnumber = "2"\nmatch = "prefix"\nflow = "a"', "routes[1].match",
     ["bad value 'prefix'"]),
    ("unknown strategy", '[queues.sales]\nstrategy = "best"', "queues.sales.strategy",
     ["bad value 'best'", "longest_idle"]),
    ("zero service level", "[queues.sales]\nservice_levels = [0, 20]", "queues.sales.service_levels[0]",
     ["must be > 0"]),
    ("bad exit key", '[queues.sales]\nexit_key = "12"', "queues.sales.exit_key", ["not a DTMF key"]),
    ("missing MOH file", '[queues.sales]\nmoh = "nope.wav"', "queues.sales.moh", ["no such file"]),
    ("caller header overrides dialog", '[queues.sales]\ncaller_headers = { "X-A" = "Call-ID" }',
     "queues.sales.caller_headers.X-A", ["managed by the SIP stack"]),
    ("bad queue name", '[queues."sales team"]', 'queues."sales team"', ["bad name"]),
    ("missing flows dir", '[flows]\ndir = "/nonexistent/flows"', "flows.dir", ["no such directory"]),
    ("bad log level", '[log]\nlevel = "loud"', "log.level", ["bad value 'loud'"]),
    ("pjsip level", "[log]\npjsip_level = 7", "log.pjsip_level", ["must be <= 6"]),
    ("token too short", '[http.tokens.ops]\nrole = "admin"\ntoken = "short"', "http.tokens.ops.token",
     ["at least 16 characters"]),
    ("agent token without agent", '[http.tokens.t]\nrole = "agent"\ntoken = "0123456789abcdef"',
     "http.tokens.t.agent", ["required key missing"]),
    ("token for unknown agent",
     '[http.tokens.t]\nrole = "agent"\ntoken = "0123456789abcdef"\nagent = "zoe"',
     "http.tokens.t.agent", ["unknown agent 'zoe'"]),
    ("http port collides with sip", "[http]\nport = 5060", "http.port", ["collides with sip.port"]),
    ("wildcard collides too", '[http]\nlisten = "0.0.0.0"\nport = 5060', "http.port",
     ["collides with sip.port"]),
]


@pytest.mark.parametrize("extra, key, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_the_key_and_the_problem(extra, key, words):
    error = error_of(BASE + extra)
    assert isinstance(error, ValueError)
    lines = [str(p) for p in error.problems if p.key == key]
    assert lines, f"no problem reported under {key!r}:\n{error}"
    for word in words:
        assert any(word in line for line in lines), f"{word!r} not in {lines}"
    assert str(error).startswith("test.toml: invalid configuration:")
    assert f"  {key}: " in str(error)


def test_agents_written_as_an_array_get_a_hint():
    error = error_of('[[agents]]\nuri = "sip:a@b"')
    assert [p.key for p in error.problems] == ["agents"]
    assert "wrong type: expected a table, got array" in str(error)
    assert "write [agents.<name>] tables, not [[agents]]" in str(error)


def test_different_hosts_may_share_a_port():
    config = parse('[sip]\nlisten = "127.0.0.1"\n[http]\nlisten = "127.0.0.2"\nport = 5060')
    assert config.http.port == config.sip.port


def test_every_bad_key_is_reported_at_once():
    error = error_of("""
        [sip]
        port = 0
        [queues.support]
        ring_timeout = -3
        [agents.alice]
        uri = "alice"
        [[routes]]
        number = "100"
        flwo = "welcome"
    """)
    keys = {p.key for p in error.problems}
    assert {"sip.port", "queues.support.ring_timeout", "agents.alice.uri",
            "routes[0].flwo", "routes[0].flow"} <= keys
    assert "queues.support.ring_timeout: must be > 0 (got -3)" in str(error)
    assert "agents.alice.uri: not a SIP URI: 'alice'" in str(error)


def test_reference_problems_are_all_reported_together():
    error = error_of("""
        [[routes]]
        number = "100"
        flow = "a"
        queue = "nope"
        [[routes]]
        number = "100"
        flow = "b"
        [agents.bob]
        uri = "sip:bob@h"
        queues = ["gone"]
    """)
    assert [p.key for p in error.problems] == ["routes[0].queue", "routes[1].number", "agents.bob.queues.gone"]


@pytest.mark.parametrize("text, line, column", [
    ("[sip]\nport = \n", 2, 8),
    ('[sip]\nport = 5060\n[queues.support\nwrap_up = 1\n', 3, 16),
    ("[sip]\nport = 1\nport = 2\n", 3, 9),
])
def test_toml_syntax_error_names_file_line_and_column(text, line, column):
    error = error_of(text)
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"test.toml:{line}:{column}: TOML syntax error:")
    assert "(at line" not in str(error)  # the position is said once, up front


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[sip]\nport = -1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: invalid configuration:\n  sip.port: must be >= 1")):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[sip]\nuser_agent = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin1.toml")


def test_strategies_match_the_acd_core():
    model = pytest.importorskip("acdcore.model")
    from typing import get_args

    from sipagent.config.values import Strategy

    assert set(get_args(Strategy)) == {s.value for s in model.Strategy}
