"""``deadline`` solved tick after tick: the plan does not swap cars that are equal.

A control loop re-plans every second on a problem that barely moves: the
departures come one second closer, the needs shrink by what the cars drew, the
measured base load jitters. Each tick hands the policy what every car holds now
(``SessionDemand.held_a``); ties in the plan resolve toward that, so a car that
charges keeps charging and one that waits keeps waiting, unless the plan's
shortfall, a price or a limit says otherwise.
"""

from __future__ import annotations

from dataclasses import replace

from policies import AllocationProblem, Horizon, LimitNode, SessionDemand
from policies.deadline import deadline
from policies.verify import violations

_VOLTS = 230.0
_TICK_S = 1.0
_JITTER_A = (0.0, 0.4, -0.3, 0.2, -0.4, 0.1, 0.3, -0.2)
"""The measured base load's wobble around 10 A, tick by tick (a meter and reports that
do not line up; the loop's median leaves about this much)."""


def _depot(cars: dict[str, tuple[float, float, float]], tick: int) -> AllocationProblem:
    """Six equal vans on a 60 A connection with 10 A of building load (room for three
    at 16 A); ``cars`` maps each van to (seconds to departure, Wh still needed, A held)."""
    base = 10.0 + _JITTER_A[tick % len(_JITTER_A)]
    site = LimitNode("site", None, 60.0, margin_a=2.0, base_load_a=(base, base, base))
    sessions = tuple(
        SessionDemand(
            key, "site", max_current_a=16.0, departure_s=leave_s, energy_wh=need_wh, held_a=held_a
        )
        for key, (leave_s, need_wh, held_a) in cars.items()
    )
    return AllocationProblem((site,), sessions, horizon=Horizon(slot_s=2.0, slots=54))


def _charging(problem: AllocationProblem, currents: dict[str, float]) -> set[str]:
    return {s.connector_id for s in problem.sessions if currents[s.connector_id] > 0.0}


def test_equal_cars_are_not_swapped_from_tick_to_tick() -> None:
    """Three vans leave in 38 s, three in 66 s, each needs 90 Wh (about 30 s at 16 A),
    re-planned every second until the late ones leave: the three early vans charge and the
    late ones wait for the first 25 ticks; at no tick does a van that still needs energy
    stop while another starts; every answer keeps the invariants; nobody leaves short."""
    cars = {f"early-{i}": (38.0, 90.0, 0.0) for i in range(3)}
    cars |= {f"late-{i}": (66.0, 90.0, 0.0) for i in range(3)}
    before: set[str] = set()
    for tick in range(66):
        cars = {key: car for key, car in cars.items() if car[0] > 0.0}  # gone at departure
        problem = _depot(cars, tick)
        answer = deadline(problem)
        assert violations(problem, answer) == []
        currents = answer.currents_a()
        now = _charging(problem, currents)
        stopped = {key for key in before - now if key in cars and cars[key][1] > 0.0}
        assert not (stopped and now - before), f"tick {tick}: {sorted(before)} -> {sorted(now)}"
        if 0 < tick <= 25:
            assert now == {"early-0", "early-1", "early-2"}, f"tick {tick}"
        before = now
        cars = {
            key: (
                leave_s - _TICK_S,
                max(need_wh - currents[key] * 3 * _VOLTS * _TICK_S / 3600, 0.0),
                currents[key],
            )
            for key, (leave_s, need_wh, _) in cars.items()
        }
        assert all(need_wh < 1.0 for leave_s, need_wh, _ in cars.values() if leave_s <= 0.0)


def test_the_car_that_holds_current_keeps_it_among_equals() -> None:
    """Room for one car at 32 A, two identical cars that could each go first: the one that
    charges now keeps charging, whichever of the two it is."""
    cars = (
        SessionDemand("a", "site", departure_s=7200.0, energy_wh=11_040.0),
        SessionDemand("b", "site", departure_s=7200.0, energy_wh=11_040.0),
    )
    site = LimitNode("site", None, 32.0)
    for runner, waiter in (("a", "b"), ("b", "a")):
        held = tuple(replace(c, held_a=32.0 if c.connector_id == runner else 0.0) for c in cars)
        answer = deadline(AllocationProblem((site,), held))
        assert answer.current_a(runner) == 32.0
        assert answer.current_a(waiter) == 0.0


def test_holding_current_does_not_beat_a_price_valley() -> None:
    """A car that charges now at 32 A, an hour needed within 4 h, the first two hours at
    0.40 and the next two at 0.10: the plan still stops it and charges in the valley."""
    prices = tuple([0.40] * 8 + [0.10] * 8)
    car = SessionDemand("van", "site", departure_s=4 * 3600.0, energy_wh=22_080.0, held_a=32.0)
    site = LimitNode("site", None, 63.0)
    problem = AllocationProblem((site,), (car,), horizon=Horizon(prices=prices))
    assert deadline(problem).current_a("van") == 0.0


def test_holding_current_does_not_make_a_car_short() -> None:
    """Room for one car; the late car holds it, but the early car can only leave full if it
    charges now: the plan swaps them (a shortfall costs more than any change)."""
    late = SessionDemand("late", "site", departure_s=3 * 3600.0, energy_wh=22_080.0, held_a=32.0)
    early = SessionDemand("early", "site", departure_s=3600.0, energy_wh=22_080.0, held_a=0.0)
    answer = deadline(AllocationProblem((LimitNode("site", None, 32.0),), (late, early)))
    assert answer.current_a("early") == 32.0
    assert answer.current_a("late") == 0.0
    assert answer.unserved == ()


def test_a_van_that_finishes_is_cut_once() -> None:
    """Re-planned every second with 2 s slots, an early van whose need fits in the first
    slot keeps its 16 A until the need is met and then gets 0: one cut, not a step down
    per tick (16, 13, 6, 0 A before, each step a handover the loop had to time)."""
    cars = {f"early-{i}": (38.0, 90.0, 0.0) for i in range(3)}
    cars |= {f"late-{i}": (66.0, 90.0, 0.0) for i in range(3)}
    seen: dict[str, list[float]] = {key: [] for key in cars}
    for tick in range(38):
        problem = _depot(cars, tick)
        currents = deadline(problem).currents_a()
        for key in cars:
            seen[key].append(currents[key])
        cars = {
            key: (
                leave_s - _TICK_S,
                max(need_wh - currents[key] * 3 * _VOLTS * _TICK_S / 3600, 0.0),
                currents[key],
            )
            for key, (leave_s, need_wh, _) in cars.items()
        }
    for key in ("early-0", "early-1", "early-2"):
        last_on = max(t for t, a in enumerate(seen[key]) if a > 0.0)
        assert seen[key][last_on] >= 15.0, (key, seen[key][last_on - 3 : last_on + 2])
        assert all(a == 0.0 for a in seen[key][last_on + 1 :]), key
