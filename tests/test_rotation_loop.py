"""The loop feeds run and pause times to the policy, so paused cars take turns."""

from __future__ import annotations

from controller.decide import decide
from controller.rotation import next_run_state
from policies import get_policy
from tests.helpers import session, site_config, snapshot

# 63 A − 2 A margin − 50 A base = 11 A: one 3-phase car's 6 A minimum fits, not two.
CONFIG = site_config(chargers=2)
METER_A = (50.0, 50.0, 50.0)


def test_the_car_that_ran_its_minimum_gives_way_to_the_one_that_waited() -> None:
    """After 400 s of charging against 400 s of waiting (minimums 300 s), they swap."""
    snap = snapshot([session(0), session(1)], meter_a=METER_A, at=1000.0)
    state = {"cp-0/1": (True, 600.0), "cp-1/1": (False, 600.0)}
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), {}, run_state=state)
    assert decision.targets["cp-0/1"].limit_a == 0.0
    assert decision.targets["cp-1/1"].limit_a >= 6.0


def test_a_car_within_its_minimum_run_keeps_charging() -> None:
    """After only 100 s of charging the running car keeps its turn."""
    snap = snapshot([session(0), session(1)], meter_a=METER_A, at=1000.0)
    state = {"cp-0/1": (True, 900.0), "cp-1/1": (False, 600.0)}
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), {}, run_state=state)
    assert decision.targets["cp-0/1"].limit_a >= 6.0
    assert decision.targets["cp-1/1"].limit_a == 0.0


def test_run_state_changes_only_when_a_car_starts_or_stops() -> None:
    """The 'since' of a car moves only when it goes from running to paused or back."""
    snap = snapshot([session(0), session(1)], meter_a=METER_A, at=1000.0)
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), {})
    first = next_run_state({}, decision, now=1000.0)
    assert first == {"cp-0/1": (True, 1000.0), "cp-1/1": (False, 1000.0)} or first == {
        "cp-0/1": (False, 1000.0),
        "cp-1/1": (True, 1000.0),
    }
    assert next_run_state(first, decision, now=1005.0) == first
