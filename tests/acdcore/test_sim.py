"""The simulator reproduces queueing theory through the real scheduler.

The two KPI.md reference cases run at full size (200,000 calls, KPI.md's
tolerances).  Each takes a few seconds with the compiled scheduler; other
tests use fewer calls and assert only what such a run can resolve.
"""
import math

import pytest

from acdcore.erlang import ErlangA, ErlangC
from acdcore.sim import QueueLoad, Scenario, Shift, simulate

KPI_CALLS = 200_000


def _check_kpi_tolerance(tally, model):
    # KPI.md: a single 200,000-call run lands within ±3 pp on SL,
    # ±0.5 pp on P(abandon) and ±25 % on ASA.
    assert tally.service_level(20) == pytest.approx(model.service_level(20), abs=0.03)
    assert tally.abandon_rate() == pytest.approx(model.p_abandon, abs=0.005)
    assert tally.asa == pytest.approx(model.asa, rel=0.25)


@pytest.mark.slow
def test_erlang_a_reference_case():
    # λ = 2880/h, service 1 min, N = 50, mean patience 2 min.
    scenario = Scenario((QueueLoad("sales", 2880 / 3600, 60.0, patience=120.0),), agents=50,
                        calls=KPI_CALLS, seed=11, warmup=600.0)
    result = simulate(scenario)
    tally = result.queues["sales"]
    model = ErlangA(50, 2880 / 3600, 60.0, 120.0)
    _check_kpi_tolerance(tally, model)
    assert result.occupancy == pytest.approx(model.occupancy, abs=0.01)
    assert tally.aht == pytest.approx(60.0, rel=0.02)
    # every offered call ended answered or abandoned
    assert tally.answered.count + tally.abandoned.count == tally.offered
    assert not result.notes


@pytest.mark.slow
def test_erlang_c_reference_case():
    # 100 calls per 30 min, AHT 180 s, 14 agents (meets 80/20).
    scenario = Scenario((QueueLoad("support", 100 / 1800, 180.0),), agents=14,
                        calls=KPI_CALLS, seed=12, warmup=3600.0)
    result = simulate(scenario)
    tally = result.queues["support"]
    model = ErlangC(14, 100 / 1800, 180.0)
    _check_kpi_tolerance(tally, model)
    assert tally.abandoned.count == 0
    assert result.occupancy == pytest.approx(model.occupancy, abs=0.01)


@pytest.mark.slow
def test_erlang_a_several_seeds_inside_confidence_interval():
    # KPI.md: for tighter checks than a single run, the mean over seeds must
    # fall inside its confidence interval.  Independent runs are i.i.d.
    # replicates, so mean ± 4 standard errors is a test that fails for a
    # real bias of a fraction of a point, yet almost never by chance.
    model = ErlangA(50, 2880 / 3600, 60.0, 120.0)
    runs = [simulate(Scenario((QueueLoad("q", 2880 / 3600, 60.0, patience=120.0),), agents=50,
                              calls=40_000, seed=100 + k, warmup=600.0)).queues["q"] for k in range(8)]
    for measured, expected in (
        ([r.service_level(20) for r in runs], model.service_level(20)),
        ([r.abandon_rate() for r in runs], model.p_abandon),
        ([r.asa for r in runs], model.asa),
    ):
        mean = sum(measured) / len(measured)
        sd = math.sqrt(sum((x - mean) ** 2 for x in measured) / (len(measured) - 1))
        assert abs(mean - expected) <= 4 * sd / math.sqrt(len(measured)), (mean, expected, sd)


def _small(**kw):
    base = dict(queues=(QueueLoad("q", 0.8, 60.0, patience=120.0),), agents=50, calls=5_000, seed=3)
    base.update(kw)
    return Scenario(**base)


def test_same_seed_same_result_and_seeds_differ():
    a, b = simulate(_small()), simulate(_small())
    assert a.queues["q"].summary() == b.queues["q"].summary()
    c = simulate(_small(seed=4))
    assert c.queues["q"].summary() != a.queues["q"].summary()


def test_compiled_and_reference_schedulers_agree():
    # The differential oracle, seen through the simulator: identical
    # scheduler decisions give identical KPIs.
    scenario = Scenario(
        (QueueLoad("a", 0.3, 60.0, patience=60.0, strategy="round_robin"),
         QueueLoad("b", 0.2, 90.0, patience=30.0, wrap_up=10.0)),
        agents=(*(Shift(f"x{i}", queues=("a",)) for i in range(10)),
                *(Shift(f"y{i}", queues=("a", "b"), logout=5_000.0) for i in range(10)),
                *(Shift(f"z{i}", login=2_000.0, queues=("b",)) for i in range(5))),
        calls=3_000, seed=5, answer_delay=2.0)
    fast = simulate(scenario, engine="fast")
    ref = simulate(scenario, engine="reference")
    assert {k: v.summary() for k, v in fast.queues.items()} == {k: v.summary() for k, v in ref.queues.items()}
    assert fast.occupancy == ref.occupancy


def test_compiled_loop_matches_python_loop():
    pytest.importorskip("acdcore._sim_loop", reason="the compiled simulator loop is not built")
    from dataclasses import replace

    scenario = Scenario(
        (QueueLoad("a", 0.4, 60.0, patience=40.0, strategy="ring_all"),
         QueueLoad("b", 0.2, 90.0, wrap_up=5.0, handle="lognormal", handle_cv=0.7)),
        agents=(*(Shift(f"x{i}", queues=("a", "b")) for i in range(20)),
                *(Shift(f"y{i}", login=500.0, logout=3_000.0) for i in range(10))),
        calls=4_000, seed=21)
    for delay in (0.0, 1.5):
        runs = [simulate(replace(scenario, answer_delay=delay), loop=loop) for loop in ("fast", "python")]
        assert runs[0].engine.endswith("compiled-loop") and runs[1].engine.endswith("python-loop")
        assert [t.summary() for t in runs[0].queues.values()] == [t.summary() for t in runs[1].queues.values()]
        assert runs[0].occupancy == runs[1].occupancy and runs[0].events == runs[1].events


