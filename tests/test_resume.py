"""A setpoint a charger still holds from before a restart counts as held once its session is
confirmed: the car is neither planned at its charger's rating while the fail-safe default
is renewed, nor paced up from the fail-safe current (controller/restored.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.clock import ManualClock
from controller.decide import base_load_a, decide
from controller.dispatch import Held
from controller.dispatcher import Dispatcher
from controller.learning import EvBelief
from controller.loop import ControlLoop
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerMeasurement,
    MeterReading,
    SessionStopped,
)
from controller.reserve import site_phases
from controller.restored import Restored, resumed_a
from controller.state import SiteState
from controller.untrusted import NO_LIMIT_YET
from policies import POLICIES, get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

EXACT = Restored(22.0, 22.0, 200.0, 22.0, 10.0)
"""22 A accepted, nothing else on its way, its lease running until 200 s."""


def test_a_setpoint_counts_as_held_only_while_known_for_certain() -> None:
    """Within its lease and with nothing else on its way the charger holds the setpoint;
    after the lease it is on its fail-safe; with an increase or a decrease on its way at
    the last write, or a record that knows no floor, it holds one of two limits."""
    assert resumed_a(EXACT, 150.0) == 22.0
    assert resumed_a(replace(EXACT, setpoint_a=0.0, ceiling_a=0.0, floor_a=0.0), 150.0) == 0.0
    assert resumed_a(EXACT, 200.0) is None
    assert resumed_a(replace(EXACT, lease_until=None), 150.0) is None
    assert resumed_a(replace(EXACT, ceiling_a=26.0), 150.0) is None
    assert resumed_a(replace(EXACT, floor_a=16.0), 150.0) is None
    assert resumed_a(replace(EXACT, floor_a=None), 150.0) is None
    assert resumed_a(Restored(), 150.0) is None


def _restored_state(reconnected: bool = True, read: bool = True) -> SiteState:
    """cp-0/1 back from the store with :data:`EXACT`; the charger booted (or adopted),
    reported the transaction and a site reading followed."""
    config = site_config()
    state = SiteState(config.control)
    state.restore(replace(session(0, tx=4711), status="Unknown", restored=EXACT))
    state.apply(ChargerConnected("cp-0", 11.0))
    state.apply(ChargerBooted("cp-0", 12.0, reconnected=reconnected))
    state.apply(ChargerMeasurement("cp-0", 1, 12.5, (22.0, 22.0, 22.0), transaction_id=4711))
    if read:
        state.apply(MeterReading("grid", 13.0, (62.0, 62.0, 62.0), None))
    return state


def test_a_confirmed_session_is_taken_once() -> None:
    """The loop is given each confirmed session's stored setpoint once."""
    state = _restored_state()
    assert state.take_resumed() == [("cp-0/1", 4711, EXACT)]
    assert state.take_resumed() == []


def test_a_charger_that_booted_gives_nothing_to_take() -> None:
    """A BootNotification after the restart: the charger restarted and may have lost its
    profiles, so what the store says of them no longer counts."""
    assert _restored_state(reconnected=False).take_resumed() == []


def test_an_ended_session_gives_nothing_to_take() -> None:
    state = _restored_state()
    state.apply(SessionStopped("cp-0", 4711, 14.0))
    assert state.take_resumed() == []


def test_nothing_is_taken_before_the_confirmation() -> None:
    """Until a site reading follows its report, the session stays restored."""
    config = site_config()
    state = SiteState(config.control)
    state.restore(replace(session(0, tx=4711), status="Unknown", restored=EXACT))
    state.apply(ChargerBooted("cp-0", 12.0, reconnected=True))
    state.apply(ChargerMeasurement("cp-0", 1, 12.5, (22.0, 22.0, 22.0), transaction_id=4711))
    assert state.take_resumed() == []


async def test_the_loop_counts_the_stored_setpoint_as_held_while_the_fail_safe_is_pending() -> None:
    """63 A site, 40 A of building, the car at 22 A: with its charger's fail-safe default
    still on its way, the confirmed session is not planned at its 32 A rating (which would
    not fit: it would be told the fail-safe current) but held at 22 A, and keeps 22 A
    (no ramp from the fail-safe current with a 4 A step)."""
    config = site_config(chargers=1, safety_margin_a=1)
    config = config.model_copy(
        update={"control": config.control.model_copy(update={"ramp_step_a": 4.0})}
    )
    clock = ManualClock(13.2, datetime(2027, 1, 15, 18, tzinfo=UTC))
    state = _restored_state()
    state.failsafe_sent("cp-0")
    dispatcher = Dispatcher(lambda _cid: None, clock, 6.0, config.control.lease_s)
    loop = ControlLoop(config, state, get_policy("weighted_fair"), dispatcher, clock)
    try:
        decision = loop.decide_once()
    finally:
        await dispatcher.drain()  # every command answered (no link: not connected)
    held = dispatcher.held["cp-0/1"]
    assert (held.limit_a, held.transaction_id, held.imposed) == (22.0, 4711, False)
    # Renewed by half the current lease before the stored one runs out.
    assert held.acked_at == 200.0 - config.control.lease_s
    target = decision.targets["cp-0/1"]
    assert NO_LIMIT_YET not in target.reason
    assert target.limit_a == 22.0
    assert dispatcher.sent == 0  # nothing to change: the charger holds 22 A


