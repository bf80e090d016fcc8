"""A charger back without booting is counted at the most it may hold, not at its rating.

OCPP 1.6 profiles persist across a reconnect; only a reboot (BootNotification) may
lose them. So such a charger's sessions are not "no limit acknowledged yet"
(which reserves the rating and cuts the other cars for it): each counts as
holding the highest of what it accepted, any setpoint still on its way when the
link dropped, and its fail-safe (a lease may have run out while it was away),
and that limit is sent again at once (controller/rejoin.py).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from controller.dispatch import ChangeKind, Held, plan_changes
from controller.model import ChargerBooted, ChargerConnected, ChargerDisconnected
from controller.rejoin import rejoined, rejoined_held
from controller.setpoint_log import SetpointLog
from controller.state import SiteState
from controller.targets import Target
from controller.untrusted import NO_LIMIT_YET, unbounded
from tests.helpers import session, site_config, snapshot

FAILSAFE_A = 6.0
RATING_A = 32.0
KEY = "cp-0/1"


def test_what_it_accepted_is_what_it_holds() -> None:
    """Nothing on its way: the accepted setpoint, re-asserted at once."""
    held = Held(16.0, 5.0, 7, changed_at=4.0)
    bound = rejoined_held(held, 16.0, 7, FAILSAFE_A, RATING_A, now=50.0)
    assert bound == replace(held, unsure=True)


def test_an_increase_on_its_way_when_the_link_dropped_counts() -> None:
    """It accepted 16 A, then 24 A went out and no answer came: it may hold either."""
    bound = rejoined_held(Held(16.0, 5.0, 7), 24.0, 7, FAILSAFE_A, RATING_A, now=50.0)
    assert bound is not None
    assert bound.limit_a == 24.0
    assert bound.unsure


def test_a_paused_car_may_be_on_its_fail_safe() -> None:
    """Held at 0 A: its lease may have run out while it was away, leaving it at 6 A."""
    bound = rejoined_held(Held(0.0, 5.0, 7), 0.0, 7, FAILSAFE_A, RATING_A, now=50.0)
    assert bound is not None
    assert bound.limit_a == FAILSAFE_A


def test_a_first_setpoint_on_its_way_counts_up_to_the_rating() -> None:
    """No acceptance yet and a setpoint sent (the log's ceiling is infinite): the rating."""
    bound = rejoined_held(None, float("inf"), 7, FAILSAFE_A, RATING_A, now=50.0)
    assert bound == Held(RATING_A, 50.0, 7, unsure=True)


def test_a_session_nothing_was_sent_for_runs_on_its_fail_safe() -> None:
    """It started while its charger was away: the fail-safe default it kept bounds it."""
    assert rejoined_held(None, None, 7, FAILSAFE_A, RATING_A, now=50.0) is None


def test_a_setpoint_of_an_ended_transaction_does_not_count_as_held() -> None:
    """The old TxProfile ended with its transaction; only the log's ceiling is left."""
    bound = rejoined_held(Held(20.0, 5.0, 6), 10.0, 7, FAILSAFE_A, RATING_A, now=50.0)
    assert bound == Held(10.0, 50.0, 7, unsure=True)


def test_an_unsure_limit_is_sent_again_at_once() -> None:
    """Within the deadband and long before half its lease: renewed all the same; below it:
    a decrease from the most it may hold, so the other cars' increases wait for it."""
    unsure = Held(24.0, 95.0, 7, unsure=True)
    for limit_a, kind in ((24.0, ChangeKind.RENEW), (16.0, ChangeKind.DECREASE)):
        target = Target("cp-0", 1, 7, limit_a, "test")
        [change] = plan_changes({KEY: target}, {KEY: unsure}, 100.0, FAILSAFE_A, 1.0, 60.0)
        assert (change.kind, change.old_a, change.target.limit_a) == (kind, 24.0, limit_a)
    sure = replace(unsure, unsure=False)
    target = Target("cp-0", 1, 7, 24.0, "test")
    assert plan_changes({KEY: target}, {KEY: sure}, 100.0, FAILSAFE_A, 1.0, 60.0) == []


def test_only_the_returning_chargers_steered_sessions_are_counted_anew() -> None:
    """cp-0 is back: its session counts at the most it may hold (a 24 A increase was on its
    way), re-asserted at once; cp-1's and cp-2's held setpoints are left as they are, and
    an unknown charger's first setpoint on its way counts at its fail-safe (it is never
    given more)."""
    stranger = replace(session(0), key="cp-9/1", charger_id="cp-9", transaction_id=9)
    snap = snapshot([session(0), session(1), stranger])
    held = {"cp-0/1": Held(16.0, 5.0, 1), "cp-1/1": Held(16.0, 5.0, 2)}
    ceilings = {"cp-0/1": 24.0, "cp-1/1": 30.0, "cp-9/1": float("inf")}
    out = rejoined(snap, {"cp-0", "cp-9"}, held, ceilings.get, site_config(chargers=3))
    assert out == {
        "cp-0/1": Held(24.0, 5.0, 1, unsure=True),
        "cp-9/1": Held(FAILSAFE_A, 100.0, 9, unsure=True),
    }


def booted_and_failsafe_accepted() -> SiteState:
    state = SiteState(site_config(chargers=1).control)
    state.apply(ChargerConnected("cp-0", 0.0))
    state.apply(ChargerBooted("cp-0", 0.1))
    state.failsafe_sent("cp-0")
    assert state.snapshot(0.2).failsafe_pending == {"cp-0"}
    state.failsafe_sent("cp-0", accepted=True)
    return state


def test_a_reconnect_keeps_the_fail_safe_a_reboot_does_not() -> None:
    """Back without booting, the fail-safe it accepted still stands while the one sent again
    is on its way; after a BootNotification it is pending until accepted again."""
    state = booted_and_failsafe_accepted()
    state.apply(ChargerDisconnected("cp-0", 1.0))
    state.apply(ChargerConnected("cp-0", 5.0))
    state.apply(ChargerBooted("cp-0", 7.0, reconnected=True))
    state.failsafe_sent("cp-0")
    snap = state.snapshot(7.1)
    assert snap.failsafe_pending == frozenset()
    assert unbounded(replace(snapshot([session(0)]), booted=snap.booted), {}) == {}
    state.apply(ChargerDisconnected("cp-0", 8.0))
    state.apply(ChargerConnected("cp-0", 9.0))
    state.apply(ChargerBooted("cp-0", 9.1))
    state.failsafe_sent("cp-0")
    pending = state.snapshot(9.2).failsafe_pending
    assert pending == {"cp-0"}
    snap = replace(snapshot([session(0)]), failsafe_pending=pending)
    assert unbounded(snap, {}) == {KEY: NO_LIMIT_YET}


def test_a_reconnect_before_any_fail_safe_was_accepted_stays_unbounded() -> None:
    """Its fail-safe was still on its way when it left: nothing it holds can be counted on."""
    state = SiteState(site_config(chargers=1).control)
    state.apply(ChargerConnected("cp-0", 0.0))
    state.apply(ChargerBooted("cp-0", 0.1))
    state.failsafe_sent("cp-0")
    state.apply(ChargerDisconnected("cp-0", 1.0))
    state.apply(ChargerConnected("cp-0", 5.0))
    state.apply(ChargerBooted("cp-0", 7.0, reconnected=True))
    state.failsafe_sent("cp-0")
    assert state.snapshot(7.1).failsafe_pending == {"cp-0"}


# --- the property: never below any limit it may hold ---------------------------------------

LIMITS = st.sampled_from([0.0, 6.0, 8.0, 10.5, 16.0, 20.0, 24.0, 32.0])
OUTCOMES = st.sampled_from(["accepted", "refused"])


@given(
    steps=st.lists(st.tuples(LIMITS, OUTCOMES), min_size=1, max_size=8),
    last_in_flight=st.booleans(),
    new_target=LIMITS,
)
def test_a_rejoined_session_is_planned_at_no_less_than_any_limit_it_may_hold(
    steps: list[tuple[float, str]], last_in_flight: bool, new_target: float
) -> None:
    """Decisions as the loop makes them (log, send, answer), then the link drops, the last
    setpoint possibly still unanswered. The charger may hold: the last limit it accepted
    (its fail-safe before any), every target sent after that acceptance (a refusal applies
    nothing; the one in flight may have been applied) and its fail-safe (a lease may have
    run out). The count on its return is no less than any of them, and the first decision
    after sends a limit from there: a decrease whenever the new target is below any."""
    log, held, may_hold = SetpointLog(), None, {FAILSAFE_A}
    for i, (target_a, outcome) in enumerate(steps):
        at = float(i)
        if held is not None:
            log.accepted({KEY: (held.acked_at, held.limit_a)})
        log.record(at, {KEY: target_a}, {KEY: held.limit_a} if held else {})
        in_flight = last_in_flight and i == len(steps) - 1
        if outcome == "accepted" and not in_flight:
            held = Held(target_a, at + 0.5, 7, changed_at=at + 0.5)
            may_hold = {target_a, FAILSAFE_A}
        elif in_flight or outcome == "accepted":
            may_hold.add(target_a)
    bound = rejoined_held(held, log.ceiling(KEY), 7, FAILSAFE_A, RATING_A, now=100.0)
    assert bound is not None
    assert bound.unsure
    assert bound.limit_a >= max(may_hold)
    assert bound.limit_a <= RATING_A
    target = Target("cp-0", 1, 7, new_target, "test")
    [change] = plan_changes({KEY: target}, {KEY: bound}, 100.0, FAILSAFE_A, 0.5, 60.0)
    assert change.old_a >= max(may_hold)
    if new_target < max(may_hold):
        assert change.kind is ChangeKind.DECREASE
