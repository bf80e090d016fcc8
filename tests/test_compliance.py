"""Chargers that do not follow their setpoints are flagged and their rating reserved."""

from __future__ import annotations

from controller.compliance import Compliance, check, follows
from controller.decide import decide
from controller.dispatch import Held
from policies import get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

NONE = Compliance({}, frozenset())


def test_flagged_only_after_the_timeout() -> None:
    """Drawing 20 A against a 10 A setpoint is tolerated for the response time, then flagged."""
    held = {"cp-0/1": Held(10.0, 100.0, 1)}
    sessions = (session(0, measured_a=(20.0, 20.0, 20.0), measured_at=101.0),)
    first = check(sessions, held, NONE, now=101.0, timeout_s=30.0)
    assert first.over_since == {"cp-0/1": 101.0}
    assert first.flagged == frozenset()
    later = check(sessions, held, first, now=131.0, timeout_s=30.0)
    assert later.flagged == {"cp-0/1"}


def test_following_clears_the_flag() -> None:
    """A charger that comes down to its setpoint (within 1 A) is trusted again."""
    held = {"cp-0/1": Held(10.0, 100.0, 1)}
    flagged = Compliance({"cp-0/1": 101.0}, frozenset({"cp-0/1"}))
    sessions = (session(0, measured_a=(10.8, 10.8, 10.8), measured_at=140.0),)
    assert check(sessions, held, flagged, now=140.0, timeout_s=30.0) == NONE


def test_a_flag_from_before_a_restart_clears_only_on_evidence() -> None:
    """A session flagged before a restart is trusted again only once it is measured within a
    setpoint of this controller, acknowledged before the measurement, in its transaction."""
    held = Held(10.0, 100.0, 1)
    within = session(0, measured_a=(10.5, 10.5, 10.5), measured_at=101.0)
    assert follows(within, held)
    assert not follows(within, None)  # no setpoint of ours yet
    assert not follows(within, Held(10.0, 100.0, 2))  # another transaction's setpoint
    assert not follows(session(0, measured_a=(10.5, 10.5, 10.5), measured_at=99.0), held)
    assert not follows(session(0, measured_a=(12.0, 10.0, 10.0), measured_at=101.0), held)
    assert not follows(session(0, measured_a=None, measured_at=None), held)


def test_measurements_before_the_setpoint_do_not_count() -> None:
    """A draw measured before the setpoint was acknowledged says nothing about obeying it."""
    held = {"cp-0/1": Held(10.0, 100.0, 1)}
    sessions = (session(0, measured_a=(30.0, 30.0, 30.0), measured_at=99.0),)
    assert check(sessions, held, NONE, now=200.0, timeout_s=30.0) == NONE


def test_a_new_setpoint_does_not_restart_the_clock() -> None:
    """A charger over its setpoints stays suspect while new setpoints keep arriving."""
    previous = Compliance({"cp-0/1": 90.0}, frozenset())
    held = {"cp-0/1": Held(9.0, 119.5, 1)}  # acknowledged after the last measurement
    sessions = (session(0, measured_a=(30.0, 30.0, 30.0), measured_at=119.0),)
    assert check(sessions, held, previous, now=120.0, timeout_s=30.0).flagged == {"cp-0/1"}


def _draw(amps: float, at: float) -> tuple:  # type: ignore[type-arg]
    return (session(0, measured_a=(amps, amps, amps), measured_at=at),)


def test_a_car_a_step_behind_a_run_of_decreases_is_not_flagged() -> None:
    """Setpoints 8 → 6.9 → 0 A in 4.5 s to a car that takes up to 4 s for each: it reaches
    each step before its response time is up, so it is never flagged (the clock restarts
    once it is down to the setpoint it was over when the clock started)."""
    step_1 = {"cp-0/1": Held(8.0, 41.0, 1, changed_at=41.0)}
    step_2 = {"cp-0/1": Held(6.9, 44.0, 1, changed_at=44.0)}
    step_3 = {"cp-0/1": Held(0.0, 45.5, 1, changed_at=45.5)}
    state = check(_draw(18.6, 41.5), step_1, NONE, now=41.5, timeout_s=5.0)
    state = check(_draw(18.6, 44.5), step_2, state, now=44.5, timeout_s=5.0)
    state = check(_draw(8.0, 45.2), step_2, state, now=45.2, timeout_s=5.0)
    assert state.over_since == {"cp-0/1": 45.2}  # it followed 8 A: 6.9 A's clock starts
    state = check(_draw(8.0, 46.6), step_3, state, now=46.6, timeout_s=5.0)
    assert state.flagged == frozenset()
    state = check(_draw(6.9, 48.0), step_3, state, now=48.0, timeout_s=5.0)
    state = check(_draw(6.9, 50.5), step_3, state, now=50.5, timeout_s=5.0)
    assert state.flagged == frozenset()
    assert check(_draw(0.0, 51.0), step_3, state, now=51.0, timeout_s=5.0) == NONE


def test_a_charger_that_ignores_a_run_of_decreases_is_flagged_in_time() -> None:
    """The same run of decreases to a charger that keeps drawing 32 A: flagged when its
    first response time is up, new setpoints or not; a flag then stays until it follows."""
    state = NONE
    steps = [(8.0, 41.0), (6.9, 44.0), (0.0, 45.5)]
    for now in (41.5, 43.0, 44.5, 45.6, 46.5):
        limit, acked = [step for step in steps if step[1] <= now][-1]
        held = {"cp-0/1": Held(limit, acked, 1, changed_at=acked)}
        state = check(_draw(32.0, now), held, state, now=now, timeout_s=5.0)
    assert state.flagged == {"cp-0/1"}
    held = {"cp-0/1": Held(0.0, 45.5, 1, changed_at=45.5)}
    # Down to the 8 A it was first over, but not yet to its setpoint: still flagged.
    assert check(_draw(8.0, 47.0), held, state, now=47.0, timeout_s=5.0).flagged == {"cp-0/1"}


def test_noncompliant_rating_is_reserved_and_it_gets_the_failsafe() -> None:
    """A flagged 32 A charger is planned at its full rating: the others share what is left,
    and it is told the fail-safe current with the reason."""
    config = site_config(chargers=3)
    snap = snapshot([session(0), session(1), session(2)], meter_a=(10.0, 10.0, 10.0))
    decision = decide(
        snap, config, get_policy("weighted_fair"), {}, noncompliant=frozenset({"cp-0/1"})
    )
    assert decision.targets["cp-0/1"].limit_a == 6.0
    assert decision.targets["cp-0/1"].reason.startswith("non-compliant")
    # 63 − 2 margin − 10 base − 32 reserved = 19 A for two sessions.
    assert [decision.targets[k].limit_a for k in ("cp-1/1", "cp-2/1")] == [9.5, 9.5]
    assert violations(decision.problem, decision.allocation) == []
