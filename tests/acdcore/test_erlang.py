import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acdcore.erlang import ErlangA, ErlangC, erlang_b, erlang_c, queue_model
from acdcore.staffing import agents_required
from acdcore.service_level import ServiceLevelVariant

# KPI.md worked example: 100 calls per 30 min, AHT 180 s -> A = 10 Erlangs.
LAM_C, AHT_C = 100 / 1800, 180.0


@pytest.mark.parametrize(
    "agents, p_wait, sl20, asa, occupancy",
    [
        (11, 0.6821, 0.390, 122.8, None),
        (12, None, 0.640, None, None),
        (13, None, 0.796, None, None),
        (14, None, 0.888, 7.8, 0.714),
    ],
)
def test_erlang_c_matches_kpi_reference_table(agents, p_wait, sl20, asa, occupancy):
    m = ErlangC(agents, LAM_C, AHT_C)
    assert m.load == pytest.approx(10.0)
    if p_wait is not None:
        assert round(m.p_wait, 4) == p_wait
    assert round(m.service_level(20), 3) == sl20
    if asa is not None:
        assert round(m.asa, 1) == asa
    if occupancy is not None:
        assert round(m.occupancy, 3) == occupancy


def test_fourteen_agents_meet_80_20():
    p = agents_required(LAM_C, AHT_C, 0.80, 20)
    assert p.agents == 14
    assert p.service_level == pytest.approx(0.888, abs=5e-4)
    assert ErlangC(13, LAM_C, AHT_C).service_level(20) < 0.80


def test_erlang_a_matches_kpi_reference():
    # λ = 2880/h, service 1 min, N = 50, patience 2 min (seconds throughout).
    m = ErlangA(50, 2880 / 3600, 60.0, 120.0)
    assert round(m.p_abandon, 4) == 0.0309
    assert round(m.service_level(20, ServiceLevelVariant.OFFERED), 3) == 0.943
    assert round(m.asa, 2) == 3.62


def _erlang_b_by_factorials(n, a):
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    return terms[-1] / sum(terms)


@pytest.mark.parametrize("n, a", [(1, 0.5), (5, 3.0), (10, 10.0), (30, 12.5), (60, 70.0)])
def test_erlang_b_and_c_against_textbook_sums(n, a):
    assert erlang_b(n, a) == pytest.approx(_erlang_b_by_factorials(n, a), rel=1e-12)
    if a < n:
        terms = [a**k / math.factorial(k) for k in range(n)]
        top = a**n / math.factorial(n) * n / (n - a)
        assert erlang_c(n, a) == pytest.approx(top / (sum(terms) + top), rel=1e-12)


def test_huge_loads_stay_finite():
    # A^N / N! would overflow a double long before this.
    c = ErlangC(5100, 5000 / 180, 180.0)
    assert 0 < c.p_wait < 1 and math.isfinite(c.asa)
    a = ErlangA(4000, 5000 / 180, 180.0, 60.0)  # heavily overloaded but stable
    assert 0.15 < a.p_abandon < 0.25
    assert 0 <= a.service_level(20) <= 1 and math.isfinite(a.asa)
    assert a.p_abandon == pytest.approx(1 - 4000 / 5000, abs=0.01)  # fluid limit


def _mean_queue(m: ErlangA) -> float:
    return float(np.dot(m._waiting, np.arange(m._waiting.size)))


@pytest.mark.parametrize("n, lam, aht, patience", [
    (50, 0.8, 60.0, 120.0), (3, 0.05, 60.0, 10.0), (20, 0.3, 60.0, 300.0), (10, 1.0, 30.0, 20.0),
])
def test_erlang_a_abandon_identity(n, lam, aht, patience):
    # Independent of the Beta closed form: abandons happen at rate θ per
    # waiting caller, so P(abandon) = θ·E[queue] / λ.
    m = ErlangA(n, lam, aht, patience)
    assert m.p_abandon == pytest.approx(_mean_queue(m) / patience / lam, rel=1e-10)
    # Little's law on the queue: E[queue] = λ · E[wait over all offered calls].
    mean_wait_all = m.asa * m.p_answered + m.mean_abandon_wait * m.p_abandon
    assert _mean_queue(m) == pytest.approx(lam * mean_wait_all, rel=1e-9)


def _tagged_chain_by_uniformization(m: ErlangA, t: float) -> tuple[float, float]:
    """P(answered by t), P(abandoned by t), integrating the tagged caller's
    Markov chain directly instead of using the closed forms."""
    n_mu, theta = m.agents / m.aht, 1 / m.patience
    pi = m._waiting
    size = pi.size
    rate = n_mu + (size + 1) * theta
    p = pi.copy()  # probability of being at position k (k ahead), still waiting
    served = abandoned = 0.0
    poisson = math.exp(-rate * t)
    out_served = out_abandoned = 0.0
    k = np.arange(size)
    for step in range(5000):
        out_served += poisson * served
        out_abandoned += poisson * abandoned
        move = (n_mu + k * theta) / rate
        new = p * (1 - move - theta / rate)
        new[:-1] += p[1:] * move[1:]
        served += p[0] * move[0]
        abandoned += float(p.sum()) * theta / rate
        p = new
        poisson *= rate * t / (step + 1)
        if step > rate * t and poisson < 1e-18:
            break
    return (1 - m.p_wait) + out_served, out_abandoned