async def test_a_re_asserted_setpoint_is_no_change_and_teaches_no_response_time() -> None:
    """The restored setpoint re-asserted and accepted before the car's first report: once
    confirmed it is the stored setpoint, no change (paced as the car's own level, not as a
    fault's), its newer lease kept; the car's reports at it teach no response time."""
    config = site_config(chargers=1, safety_margin_a=1)
    clock = ManualClock(12.7, datetime(2027, 1, 15, 18, tzinfo=UTC))
    state = _restored_state(read=False)
    dispatcher = Dispatcher(lambda _cid: None, clock, 6.0, config.control.lease_s)
    reasserted = Held(22.0, 190.0, 4711, changed_at=12.2, increased_at=12.2, imposed=True)
    dispatcher.held["cp-0/1"] = reasserted
    loop = ControlLoop(config, state, get_policy("weighted_fair"), dispatcher, clock)
    try:
        loop.decide_once()  # still restored: the report waits for a site reading
        state.apply(MeterReading("grid", 13.0, (62.0, 62.0, 62.0), None))
        clock.advance(0.5)
        loop.decide_once()
        held = dispatcher.held["cp-0/1"]
        assert (held.limit_a, held.acked_at, held.changed_at) == (22.0, 190.0, 13.2)
        assert (held.increased_at, held.imposed) == (float("-inf"), False)
        for at in (13.5, 14.0, 14.5):
            state.apply(ChargerMeasurement("cp-0", 1, at, (22.0, 22.0, 22.0), transaction_id=4711))
            clock.advance(0.5)
            loop.decide_once()
    finally:
        await dispatcher.drain()  # every command answered (no link: not connected)
    assert loop.settling.book.observed_s == {}
    assert loop.settling.book.pending == {}


phase_a = st.floats(min_value=0, max_value=80, allow_nan=False)
phase_sets = st.sampled_from([(0,), (1,), (2,), (0, 1, 2)])
held_values = st.one_of(st.none(), st.floats(min_value=0, max_value=32))


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    meter=st.tuples(phase_a, phase_a, phase_a),
    cars=st.lists(
        st.tuples(st.floats(0, 32), phase_sets, st.booleans(), held_values),
        min_size=1,
        max_size=4,
    ),
)
def test_decisions_keep_invariant_1_while_fail_safe_defaults_are_pending(
    policy: str,
    meter: tuple[float, float, float],
    cars: list[tuple[float, tuple[int, ...], bool, float | None]],
) -> None:
    """Whatever chargers still wait for their fail-safe default and whatever they hold (a
    setpoint of this run, or one kept through a restart): on every site phase, the metered
    base load, the rating of each session whose charger holds no limit, and the allocations
    stay under limit − margin (or the policy's sessions there get 0 A); a session whose
    charger holds a limit is steered, one without is told no more than the fail-safe."""
    config = site_config(chargers=4)
    sessions = [
        session(i, measured_a=(draw, draw, draw), belief=EvBelief(phases))
        for i, (draw, phases, _, _) in enumerate(cars)
    ]
    pending = frozenset(f"cp-{i}" for i, (_, _, waiting, _) in enumerate(cars) if waiting)
    held_a = {f"cp-{i}/1": a for i, (_, _, _, a) in enumerate(cars) if a is not None}
    snap = replace(snapshot(sessions, meter_a=meter), failsafe_pending=pending)
    decision = decide(snap, config, get_policy(policy), held_a)
    assert violations(decision.problem, decision.allocation) == []
    load = list(base_load_a(snap, config))
    loose = [s for s in sessions if s.charger_id in pending and s.key not in held_a]
    for s in loose:
        charger = config.charger(s.charger_id)
        assert charger is not None
        for p in site_phases(config, s.charger_id, (0, 1, 2)):
            load[p] += charger.max_current_a
    bound = config.site.max_current_a - config.site.safety_margin_a  # type: ignore[operator]
    for p in range(3):
        on_p = [d for d in decision.problem.sessions if p in d.phases]
        allocated = sum(decision.allocation.current_a(d.connector_id) for d in on_p)
        if load[p] <= bound:
            assert load[p] + allocated <= bound + 1e-6
        else:
            assert allocated == 0.0
    steered = {d.connector_id for d in decision.problem.sessions}
    for s in sessions:
        if s in loose:
            assert s.key not in steered
            assert decision.targets[s.key].limit_a <= 6.0
        else:
            assert s.key in steered
