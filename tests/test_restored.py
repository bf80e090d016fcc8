"""Sessions restored after a restart: confirmed or dropped by their charger, and decided
conservatively until then (worst case reserved, no increase before confirmation)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import parse_config
from controller.decide import Mode, base_load_a, decide
from controller.learning import EvBelief
from controller.model import (
    ChargerBooted,
    ChargerMeasurement,
    ConnectorStatusChanged,
    MeterReading,
    SessionStarted,
)
from controller.reserve import site_phases
from controller.restored import Restored, reserve_a, target_a
from controller.snapshot import SessionView
from controller.state import SiteState
from policies import POLICIES, get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

CONFIG = site_config()
FAIR = get_policy("weighted_fair")
FAILSAFE_A = 6.0


def restored(
    charger: int,
    setpoint_a: float | None = 16.0,
    lease_until: float | None = 200.0,
    ceiling_a: float | None = None,
    tx: int | None = None,
    belief: EvBelief | None = None,
) -> SessionView:
    """cp-<charger>/1 back from the store, unconfirmed, nothing measured since."""
    ceiling_a = setpoint_a if ceiling_a is None else ceiling_a
    view = session(charger, tx=tx, belief=belief)
    return replace(view, status="Unknown", restored=Restored(setpoint_a, ceiling_a, lease_until))


def state_with(view: SessionView) -> SiteState:
    state = SiteState(CONFIG.control)
    state.restore(view)
    state.apply(ChargerBooted(view.charger_id, at=1.0))
    return state


def read_meter(state: SiteState, at: float) -> None:
    state.apply(MeterReading("grid", at, (40.0, 40.0, 40.0), None))


def test_the_charger_confirms_a_restored_session_by_its_transaction() -> None:
    """MeterValues naming the restored transaction make it an ordinary session at the next
    site reading (one the base load can take its draw off); until then it stays restored,
    its draw known."""
    state = state_with(restored(0, tx=4711))
    state.apply(ChargerMeasurement("cp-0", 1, 2.0, (10.0, 10.0, 10.0), transaction_id=4711))
    read_meter(state, 2.1)  # within the skew of the report: it may have come first
    [s] = state.snapshot(2.1).sessions
    assert (s.restored is not None, s.measured_a) == (True, (10.0, 10.0, 10.0))
    read_meter(state, 2.5)
    [s] = state.snapshot(2.5).sessions
    assert (s.transaction_id, s.restored, s.measured_a) == (4711, None, (10.0, 10.0, 10.0))


def test_only_a_booted_charger_confirms_a_restored_session() -> None:
    """Reports from a charger that is back but not booted (nor adopted) yet leave the session
    restored: reserved and re-asserted, not a car of an offline charger."""
    state = SiteState(CONFIG.control)
    state.restore(restored(0, tx=4711))
    state.apply(ChargerMeasurement("cp-0", 1, 2.0, (10.0, 10.0, 10.0), transaction_id=4711))
    read_meter(state, 3.0)
    [s] = state.snapshot(3.0).sessions
    assert (s.restored is not None, s.measured_a) == (True, None)
    state.apply(ChargerBooted("cp-0", 4.0, reconnected=True))
    state.apply(ChargerMeasurement("cp-0", 1, 4.5, (10.0, 10.0, 10.0), transaction_id=4711))
    read_meter(state, 5.0)
    [s] = state.snapshot(5.0).sessions
    assert s.restored is None


def test_another_transaction_drops_the_restored_one_and_is_adopted() -> None:
    """A charger that reports another transaction on the connector: the stored one ended
    meanwhile; the new one is managed."""
    state = state_with(restored(0, tx=4711, belief=EvBelief((0,))))
    state.apply(ChargerMeasurement("cp-0", 1, 2.0, (10.0, 10.0, 10.0), transaction_id=4800))
    [s] = state.snapshot(2.0).sessions
    assert (s.transaction_id, s.restored, s.belief.phases) == (4800, None, (0, 1, 2))


def test_an_available_connector_drops_the_restored_session() -> None:
    """StatusNotification Available: no transaction runs there any more."""
    state = state_with(restored(0, tx=4711))
    state.apply(ConnectorStatusChanged("cp-0", 1, 2.0, "Available"))
    assert state.snapshot(2.0).sessions == ()


def test_a_new_start_replaces_the_restored_session() -> None:
    """StartTransaction on the connector: the stored session ended while we were away."""
    state = state_with(restored(0, tx=4711))
    state.apply(SessionStarted("cp-0", 1, 4900, 2.0, meter_start_wh=500.0))
    [s] = state.snapshot(2.0).sessions
    assert (s.transaction_id, s.restored, s.meter_start_wh) == (4900, None, 500.0)


def test_a_refused_tx_profile_drops_a_restored_session_only() -> None:
    """A charger may refuse a TxProfile only for a transaction it does not run: a restored
    session of that transaction is stale; a confirmed one (the start race) is kept."""
    state = state_with(restored(0, tx=4711))
    state.apply(SessionStarted("cp-1", 1, 4712, 2.0))
    state.refused("cp-0", 1, 4711)
    state.refused("cp-1", 1, 4712)
    assert [s.transaction_id for s in state.snapshot(2.0).sessions] == [4712]


def test_meter_values_without_a_transaction_confirm_only_a_charging_connector() -> None:
    """A report that names no transaction says nothing about the session unless the
    connector has said, since the restart, that it is charging."""
    state = state_with(restored(0, tx=4711))
    state.apply(ChargerMeasurement("cp-0", 1, 2.0, (10.0, 10.0, 10.0)))
    [s] = state.snapshot(2.0).sessions
    assert (s.restored is not None, s.measured_a) == (True, None)
    state.apply(ConnectorStatusChanged("cp-0", 1, 3.0, "Charging"))
    state.apply(ChargerMeasurement("cp-0", 1, 4.0, (10.0, 10.0, 10.0)))
    read_meter(state, 4.5)
    [s] = state.snapshot(4.5).sessions
    assert (s.restored, s.measured_a) == (None, (10.0, 10.0, 10.0))


def test_the_setpoint_is_re_asserted_within_its_lease_and_not_raised_after_it() -> None:
    """Within the lease the charger holds the setpoint: asserting it changes nothing. After
    the lease it runs on its fail-safe, and gets no more until confirmed; a paused car stays
    paused; in fail-safe mode it gets the fail-safe."""
    r = Restored(setpoint_a=16.0, ceiling_a=20.0, lease_until=200.0)
    assert target_a(r, FAILSAFE_A, 150.0, failsafe_mode=False) == 16.0
    assert target_a(r, FAILSAFE_A, 250.0, failsafe_mode=False) == FAILSAFE_A
    assert target_a(replace(r, setpoint_a=0.0), FAILSAFE_A, 250.0, failsafe_mode=False) == 0.0
    assert target_a(r, FAILSAFE_A, 150.0, failsafe_mode=True) == FAILSAFE_A
    assert reserve_a(r, FAILSAFE_A) == 20.0
    assert reserve_a(Restored(0.0, 0.0, None), FAILSAFE_A) == FAILSAFE_A


def test_an_unconfirmed_session_is_reserved_on_its_learned_phases_and_re_asserted() -> None:
    """A restored single-phase car on cp-0 (L1): 16 A is reserved on site L1 only, on top of
    the metered base load; a confirmed car on cp-1 shares what is left; the restored one
    gets its setpoint back."""
    snap = snapshot(
        [
            restored(0, belief=EvBelief((0,))),
            session(1, measured_a=(10.0, 10.0, 10.0)),
        ],
        meter_a=(30.0, 30.0, 30.0),
    )
    decision = decide(snap, CONFIG, FAIR, {})
    assert decision.mode is Mode.NORMAL
    assert decision.base_load_a == (36.0, 20.0, 20.0)  # 30 − 10 (cp-1) + 16 on L1
    assert [s.connector_id for s in decision.problem.sessions] == ["cp-1/1"]
    assert decision.targets["cp-0/1"].limit_a == 16.0
    # A refusal of it must not teach the profile ladder anything: it counts as just started.
    assert decision.targets["cp-0/1"].started_at == snap.at
    assert decision.targets["cp-1/1"].limit_a == 25.0  # 63 − 2 − 36 on L1


def test_an_unconfirmed_session_of_a_charger_not_back_is_reserved_but_not_commanded() -> None:
    """Until its charger reconnects nothing can be sent to it, but its worst case is kept."""
    snap = snapshot([restored(0)], meter_a=(30.0, 30.0, 30.0))
    away = replace(snap, booted=frozenset(), connected=frozenset())
    decision = decide(away, CONFIG, FAIR, {})
    assert decision.targets == {}
    assert decision.base_load_a == (46.0, 46.0, 46.0)


phase_a = st.floats(min_value=0, max_value=80, allow_nan=False)
setpoints = st.one_of(st.none(), st.floats(min_value=0, max_value=32))
phase_sets = st.sampled_from([(0,), (1,), (2,), (0, 1, 2)])


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    meter=st.tuples(phase_a, phase_a, phase_a),
    confirmed=st.lists(st.tuples(st.floats(0, 32), phase_sets), max_size=3),
    unconfirmed=st.lists(
        st.tuples(setpoints, st.floats(0, 8), phase_sets, st.booleans(), st.booleans()),
        max_size=3,
    ),
)
def test_decisions_keep_invariant_1_with_restored_unconfirmed_sessions(
    policy: str,
    meter: tuple[float, float, float],
    confirmed: list[tuple[float, tuple[int, ...]]],
    unconfirmed: list[tuple[float | None, float, tuple[int, ...], bool, bool]],
) -> None:
    """Whatever sessions come back from the store: on every site phase, the metered base
    load, each unconfirmed session at the larger of its restored setpoint (or ceiling) and
    the fail-safe, and the allocations stay under limit − margin (or, if the first two
    already break it, the policy's sessions there get 0 A); no unconfirmed session is told
    more than it is counted at, nor more than it held once its lease has run out."""
    config = site_config(chargers=6)
    sessions = [
        session(i, measured_a=(draw, draw, draw), belief=EvBelief(phases))
        for i, (draw, phases) in enumerate(confirmed)
    ]
    away: set[str] = set()
    for j, (setpoint, extra, phases, in_lease, back) in enumerate(unconfirmed):
        ceiling = None if setpoint is None else setpoint + extra
        lease = 150.0 if in_lease else 50.0
        sessions.append(
            restored(3 + j, setpoint, lease, ceiling_a=ceiling, belief=EvBelief(phases))
        )
        if not back:  # its charger has not reconnected yet
            away.add(f"cp-{3 + j}")
    snap = snapshot(sessions, meter_a=meter)
    booted = frozenset(s.charger_id for s in sessions) - away
    snap = replace(snap, booted=booted, connected=booted)
    decision = decide(snap, config, get_policy(policy), {})
    assert violations(decision.problem, decision.allocation) == []
    load = list(base_load_a(snap, config))
    for s in snap.sessions:
        if s.restored is not None:
            for p in site_phases(config, s.charger_id, s.belief.phases or (0, 1, 2)):
                load[p] += reserve_a(s.restored, 6.0)
    bound = config.site.max_current_a - config.site.safety_margin_a  # type: ignore[operator]
    for p in range(3):
        on_p = [d for d in decision.problem.sessions if p in d.phases]
        allocated = sum(decision.allocation.current_a(d.connector_id) for d in on_p)
        if load[p] <= bound:
            assert load[p] + allocated <= bound + 1e-6
        else:
            assert allocated == 0.0
    for s in snap.sessions:
        if s.restored is None or s.key not in decision.targets:
            continue
        told = decision.targets[s.key].limit_a
        assert told <= reserve_a(s.restored, 6.0)
        if s.restored.lease_until is not None and s.restored.lease_until <= snap.at:
            assert told <= 6.0


def test_an_unconfirmed_session_is_reserved_on_its_feeder_too() -> None:
    """A restored session below a 40 A feeder holds its 20 A on the feeder as well as on
    the site: its neighbour on the feeder gets the 20 A left, not the whole feeder."""
    config = parse_config(
        {
            "site": {"id": "site", "max_current_a": 100, "failsafe_current_a": 6},
            "meter": {"host": "127.0.0.1"},
            "groups": [{"id": "feeder", "max_current_a": 40}],
            "chargers": [{"id": "cp-0", "group": "feeder"}, {"id": "cp-1", "group": "feeder"}],
        }
    )
    snap = snapshot([restored(0, setpoint_a=20.0), session(1)], meter_a=(10.0, 10.0, 10.0))
    decision = decide(snap, config, FAIR, {})
    assert decision.targets["cp-0/1"].limit_a == 20.0
    assert decision.targets["cp-1/1"].limit_a == 20.0
    assert violations(decision.problem, decision.allocation) == []
