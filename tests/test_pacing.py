"""Pacing increases (controller/pacing.py) as plan_changes applies it (controller/dispatch.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.dispatch import Change, ChangeKind, Held, plan_changes
from controller.pacing import Pace, imposed, release_at, step_a
from controller.targets import Target


def target(limit_a: float, reason: str = "site L1") -> Target:
    return Target("a", 1, 1, limit_a, reason)


def plan(held: Held, new_a: float, now: float, pace: Pace, reason: str = "site L1") -> list[Change]:
    return plan_changes(
        {"a/1": target(new_a, reason)}, {"a/1": held}, now, 6.0, 0.5, 60.0, pace=pace
    )


LEARNED = Pace(response_s={"a": 8.0}, default_s=5.0, min_interval_s=2.0, ramp_step_a=10.0)
LEARNED_FOLLOWING = Pace(
    response_s={"a": 8.0}, default_s=5.0, following=frozenset({"a/1"}), min_interval_s=2.0
)


def test_an_increase_waits_the_response_time_while_the_car_has_not_followed() -> None:
    """Learned 8 s, the car still following its last change: not at 7 s, at 8 s."""
    pace = Pace(
        response_s={"a": 8.0},
        default_s=5.0,
        following=frozenset({"a/1"}),
        min_interval_s=2.0,
        ramp_step_a=10.0,
    )
    held = Held(16.0, 100.0, 1, changed_at=100.0)
    assert plan(held, 20.0, 107.0, pace) == []
    [change] = plan(held, 20.0, 108.0, pace)
    assert change.kind is ChangeKind.INCREASE
    assert change.target.limit_a == 20.0


def test_a_car_that_followed_waits_only_the_minimum_interval() -> None:
    """Followed: the next ramp step goes the minimum interval after the last increase, not
    after the response time."""
    held = Held(16.0, 100.0, 1, changed_at=100.0, increased_at=100.0)
    assert plan(held, 20.0, 101.0, LEARNED) == []
    assert [c.target.limit_a for c in plan(held, 20.0, 102.0, LEARNED)] == [20.0]


def test_an_unlearned_charger_waits_for_its_car_to_follow() -> None:
    """Acknowledged mode, response time not learned: the default says nothing of a 30 s car,
    so the increase waits for the car (at most the maximum)."""
    pace = Pace(default_s=5.0, following=frozenset({"a/1"}), min_interval_s=2.0, max_s=60.0)
    held = Held(16.0, 100.0, 1, changed_at=100.0)
    assert plan(held, 20.0, 130.0, pace) == []
    assert [c.target.limit_a for c in plan(held, 20.0, 160.0, pace)] == [20.0]


def test_followed_mode_waits_for_the_car_even_when_learned() -> None:
    """increases_wait_for: followed: the learned time does not release the wait."""
    pace = Pace(
        response_s={"a": 8.0},
        following=frozenset({"a/1"}),
        wait_for_followed=True,
        min_interval_s=2.0,
        max_s=60.0,
    )
    assert release_at(pace, "a/1", "a", 100.0, 100.0, False) == 160.0


def test_a_new_car_on_a_learned_charger_waits_for_its_own_follow() -> None:
    """The charger learned 8 s from its last car; the new car (unproven) has not followed
    its change: its increase waits for it, at most the maximum, not the 8 s; a change it
    could not show waits at least the default, not a faster predecessor's 2 s."""
    pace = Pace(
        response_s={"a": 8.0},
        default_s=5.0,
        following=frozenset({"a/1"}),
        unproven=frozenset({"a/1"}),
        min_interval_s=2.0,
        max_s=60.0,
    )
    held = Held(16.0, 100.0, 1, changed_at=100.0)
    assert plan(held, 20.0, 130.0, pace) == []
    assert [c.target.limit_a for c in plan(held, 20.0, 160.0, pace)] == [20.0]
    quiet = Pace(
        response_s={"a": 2.0}, default_s=5.0, quiet=frozenset({"a/1"}), unproven=frozenset({"a/1"})
    )
    assert release_at(quiet, "a/1", "a", 100.0, 90.0, False) == 105.0
    proven = Pace(response_s={"a": 2.0}, default_s=5.0, quiet=frozenset({"a/1"}))
    assert release_at(proven, "a/1", "a", 100.0, 90.0, False) == 102.0


