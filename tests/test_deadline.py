"""Hand-checked cases of the ``deadline`` policy: a horizon plan whose slot 0 is the setpoint.

Numbers: a three-phase car at 32 A on 230 V draws 22.08 kW, so 22,080 Wh is one
hour at its maximum; a 15-minute slot at 16 A three-phase gives 2,760 Wh.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies import POLICIES, AllocationProblem, Horizon, LimitNode, SessionDemand
from policies.deadline import deadline
from policies.verify import violations
from policies.weighted_fair import weighted_fair

HOUR_AT_32A_WH = 32 * 3 * 230.0
HOUR_S = 3600.0
NO_PLAN = Horizon()


def _car(key: str, leave_h: float | None, need_wh: float | None, **kw: float) -> SessionDemand:
    return SessionDemand(
        key,
        "site",
        departure_s=None if leave_h is None else leave_h * HOUR_S,
        energy_wh=need_wh,
        **kw,  # type: ignore[arg-type]
    )


def _site(
    limit_a: float, *cars: SessionDemand, horizon: Horizon = NO_PLAN, **node: object
) -> AllocationProblem:
    site = LimitNode("site", None, limit_a, label="site", **node)  # type: ignore[arg-type]
    return AllocationProblem((site,), cars, horizon=horizon)


def test_is_registered() -> None:
    """The config picks it by the name ``deadline``."""
    assert POLICIES["deadline"] is deadline


def test_the_car_that_leaves_first_is_served_first() -> None:
    """Room for one car at a time; each needs an hour at 32 A; one leaves in 1 h, the other
    in 3 h: only serving the early one now gets both out full, so it gets 32 A and the
    other waits, and nobody is reported short."""
    problem = _site(32.0, _car("late", 3, HOUR_AT_32A_WH), _car("early", 1, HOUR_AT_32A_WH))
    answer = deadline(problem)
    assert answer.current_a("early") == 32.0
    assert answer.current_a("late") == 0.0
    assert answer.connectors["late"].reason == "deadline plan: later slot"
    assert answer.unserved == ()
    assert violations(problem, answer) == []


def test_a_car_that_cannot_be_served_in_time_is_reported() -> None:
    """Needs two hours at 32 A but leaves in one: it charges at 32 A now and the plan
    reports it one hour's energy short, in its explanation and in ``unserved``."""
    problem = _site(63.0, _car("van", 1, 2 * HOUR_AT_32A_WH))
    answer = deadline(problem)
    assert answer.current_a("van") == 32.0
    (short,) = answer.unserved
    assert short.connector_id == "van"
    assert short.short_wh == pytest.approx(HOUR_AT_32A_WH, rel=1e-6)
    assert short.energy_wh == 2 * HOUR_AT_32A_WH
    assert short.departure_s == HOUR_S
    assert answer.connectors["van"].reason == "session max; short 22.1 kWh at departure"


def test_a_car_at_an_unknown_node_is_reported_with_its_whole_need() -> None:
    """It cannot run at all: 0 A with the reason, and all of its need in ``unserved``."""
    lost = SessionDemand("lost", "nowhere", departure_s=HOUR_S, energy_wh=1000.0)
    answer = deadline(_site(32.0, lost))
    assert answer.connectors["lost"].reason == "paused: unknown node nowhere"
    assert [(u.connector_id, u.short_wh) for u in answer.unserved] == [("lost", 1000.0)]


def test_a_price_valley_is_used() -> None:
    """An hour of charge needed within 4 h; the first two hours cost 0.40, the next two
    0.10: the car waits now (0 A, ``later slot``). Without prices it charges at once."""
    prices = tuple([0.40] * 8 + [0.10] * 8)
    car = _car("van", 4, HOUR_AT_32A_WH)
    priced = deadline(_site(63.0, car, horizon=Horizon(prices=prices)))
    assert priced.current_a("van") == 0.0
    assert priced.connectors["van"].reason == "deadline plan: later slot"
    assert priced.unserved == ()
    assert deadline(_site(63.0, car)).current_a("van") == 32.0


