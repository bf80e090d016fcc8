"""Properties of ``deadline`` on random depots, checked with hypothesis.

The sites are those of tests/test_policy_properties.py; some cars get a
departure (possibly already past) and an energy need (possibly more than
they can take in time), and the horizon has random slot counts, prices, a
peak cap and a base-load forecast. (The invariants with no departures at all
are covered there: ``deadline`` is in the registry that test walks.)

Raising a car's priority cannot promise it more current *now* once
departures differ: the plan may move its charging to a later slot to make
room for another car that must leave first. What holds instead, and is
tested: its planned shortfall at departure never grows (shortfall costs
weight × kWh in the plan's objective, so a heavier weight can only lower it),
and a car without a departure never gets less (it is served by
``weighted_fair`` from what the planned cars leave, which its weight does not
change).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Allocation, AllocationProblem, Horizon
from policies.deadline import deadline
from policies.verify import violations
from tests.test_policy_properties import _raise_one_weight, problems

SETTINGS = settings(max_examples=300, deadline=None)

_SLOTS = st.sampled_from([1, 2, 8, 96])
_PRICES = st.one_of(st.just(()), st.lists(st.integers(0, 50).map(lambda c: c / 100), max_size=8))
_CAP_W = st.none() | st.integers(0, 120_000).map(float)
_FORECAST = st.lists(st.tuples(*[st.integers(0, 150).map(float)] * 3), max_size=4)
_DEPARTURE_S = st.sampled_from([-600.0, 0.0, 300.0, 900.0, 3000.0, 36_000.0, 200_000.0])
_NEED_WH = st.sampled_from([0.0, 50.0, 2_000.0, 20_000.0, 200_000.0])
_HELD_A = st.none() | st.sampled_from([0.0, 3.0, 6.0, 16.0, 32.0, 80.0])


@st.composite
def depots(draw: st.DrawFn) -> AllocationProblem:
    """A random site where some cars say when they leave and what they still need, and
    some hold a current now (possibly more than their maximum)."""
    case = draw(problems())
    sessions = tuple(
        replace(s, departure_s=draw(_DEPARTURE_S), energy_wh=draw(_NEED_WH))
        if draw(st.booleans())
        else s
        for s in case.sessions
    )
    sessions = tuple(replace(s, held_a=draw(_HELD_A)) for s in sessions)
    horizon = Horizon(900.0, draw(_SLOTS), 0.0, tuple(draw(_PRICES)), draw(_CAP_W))
    horizon = replace(horizon, base_forecast_a=tuple(draw(_FORECAST)))
    return replace(case, sessions=sessions, horizon=horizon)


def _peak_w(case: AllocationProblem, answer: Allocation) -> float:
    sessions_a = sum(answer.current_a(s.connector_id) * len(s.phases) for s in case.sessions)
    root = case.nodes[0]
    return (sum(root.base_load_a) + 3 * root.margin_a + sessions_a) * case.voltage_v


@SETTINGS
@given(case=depots())
def test_deadline_keeps_every_invariant(case: AllocationProblem) -> None:
    """Every node and phase under its limit − margin, 0 A or the minimum up to the
    maximum on the 0.1 A grid, one entry per session; with a peak cap, the site's power
    (base load and margin included) under the cap unless the base load alone is over."""
    answer = deadline(case)
    assert violations(case, answer) == []
    cap_w = case.horizon.peak_cap_w
    if cap_w is not None and _peak_w(case, Allocation()) <= cap_w:
        assert _peak_w(case, answer) <= cap_w + 1e-6


@SETTINGS
@given(case=depots())
def test_every_short_car_is_reported_and_explained(case: AllocationProblem) -> None:
    """``unserved`` names only cars with a departure and a need, each at most once, short
    by no more than its need, and its entry's reason says so (unless it cannot run)."""
    answer = deadline(case)
    keys = [u.connector_id for u in answer.unserved]
    assert len(keys) == len(set(keys))
    by_key = {s.connector_id: s for s in case.sessions}
    for u in answer.unserved:
        car = by_key[u.connector_id]
        assert car.departure_s is not None
        assert car.energy_wh is not None
        assert 0.0 < u.short_wh <= car.energy_wh + 1e-6
        reason = answer.connectors[u.connector_id].reason
        assert "kWh at departure" in reason or reason.startswith("paused:")


def _short_wh(answer: Allocation, key: str) -> float:
    return sum(u.short_wh for u in answer.unserved if u.connector_id == key)


@SETTINGS
@given(case=depots(), data=st.data())
def test_raising_a_weight_never_raises_that_cars_shortfall(
    case: AllocationProblem, data: st.DataObject
) -> None:
    """A car whose priority goes up is planned to leave no shorter than before (1 Wh of
    solver tolerance)."""
    if not case.sessions:
        return
    higher, key = _raise_one_weight(case, data)
    assert _short_wh(deadline(higher), key) <= _short_wh(deadline(case), key) + 1.0


@SETTINGS
@given(case=depots(), data=st.data())
def test_raising_a_flexible_cars_weight_never_lowers_its_current(
    case: AllocationProblem, data: st.DataObject
) -> None:
    """A car without a departure whose priority goes up gets at least what it got."""
    higher, key = (case, "") if not case.sessions else _raise_one_weight(case, data)
    car = next((s for s in higher.sessions if s.connector_id == key), None)
    if car is None or (car.departure_s is not None and (car.energy_wh or 0.0) > 0.0):
        return
    assert deadline(higher).current_a(key) >= deadline(case).current_a(key)


def _weight(case: AllocationProblem) -> dict[str, float]:
    """Each car's weight as the plan reads it (clipped to 1e-3..1e3)."""
    return {s.connector_id: min(max(s.weight, 1e-3), 1e3) for s in case.sessions}


def _weighted_short(case: AllocationProblem, answer: Allocation) -> float:
    weight = _weight(case)
    return sum(weight[u.connector_id] * u.short_wh for u in answer.unserved)


@SETTINGS
@given(case=depots())
def test_holding_current_never_costs_energy_at_departure(case: AllocationProblem) -> None:
    """The stickiness toward what the cars hold only breaks ties: the plan's weighted
    shortfall is the one it has when nobody holds anything (1 Wh per car of tolerance)."""
    fresh = replace(case, sessions=tuple(replace(s, held_a=None) for s in case.sessions))
    slack = sum(_weight(case).values()) * 1.0
    assert _weighted_short(case, deadline(case)) <= _weighted_short(fresh, deadline(fresh)) + slack