def test_answer_delay_is_part_of_the_wait():
    scenario = Scenario((QueueLoad("q", 0.05, 60.0),), agents=20, calls=2_000, seed=1,
                        answer_delay=3.0, service_thresholds=(2.0, 20.0))
    tally = simulate(scenario).queues["q"]
    assert tally.answered.count == 2_000
    assert tally.answered.within(2.0) == 0       # nobody is answered before the phone rang 3 s
    assert tally.asa == pytest.approx(3.0, abs=0.05)  # 20 agents at load 3: almost nobody queues


def test_wrap_up_counts_in_aht_and_occupancy():
    # No abandons, so every call is served: occupancy = λ·(talk + wrap)/N.
    lam, talk, wrap, n = 0.1, 60.0, 20.0, 12
    scenario = Scenario((QueueLoad("q", lam, talk, wrap_up=wrap),), agents=n, calls=20_000, seed=2,
                        warmup=1_000.0)
    result = simulate(scenario)
    tally = result.queues["q"]
    assert tally.aht == pytest.approx(talk + wrap, rel=0.03)
    assert result.occupancy == pytest.approx(lam * (talk + wrap) / n, abs=0.02)


def test_lognormal_handle_times():
    scenario = Scenario((QueueLoad("q", 0.1, 120.0, handle="lognormal", handle_cv=0.5),), agents=20,
                        calls=20_000, seed=6)
    tally = simulate(scenario).queues["q"]
    assert tally.aht == pytest.approx(120.0, rel=0.02)


def test_dedicated_agent_groups_match_their_own_erlang_models():
    scenario = Scenario(
        (QueueLoad("small", 100 / 1800, 180.0), QueueLoad("big", 0.8, 60.0, patience=120.0)),
        agents=(*(Shift(f"s{i}", queues=("small",)) for i in range(14)),
                *(Shift(f"b{i}", queues=("big",)) for i in range(50))),
        calls=60_000, seed=9, warmup=3_600.0)
    result = simulate(scenario)
    small, big = result.queues["small"], result.queues["big"]
    assert big.offered > 10 * small.offered      # the call budget follows the rates
    # 60k calls: ~4k in "small", ~56k in "big"; tolerances widened accordingly.
    assert small.service_level(20) == pytest.approx(ErlangC(14, 100 / 1800, 180.0).service_level(20), abs=0.08)
    assert big.abandon_rate() == pytest.approx(ErlangA(50, 0.8, 60.0, 120.0).p_abandon, abs=0.01)
    assert small.abandoned.count == 0
    # Occupancy per queue is over the agents serving it.
    assert result.occupancy_by_queue["small"] == pytest.approx(10 / 14, abs=0.02)
    assert result.occupancy_by_queue["big"] == pytest.approx(ErlangA(50, 0.8, 60.0, 120.0).occupancy, abs=0.01)
    assert min(result.occupancy_by_queue.values()) < result.occupancy < max(result.occupancy_by_queue.values())


def test_shifts_log_agents_in_and_out():
    # Two agents; the second works only from t=1000 to t=3000.  Calls
    # keep flowing, and with patient callers nobody is lost.
    scenario = Scenario((QueueLoad("q", 0.01, 60.0),),
                        agents=(Shift("early"), Shift("late", login=1_000.0, logout=3_000.0)),
                        calls=200, seed=8)
    result = simulate(scenario)
    tally = result.queues["q"]
    assert tally.answered.count == tally.offered == 200
    assert 0 < result.occupancy < 1


def test_calls_with_nobody_to_serve_them_are_reported():
    scenario = Scenario((QueueLoad("q", 0.1, 60.0),), agents=(Shift("a", logout=100.0),), calls=100, seed=1)
    result = simulate(scenario)
    assert result.notes and "never got an outcome" in result.notes[0]


def test_bad_scenarios_are_rejected():
    with pytest.raises(ValueError):
        QueueLoad("q", 0.0, 60.0)
    with pytest.raises(ValueError):
        QueueLoad("q", 1.0, 60.0, handle="uniform")
    with pytest.raises(ValueError):
        simulate(_small(), engine="turbo")
    with pytest.raises(ValueError):
        _small(calls=0)
    with pytest.raises(ValueError):
        _small(answer_delay=-1.0)


def test_summary_is_json_ready():
    import json

    summary = simulate(_small(calls=500)).summary()
    text = json.dumps(summary)
    assert '"offered": 500' in text
    assert math.isfinite(summary["calls_per_second"])


def test_simulate_cli(capsys):
    import json

    from acdcore.sim_cli import main

    assert main(["--calls-per-hour", "2880", "--aht", "60", "--patience", "120", "--agents", "50",
                 "--calls", "20000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["erlang"]["P(abandon)"] == pytest.approx(0.0309, abs=1e-4)
    assert doc["simulated"]["queues"]["q"]["abandon_rate"] == pytest.approx(0.0309, abs=0.01)
    assert main(["--calls-per-hour", "200", "--aht", "180", "--agents", "14", "--calls", "2000"]) == 0
    assert "SL(20s) offered" in capsys.readouterr().out
    assert main(["--calls-per-hour", "0", "--aht", "180", "--agents", "14"]) == 2
