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
