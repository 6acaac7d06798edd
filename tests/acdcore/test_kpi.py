import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acdcore.kpi import KpiWindow, OccupancyMeter, QueueTally, WaitTally
from acdcore.service_level import ServiceLevelVariant as V
from acdcore.service_level import service_level


def _tally() -> QueueTally:
    # 10 offered: 6 answered (waits 0, 3, 10, 20, 25, 40), 3 abandoned
    # (waits 2, 5, 30), 1 timed out.
    t = QueueTally(service_thresholds=(20, 30), short_abandon=5)
    for _ in range(10):
        t.call_offered()
    for w in (0, 3, 10, 20, 25, 40):
        t.call_answered(w)
    for w in (2, 5, 30):
        t.call_abandoned(w)
    t.call_exited("timeout")
    return t


def test_service_level_variants_by_hand():
    t = _tally()
    # answered within 20 s (edge inclusive, like Prometheus le): 0, 3, 10, 20 -> 4
    assert t.answered.within(20) == 4
    assert t.short_abandoned == 2  # 2 s and exactly 5 s
    assert t.service_level(20, V.ANSWERED) == pytest.approx(4 / 6)
    assert t.service_level(20, V.OFFERED) == pytest.approx(4 / 9)
    assert t.service_level(20, V.EXCLUDING_SHORT_ABANDONS) == pytest.approx(4 / 7)
    assert t.service_level(20, V.ABANDONS_POSITIVE) == pytest.approx((4 + 2) / 9)
    assert t.service_level(30, V.OFFERED) == pytest.approx(5 / 9)


def test_other_kpis_by_hand():
    t = _tally()
    assert t.asa == pytest.approx(98 / 6)
    assert t.answer_rate == pytest.approx(6 / 10)
    assert t.abandon_rate() == pytest.approx(3 / 10)
    assert t.abandon_rate(exclude_short=True) == pytest.approx(1 / 8)
    t.call_handled(talk=100, wrap_up=20)
    t.call_handled(talk=200)
    assert t.aht == pytest.approx(160)
    s = t.summary()
    assert s["exited"] == {"timeout": 1}
    assert s["service_level"]["20"]["offered"] == pytest.approx(4 / 9)


def test_unconfigured_threshold_is_an_error_not_a_guess():
    with pytest.raises(KeyError):
        _tally().service_level(15)


def test_empty_tally_is_nan_not_zero():
    t = QueueTally()
    assert math.isnan(t.service_level(20)) and math.isnan(t.asa) and math.isnan(t.aht)


def test_sliding_window_add_and_subtract():
    a, b = _tally(), _tally()
    b.call_answered(1.0)
    total = QueueTally(service_thresholds=(20, 30), short_abandon=5)
    total += a
    total += b
    total -= a
    assert total.answered.count == 7 and total.answered.within(20) == 5
    assert total.summary() == b.summary()
    with pytest.raises(ValueError):
        total += QueueTally(service_thresholds=(15,))


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=200),
       st.lists(st.sampled_from([0.0, 5.0, 15.0, 20.0, 30.0]), min_size=1, max_size=4))
def test_bulk_add_equals_one_by_one(waits, thresholds):
    one, bulk = WaitTally(thresholds), WaitTally(thresholds)
    for w in waits:
        one.add(w)
    bulk.add_many(np.array(waits))
    assert one.count == bulk.count
    assert one.wait_sum == pytest.approx(bulk.wait_sum)
    for th in thresholds:
        assert one.within(th) == bulk.within(th) == sum(w <= th for w in waits)


def test_service_level_function_empty_denominator():
    assert math.isnan(service_level(V.OFFERED, answered=0, answered_within=0, abandoned=0))


def test_occupancy_meter():
    m = OccupancyMeter()
    m.change(0, idle=2)           # two agents log in idle
    m.change(10, busy=1, idle=-1)  # one takes a call
    m.change(40, busy=-1, idle=1)  # and finishes
    m.change(50, idle=-2)          # both log out; later time is not counted
    m.advance(1000)
    # busy 30 s; idle 2*10 + 1*30 + 2*10 = 70 s
    assert m.occupancy == pytest.approx(30 / 100)
    with pytest.raises(ValueError):
        m.change(5, busy=1)
    with pytest.raises(ValueError):
        m.change(2000, busy=-1)


def test_kpi_window_slides_in_slot_steps():
    w = KpiWindow(span=60, slots=6, service_thresholds=(20,))   # 10 s slots
    w.at(0).call_offered()
    w.at(0).call_answered(3)
    w.at(15).call_offered()
    w.at(15).call_abandoned(30)
    w.at(14).call_offered()         # a little in the past: newest slot, not an error
    assert w.total(59).offered == 3
    assert w.total(59).service_level(20) == pytest.approx(1 / 2)
    assert w.total(60).offered == 2          # slot [0, 10) fell out
    assert w.total(60).answered.count == 0
    assert w.total(125).offered == 0         # everything fell out
    w.at(200).call_offered()
    assert w.total(200).offered == 1
    with pytest.raises(ValueError):
        KpiWindow(span=0)