def test_the_valley_is_left_when_the_forecast_fills_it() -> None:
    """Same prices, but the forecast says the building takes the whole connection from
    slot 1 on: the only room is now, so the car charges now despite the price."""
    prices = tuple([0.40] * 8 + [0.10] * 8)
    full = tuple([(63.0, 63.0, 63.0)] * 16)
    horizon = Horizon(prices=prices, base_forecast_a=full)
    answer = deadline(_site(63.0, _car("van", 4, HOUR_AT_32A_WH), horizon=horizon))
    assert answer.current_a("van") == 32.0
    assert answer.unserved[0].short_wh == pytest.approx(0.75 * HOUR_AT_32A_WH, rel=1e-6)


def test_the_peak_cap_holds_with_the_base_load() -> None:
    """A 20 kW cap on the 15-minute peak, 10 A per phase of building load (6.9 kW): the
    car may add at most 13.1 kW, so 18.9 A on three phases (floored to 0.1 A), and the
    explanation names the cap."""
    horizon = Horizon(peak_cap_w=20_000.0)
    problem = _site(
        100.0, _car("van", 8, 3 * HOUR_AT_32A_WH), horizon=horizon, base_load_a=(10, 10, 10)
    )
    answer = deadline(problem)
    assert answer.current_a("van") == 18.9
    assert answer.connectors["van"].reason == "peak cap power"
    assert (30 + 3 * answer.current_a("van")) * 230.0 <= 20_000.0
    assert violations(problem, answer) == []


def test_slot_zero_keeps_zero_or_the_minimum() -> None:
    """100 Wh needed within 4 h by a car that holds nothing: the plan asks for well under
    6 A now, and the setpoint is raised to the 6 A minimum (charging now never hurts a car
    that must leave charged), never a current between 0 and 6 A."""
    answer = deadline(_site(63.0, _car("van", 4, 100.0)))
    assert answer.current_a("van") == 6.0


def test_a_charging_car_the_plan_finishes_in_slot_zero_keeps_its_maximum() -> None:
    """The same car charging at 32 A: the plan delivers the rest within the first slot, at
    well under 6 A on average; the car keeps its maximum (it finishes in seconds and is cut
    once), not the slot's average."""
    car = replace(_car("van", 4, 100.0), held_a=32.0)
    answer = deadline(_site(63.0, car))
    assert answer.current_a("van") == 32.0
    assert answer.connectors["van"].reason == "session max"


def test_flexible_cars_share_the_rest_weighted_fair() -> None:
    """The van must take 32 A now to leave full in an hour; two cars without a departure
    (weights 1 and 2) share the 31 A left as weighted_fair shares it."""
    van = _car("van", 1, HOUR_AT_32A_WH)
    one, two = _car("one", None, None), _car("two", None, None, weight=2.0)
    answer = deadline(_site(63.0, van, one, two))
    assert answer.current_a("van") == 32.0
    assert answer.current_a("one") == pytest.approx(10.3)
    assert answer.current_a("two") == pytest.approx(20.6)
    assert answer.connectors["two"].reason == "site L1"


def test_without_deadlines_it_is_weighted_fair() -> None:
    """No car says when it leaves: the answer is weighted_fair's, entry for entry."""
    problem = _site(40.0, _car("a", None, None), _car("b", None, 5000.0, weight=3.0))
    assert dict(deadline(problem).connectors) == dict(weighted_fair(problem).connectors)


def test_a_car_that_needs_nothing_more_is_flexible() -> None:
    """A need of 0 Wh puts the car among the flexible ones (it may still take current)."""
    answer = deadline(_site(32.0, _car("done", 2, 0.0)))
    assert answer.current_a("done") == 32.0
    assert answer.unserved == ()
