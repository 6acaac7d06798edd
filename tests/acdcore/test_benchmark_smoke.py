"""Keeps benchmarks/acd_core.py from rotting: its quick mode runs in seconds."""
import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "acd_core.py"


def _load():
    spec = importlib.util.spec_from_file_location("acd_core_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_runs_and_reports(capsys):
    bench = _load()
    assert bench.main(["--quick", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    engines = res["engines_bench"]["engines"]
    assert "reference" in engines
    for row in engines.values():
        assert row["events"] > 0 and row["events_per_second"] > 0
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
        assert row["traced_bytes_per_waiting_call"] > 0
    if "cython" in engines:
        assert res["engines_bench"]["identical_actions"] is True
        # The runtime's path (str ids through InternedScheduler): its own row,
        # the same actions as the str-id engine.
        assert engines["cython_runtime_ids"]["ids"] == "runtime"
        assert res["engines_bench"]["identical_actions_runtime_vs_str"] is True
        assert "events_per_second_runtime_ids" in res["targets"]
    for case in res["simulator"].values():
        assert case["calls"] > 0 and case["calls_per_second"] > 0
    assert set(res["targets"]) >= {"events_per_second", "p99_us", "sim_calls_per_second"}
    text = bench.table(res)   # the human-readable view of the same result
    assert "events/s" in text and "targets:" in text and "erlang_a" in text
