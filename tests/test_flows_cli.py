"""``sipacd flows check`` and ``sipacd flows simulate`` (sipagent.cli.flows)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

import ivrflows
from ivrflows.schedule import Schedule
from sipagent.cli.flows import _schedules, main

SHIPPED = Path(ivrflows.__file__).parent

GOOD = """
    from ivrflows import Call

    async def flow(call: Call) -> None:
        await call.answer()
        if await call.gather("welcome") == "1":
            await call.enqueue(call.vars.get("queue", "support"))
        await call.hangup()
"""

BROKEN = {
    "syntax.py": "async def flow(call):\n    await call.answer(\n",
    "sync.py": "def flow(call):\n    pass\n",
    "import_error.py": "import no_such_module_here\n\nasync def flow(call):\n    pass\n",
    "raises.py": """
        async def flow(call):
            await call.answer()
            if await call.gather("welcome") == "3":
                raise KeyError("three")
    """,
    "loops.py": """
        async def flow(call):
            await call.answer()
            while True:
                await call.gather("welcome")
    """,
    "unanswered.py": "async def flow(call):\n    await call.play('welcome')\n",
    "unknown_prompt.py": """
        async def flow(call):
            await call.answer()
            await call.play("no-such-prompt")
    """,
}


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def test_check_passes_the_shipped_flows(capsys):
    assert main(["check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    for name in ("main_menu", "after_hours", "survey", "welcome", "voicemail",
                 "voicemail_retrieval", "fax_on_demand", "fax_receive"):
        assert f"{name}.py: ok" in out
    assert "testing.py" in out.splitlines()[-2]       # listed as a library module
    assert out.splitlines()[-1] == "8 flows checked, 0 failed"


def test_check_reports_each_broken_flow(tmp_path, capsys):
    write(tmp_path, "good.py", GOOD)
    write(tmp_path, "helpers.py", "def shared():\n    return 1\n")
    for name, source in BROKEN.items():
        write(tmp_path, name, source)
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "good.py: ok" in out
    assert "syntax.py: line 2: SyntaxError" in out
    assert "sync.py: line 1: 'flow' must be an 'async def' function" in out
    assert "import_error.py:1: ModuleNotFoundError" in out
    assert "caller 3,3,3, open: raised KeyError" in out
    assert "still running after" in out                      # loops.py
    assert "before answer" in out                            # unanswered.py
    assert "prompt 'no-such-prompt' has no text or file for language 'en'" in out
    assert "helpers.py" in out and "helpers.py: " not in out   # skipped, not failed
    assert out.splitlines()[-1] == f"{len(BROKEN) + 1} flows checked, {len(BROKEN)} failed"


def test_check_accepts_prompts_recorded_in_the_configs_prompts_folder(tmp_path, capsys):
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows, "custom.py", BROKEN["unknown_prompt.py"])
    (tmp_path / "prompts" / "en").mkdir(parents=True)
    (tmp_path / "prompts" / "en" / "no-such-prompt.wav").write_bytes(b"RIFF")
    config = write(tmp_path, "sipacd.toml", """
        [flows]
        dir = "flows"
        prompts_dir = "prompts"
    """)
    assert main(["check", str(flows)]) == 1
    assert main(["check", str(flows), "-c", str(config)]) == 0
    capsys.readouterr()


def test_check_of_a_missing_folder(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2


def test_simulate_a_route_of_the_embedded_config(capsys):
    assert main(["simulate", "100", "--digits", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "route 100 -> flow welcome, queue support"
    assert "caller press     2" in out
    assert "enqueue   support data {'menu': '2'}" in out
    assert out.splitlines()[-1] == "ended: flow hung up after 82.5s"


def test_simulate_a_flow_by_name_with_survey(capsys):
    assert main(["simulate", "main_menu", "--digits", "1,1,5", "--open"]) == 0
    out = capsys.readouterr().out
    assert "goto      survey" in out
    assert out.splitlines()[-1].endswith("survey 5/5")


def test_simulate_in_another_language(capsys):
    assert main(["simulate", "survey", "--language", "fr", "--digits", "4"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith("survey 4/5")


def test_simulate_closed_and_queue_outcomes(capsys):
    assert main(["simulate", "main_menu", "--closed", "--digits", "2,1"]) == 0
    assert "callback to +15550100" in capsys.readouterr().out
    assert main(["simulate", "main_menu", "--open", "--digits", "1,1", "--queue", "timeout:90"]) == 0
    out = capsys.readouterr().out
    assert "queue  timeout   support after 90s" in out


def test_simulate_with_a_config_file(tmp_path, capsys):
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows, "custom.py", """
        async def flow(call):
            await call.answer()
            await call.say(f"{call.vars['queue']} {call.vars['who']} {call.caller} {call.called}")
            await call.enqueue(call.vars["queue"])
    """)
    config = write(tmp_path, "sipacd.toml", """
        [flows]
        dir = "flows"

        [[routes]]
        number = "2\\\\d\\\\d"
        match = "regex"
        flow = "custom"
        queue = "sales"

        [queues.sales]
    """)
    assert main(["simulate", "250", "-c", str(config), "--var", "who=me",
                 "--caller", "+4930"]) == 0
    out = capsys.readouterr().out
    assert "route 250 -> flow custom, queue sales" in out
    assert "say       sales me +4930 250" in out
    # A flow's name is not a number, even for a catch-all pattern route.
    catch_all = write(tmp_path, "all.toml", config.read_text().replace("2\\d\\d", ".*"))
    assert main(["simulate", "custom", "-c", str(catch_all), "--var", "queue=sales",
                 "--var", "who=x"]) == 0
    assert "flow custom (no route for 'custom')" in capsys.readouterr().out


def test_simulate_reports_a_flow_that_raises(tmp_path, capsys):
    write(tmp_path, "bad.py", BROKEN["raises.py"])
    config = write(tmp_path, "sipacd.toml", f'[flows]\ndir = "{tmp_path}"\n')
    assert main(["simulate", "bad", "-c", str(config), "--digits", "3"]) == 1
    out = capsys.readouterr().out
    assert "raised    KeyError: 'three'" in out


@pytest.mark.parametrize("argv, message", [
    (["simulate", "nonexistent_flow"], "flow file not found"),
    (["simulate", "100", "--queue", "lost"], "unknown result 'lost'"),
    (["simulate", "100", "--var", "novalue"], "NAME=VALUE"),
    (["simulate", "100", "--at", "tuesday"], "Invalid isoformat"),
])
def test_simulate_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_schedules_from_the_config_in_either_shape():
    table = {"timezone": "UTC", "hours": {"mon-fri": "09:00-17:00"}}
    config = SimpleNamespace(schedules={"office": table, "ready": Schedule("UTC", {})})
    got = _schedules(config)
    assert isinstance(got["office"], Schedule) and got["ready"] is config.schedules["ready"]
    with pytest.raises(ValueError, match="schedules.bad.timezone: unknown time zone"):
        _schedules(SimpleNamespace(schedules={"bad": {"timezone": "Nowhere/Land"}}))
    assert _schedules(SimpleNamespace()) == {}