@given(
    st.floats(1, 60),
    st.floats(1, 60),
    st.floats(0, 10),
    st.floats(0, 200),
    st.floats(0, 200),
    st.booleans(),
)
def test_an_unproven_car_is_never_released_before_it_follows_or_the_maximum(
    learned_s: float,
    default_s: float,
    min_interval_s: float,
    changed_at: float,
    increased_at: float,
    quiet: bool,
) -> None:
    """Whatever its charger learned from other cars, an unproven car still following its
    change waits until the maximum after it; one whose change it could not show waits at
    least the default (as on an unlearned charger) and at least its charger's time."""
    pace = Pace(
        response_s={"a": learned_s},
        default_s=default_s,
        following=frozenset() if quiet else frozenset({"a/1"}),
        quiet=frozenset({"a/1"}) if quiet else frozenset(),
        unproven=frozenset({"a/1"}),
        min_interval_s=min_interval_s,
        max_s=60.0,
    )
    at = release_at(pace, "a/1", "a", changed_at, increased_at, False)
    assert at >= increased_at + min_interval_s
    wait_s = max(default_s, learned_s) if quiet else 60.0
    assert at >= changed_at + wait_s


def test_increases_ramp_in_steps() -> None:
    """16 A → 32 A with 10 A steps: 26 A first, marked as ramping."""
    held = Held(16.0, 100.0, 1, changed_at=0.0)
    [change] = plan(held, 32.0, 200.0, LEARNED)
    assert change.target.limit_a == 26.0
    assert "ramping" in change.target.reason


def test_a_paused_car_gets_its_whole_target_at_once() -> None:
    """From 0 A no ramp step (a step under 6 A would stop the car) and no wait."""
    held = Held(0.0, 100.0, 1, changed_at=100.0)
    [change] = plan(held, 24.0, 100.1, LEARNED)
    assert change.target.limit_a == 24.0


def test_recovery_from_a_fault_goes_back_in_one_step() -> None:
    """A fail-safe setpoint (imposed by a fault, a decrease) goes back to the allocation at
    once and in one step, whether or not the car has followed it; so does a restored
    setpoint re-asserted."""
    held = Held(6.0, 100.0, 1, changed_at=100.0, imposed=True)
    pace = Pace(default_s=5.0, following=frozenset({"a/1"}), min_interval_s=2.0, ramp_step_a=4.0)
    assert [c.target.limit_a for c in plan(held, 32.0, 100.5, pace)] == [32.0]
    fresh = Held(6.0, 100.0, 1, changed_at=100.0)
    restored = plan(fresh, 21.0, 100.5, pace, reason="restored from the state store")
    assert [c.target.limit_a for c in restored] == [21.0]


def test_a_decrease_not_followed_holds_the_next_increase() -> None:
    """Told to come down and not there yet: no increase before the response time (an
    increase now would reverse a change the car has not made: oscillation)."""
    held = Held(10.0, 100.0, 1, changed_at=100.0, increased_at=50.0)
    assert plan(held, 20.0, 107.9, LEARNED_FOLLOWING) == []
    assert [c.target.limit_a for c in plan(held, 20.0, 108.0, LEARNED_FOLLOWING)] == [20.0]


def test_decreases_never_wait_nor_ramp() -> None:
    """A decrease goes out at once, whole, whatever the pace."""
    held = Held(32.0, 100.0, 1, changed_at=100.0)
    pace = Pace(following=frozenset({"a/1"}), min_interval_s=5.0, ramp_step_a=2.0)
    [change] = plan(held, 6.0, 100.1, pace)
    assert change.kind is ChangeKind.DECREASE
    assert change.target.limit_a == 6.0


def test_imposed_reasons() -> None:
    """Fail-safe, non-compliant and restored targets are imposed; an allocation is not."""
    assert imposed("fail-safe: no good meter reading yet")
    assert imposed("non-compliant: draws more than its setpoint; its rating is reserved")
    assert imposed("restored from the state store, not yet confirmed by its charger")
    assert not imposed("site L1")


@given(st.floats(6, 80), st.floats(0, 80), st.floats(1, 40))
def test_a_ramp_step_never_exceeds_the_step_nor_the_target(
    old_a: float, new_a: float, ramp_a: float
) -> None:
    """A step is at most ``ramp_step_a`` above what is held and never above the target."""
    stepped = step_a(Pace(ramp_step_a=ramp_a), old_a, new_a, False)
    assert stepped <= new_a
    assert stepped <= old_a + ramp_a + 1e-9
