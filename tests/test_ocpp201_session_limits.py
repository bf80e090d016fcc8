"""What a 2.0.1 station says about a session's limits: the cable's rating and the phases.

TransactionEvent carries ``cableMaxCurrent`` (the cable plugged in, A) and
``numberOfPhasesUsed``; NotifyEVChargingNeeds names the AC transfer
(``AC_single_phase`` …). The cable caps the session's maximum; the phase count
is the phase belief until the car's draw shows its phases. OCPP 1.6 has no field
for either (StartTransaction and MeterValues carry neither), so 1.6 sessions keep
learning both from measured current.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.charger_records import merge_needs
from controller.config import ControlSettings
from controller.decide import decide
from controller.learning import EvBelief
from controller.model import SessionNeeds, SessionStarted, SessionStopped
from controller.ocpp.wire201 import needs_from, session_limits_from
from controller.site_problem import build_problem
from controller.state import SiteState
from hil.ev import EV
from policies import POLICIES, get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot
from tests.rig import rig, until

# --- the wire ------------------------------------------------------------------------


def test_cable_and_phases_are_read_and_nonsense_is_not_believed() -> None:
    """A positive cable rating and 1–3 phases are taken; 0 A, 4 phases, text are not."""
    limits = session_limits_from("cs", 1, 5.0, 16, 1)
    assert limits is not None
    assert (limits.cable_max_a, limits.phases, limits.source) == (16.0, 1, "ev")
    assert session_limits_from("cs", 1, 5.0, None, None) is None
    assert session_limits_from("cs", 1, 5.0, 0, 4) is None
    only_phases = session_limits_from("cs", 1, 5.0, "lots", 3)
    assert only_phases is not None
    assert (only_phases.cable_max_a, only_phases.phases) == (None, 3)


def test_the_requested_ac_transfer_names_the_phases() -> None:
    """AC_single_phase → 1, AC_two_phase → 2, AC_three_phase → 3, DC → nothing."""
    for transfer, phases in [
        ("AC_single_phase", 1),
        ("AC_two_phase", 2),
        ("AC_three_phase", 3),
        ("DC", None),
    ]:
        needs = needs_from("cs", 1, 0.0, {"requestedEnergyTransfer": transfer})
        assert needs.phases == phases


def test_a_later_message_without_them_keeps_cable_and_phases() -> None:
    """NotifyEVChargingNeeds after a TransactionEvent keeps the cable it did not mention."""
    first = SessionNeeds("cs", 1, 0.0, cable_max_a=16.0, phases=1, source="ev")
    later = SessionNeeds("cs", 1, 1.0, departure_at=1e9, ev_max_a=32.0, source="ev")
    merged = merge_needs(first, later)
    assert (merged.cable_max_a, merged.phases, merged.ev_max_a) == (16.0, 1, 32.0)


# --- the decision ----------------------------------------------------------------------


def test_the_cable_caps_the_session_and_the_phases_hold_until_measured() -> None:
    """A 16 A cable caps the maximum; one phase said → the charger's L1 only (site L2 for
    cp-1, wired L2L3L1); once the car's draw shows three phases, the draw wins."""
    config = site_config(chargers=2)
    needs = SessionNeeds("cp-1", 1, 0.0, cable_max_a=16.0, phases=1, source="ev")
    told = replace(session(1), needs=needs)
    problem = build_problem(snapshot([session(0), told]), config, (10.0, 10.0, 10.0))
    demand = {d.connector_id: d for d in problem.sessions}["cp-1/1"]
    assert demand.max_current_a == 16.0
    assert demand.phases == (1,)
    measured = replace(told, belief=EvBelief(phases=(0, 1, 2)))
    problem = build_problem(snapshot([measured]), config, (10.0, 10.0, 10.0))
    assert problem.sessions[0].phases == (0, 1, 2)


def test_the_state_keeps_them_for_the_session_only() -> None:
    """The needs arrive in the session's view and end with it."""
    state = SiteState(ControlSettings())
    state.apply(SessionStarted("cs", 1, 7, 0.0))
    state.apply(SessionNeeds("cs", 1, 0.1, cable_max_a=20.0, phases=2, source="ev"))
    [view] = state.snapshot(1.0).sessions
    assert view.needs is not None
    assert (view.needs.cable_max_a, view.needs.phases) == (20.0, 2)
    state.apply(SessionStopped("cs", 7, 2.0))
    state.apply(SessionStarted("cs", 1, 8, 3.0))
    [view] = state.snapshot(4.0).sessions
    assert view.needs is None


limit_a = st.floats(min_value=0, max_value=40, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    cables=st.lists(st.one_of(st.none(), limit_a), min_size=3, max_size=3),
    phases=st.lists(st.one_of(st.none(), st.integers(1, 3)), min_size=3, max_size=3),
    meter=st.tuples(limit_a, limit_a, limit_a),
)
def test_cable_and_phases_keep_every_invariant(
    policy: str,
    cables: list[float | None],
    phases: list[int | None],
    meter: tuple[float, float, float],
) -> None:
    """Invariants 1 and 2 hold with the stations' word on cables and phases, and no session
    is given more than its cable."""
    config = site_config(chargers=3)
    sessions = [
        replace(session(i), needs=SessionNeeds(f"cp-{i}", 1, 0.0, cable_max_a=c, phases=p))
        for i, (c, p) in enumerate(zip(cables, phases, strict=True))
    ]
    decision = decide(snapshot(sessions, meter_a=meter), config, get_policy(policy), {})
    assert violations(decision.problem, decision.allocation) == []
    for i, cable in enumerate(cables):
        if cable is not None:
            assert decision.allocation.connectors[f"cp-{i}/1"].current_a <= cable + 1e-6


# --- over real websockets -------------------------------------------------------------


async def test_a_station_with_a_16_a_cable_gets_16_a_and_the_other_car_the_rest() -> None:
    """Station cs told the 16 A cable in TransactionEvent: it is planned at 16 A at once
    (not learned from its draw), the 1.6 charger next to it gets its 32 A rating."""
    async with rig(chargers=2, ocpp201=frozenset({0})) as r:
        station, other = r.charge_points
        station.cable_max_a = 16  # type: ignore[attr-defined]
        await station.plug_in(1, EV(response_delay_s=0.1))
        await other.plug_in(1, EV(response_delay_s=0.1))

        def targets() -> tuple[float, float] | None:
            last = r.controller.loop.last
            if last is None or len(last.targets) < 2:
                return None
            return last.targets["cp-0/1"].limit_a, last.targets["cp-1/1"].limit_a

        await until(lambda: targets() == (16.0, 32.0), 5, "16 A for the cable, 32 A for the other")
        [view] = [s for s in r.controller.state.snapshot(0).sessions if s.charger_id == "cp-0"]
        assert view.needs is not None
        assert view.needs.cable_max_a == 16.0
        assert view.needs.phases == 3


async def test_a_single_phase_car_is_planned_on_one_phase_before_it_draws() -> None:
    """numberOfPhasesUsed 1 from the station: the problem puts the session on one site
    phase while the car has not drawn yet (it wakes only after 30 s here)."""
    async with rig(ocpp201=frozenset({0})) as r:
        [station] = r.charge_points
        await station.plug_in(1, EV(phases=(0,), response_delay_s=30.0))

        def phases() -> tuple[int, ...] | None:
            last = r.controller.loop.last
            sessions = last.problem.sessions if last is not None else ()
            return sessions[0].phases if sessions else None

        await until(lambda: phases() == (0,), 5, "the session on site L1 only")