@pytest.mark.parametrize("t", [0.0, 5.0, 20.0, 60.0, 300.0])
def test_erlang_a_wait_distribution_against_tagged_chain(t):
    m = ErlangA(50, 0.8, 60.0, 120.0)
    answered, abandoned = _tagged_chain_by_uniformization(m, t)
    assert m.answered_within(t) == pytest.approx(answered, abs=1e-9)
    assert m.abandoned_within(t) == pytest.approx(abandoned, abs=1e-9)


def test_erlang_a_limits():
    m = ErlangA(50, 0.8, 60.0, 120.0)
    assert m.answered_within(0) == pytest.approx(1 - m.p_wait)
    assert m.answered_within(math.inf) == pytest.approx(m.p_answered)
    assert m.abandoned_within(math.inf) == pytest.approx(m.p_abandon)
    # Very patient callers turn Erlang A into Erlang C.
    c = ErlangC(12, LAM_C, AHT_C)
    a = ErlangA(12, LAM_C, AHT_C, 1e9)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.asa == pytest.approx(c.asa, rel=1e-4)
    assert a.service_level(20) == pytest.approx(c.service_level(20), rel=1e-5)


def test_service_level_variants_are_ordered():
    m = ErlangA(50, 0.8, 60.0, 120.0)
    sl = {v: m.service_level(20, v) for v in ServiceLevelVariant}
    # Removing abandons from the denominator (fully or only the short ones)
    # can only raise the ratio; counting quick abandons as good too.
    assert sl[ServiceLevelVariant.OFFERED] < sl[ServiceLevelVariant.EXCLUDING_SHORT_ABANDONS] < sl[ServiceLevelVariant.ANSWERED]
    assert sl[ServiceLevelVariant.OFFERED] < sl[ServiceLevelVariant.ABANDONS_POSITIVE]


def test_erlang_a_staffing_is_minimal():
    p = agents_required(0.8, 60.0, 0.80, 20, patience=120.0)
    assert p.service_level >= 0.80
    assert ErlangA(p.agents - 1, 0.8, 60.0, 120.0).service_level(20) < 0.80
    # Abandons shed load, so Erlang A never asks for more than Erlang C.
    assert p.agents <= agents_required(0.8, 60.0, 0.80, 20).agents


def test_staffing_secondary_targets():
    base = agents_required(LAM_C, AHT_C, 0.80, 20)
    strict = agents_required(LAM_C, AHT_C, 0.80, 20, max_asa=3.0, max_occupancy=0.65)
    assert strict.agents > base.agents
    assert strict.asa <= 3.0 and strict.occupancy <= 0.65


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        ErlangC(10, -1.0, 180.0)
    with pytest.raises(ValueError):
        ErlangA(10, 1.0, 180.0, 0.0)
    with pytest.raises(ValueError):
        agents_required(LAM_C, AHT_C, 80, 20)  # a percent, not a ratio


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    load=st.floats(0.1, 150.0),
    patience=st.floats(5.0, 2000.0),
    t=st.floats(0.0, 120.0),
)
def test_erlang_a_properties(n, load, patience, t):
    aht = 60.0
    m = queue_model(n, load / aht, aht, patience)
    more = queue_model(n + 1, load / aht, aht, patience)
    for value in (m.p_wait, m.p_abandon, m.answered_within(t), m.abandoned_within(t), m.occupancy):
        assert -1e-12 <= value <= 1 + 1e-12
    assert m.answered_within(t) <= m.answered_within(t + 10) + 1e-12
    assert m.answered_within(t) + m.abandoned_within(t) <= 1 + 1e-9
    assert more.p_abandon <= m.p_abandon + 1e-12
    assert more.service_level(t) >= m.service_level(t) - 1e-9
    assert m.asa >= 0


def test_cli_table_and_json(capsys):
    import json

    from acdcore.erlang_cli import main

    assert main(["--calls", "100", "--interval", "30m", "--aht", "180", "--target", "80", "--within", "20"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "<- required" in line)
    assert row.split()[:3] == ["14", "88.8%", "7.8s"]

    assert main(["--calls", "2880", "--interval", "1h", "--aht", "1m", "--patience", "2m", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "erlang_a"
    req = doc["required"]
    assert req["agents"] == 46 and req["service_level"] >= 0.8
    rows = {r["agents"]: r for r in doc["around"]}
    assert rows[45]["service_level"] < 0.8  # the answer is minimal
    assert rows[49]["p_abandon"] < req["p_abandon"]


def test_cli_rejects_bad_input(capsys):
    from acdcore.erlang_cli import main

    with pytest.raises(SystemExit):
        main(["--calls", "100", "--aht", "soon"])
    assert "not a duration" in capsys.readouterr().err
