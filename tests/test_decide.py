"""From a snapshot to targets: meter trust, base load, the problem, and the invariant check."""

from __future__ import annotations

import gc
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.decide import Mode, base_load_a, decide, meter_mode
from controller.learning import EvBelief
from controller.site_problem import build_problem
from policies import POLICIES, Allocation, AllocationProblem, ConnectorAllocation, get_policy
from policies.problem import LimitNode
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

CONFIG = site_config()
FAIR = get_policy("weighted_fair")


def test_good_meter_is_normal() -> None:
    """A fresh good reading means the loop trusts the meter."""
    assert meter_mode(snapshot([]), CONFIG) == (Mode.NORMAL, "")


def test_no_reading_yet_is_failsafe() -> None:
    """Before the first good reading the site runs on fail-safe limits (start conservative)."""
    mode, why = meter_mode(snapshot([], meter_a=None, meter_at=None), CONFIG)
    assert mode is Mode.FAILSAFE
    assert "no good meter reading" in why


def test_doubtful_meter_holds_then_fails_safe() -> None:
    """Doubtful data stops increases at once and becomes fail-safe after failsafe_after_s."""
    held = snapshot([], at=110.0, problem="stale", problem_since=103.0)
    assert meter_mode(held, CONFIG)[0] is Mode.HOLD
    late = snapshot([], at=133.0, problem="stale", problem_since=103.0)
    mode, why = meter_mode(late, CONFIG)
    assert mode is Mode.FAILSAFE
    assert "30 s" in why


def test_base_load_subtracts_fresh_charger_draw_through_rotation() -> None:
    """cp-1 is wired L2L3L1: its L1 draw is site L2; a draw measured after the meter
    reading is left in the base load (the meter has not seen it yet)."""
    snap = snapshot(
        [
            session(1, measured_a=(16.0, 0.0, 0.0)),
            session(0, measured_a=(5.0, 5.0, 5.0), aligned=False),
        ],
        meter_a=(30.0, 40.0, 20.0),
    )
    assert base_load_a(snap, CONFIG) == (30.0, 24.0, 20.0)


def test_base_load_is_never_negative() -> None:
    """A charger measuring more than the meter (timing skew) does not create headroom."""
    snap = snapshot([session(0, measured_a=(20.0, 20.0, 20.0))], meter_a=(10.0, 30.0, 30.0))
    assert base_load_a(snap, CONFIG) == (0.0, 10.0, 10.0)


def test_learned_single_phase_car_loads_one_site_phase() -> None:
    """A car learned to draw on its charger's L1 only, on a rotated charger, loads site L3."""
    belief = EvBelief(phases=(0,), ev_max_a=20.0)
    problem = build_problem(snapshot([session(2, belief=belief)]), CONFIG, (0.0, 0.0, 0.0))
    [demand] = problem.sessions
    assert demand.phases == (2,)
    assert demand.max_current_a == 20.0


def test_decide_normal_gives_everyone_a_fair_share() -> None:
    """Three 3-phase sessions on a 63 A site with 10 A base share 63-2-10 = 51 A: 17 A each."""
    snap = snapshot([session(i) for i in range(3)])
    decision = decide(snap, CONFIG, FAIR, {})
    assert decision.mode is Mode.NORMAL
    assert [t.limit_a for t in decision.targets.values()] == [17.0, 17.0, 17.0]


def test_decide_hold_never_raises_a_session() -> None:
    """With doubtful data, no session gets more than it holds now (new ones: the fail-safe)."""
    snap = snapshot([session(0), session(1)], at=105.0, problem="NaN", problem_since=104.0)
    decision = decide(snap, CONFIG, FAIR, {"cp-0/1": 10.0})
    assert decision.mode is Mode.HOLD
    assert decision.targets["cp-0/1"].limit_a <= 10.0
    assert decision.targets["cp-1/1"].limit_a <= 6.0


def test_decide_failsafe_gives_the_failsafe_current() -> None:
    """In fail-safe mode every session gets the fail-safe current, with the reason."""
    snap = snapshot([session(0), session(1)], meter_a=None, meter_at=None)
    decision = decide(snap, CONFIG, FAIR, {"cp-0/1": 20.0})
    assert {t.limit_a for t in decision.targets.values()} == {6.0}
    assert all(t.reason.startswith("fail-safe") for t in decision.targets.values())


def test_a_broken_policy_answer_is_replaced_by_the_failsafe() -> None:
    """A policy that breaks an invariant is caught before anything is sent."""

    def greedy(problem: AllocationProblem) -> Allocation:
        return Allocation(
            {
                s.connector_id: ConnectorAllocation(s.connector_id, 32.0, "greedy")
                for s in problem.sessions
            }
        )

    decision = decide(snapshot([session(i) for i in range(3)]), CONFIG, greedy, {})
    assert decision.mode is Mode.FAILSAFE
    assert decision.rejected
    assert {t.limit_a for t in decision.targets.values()} == {6.0}


phase_a = st.floats(min_value=0, max_value=120, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    meter=st.tuples(phase_a, phase_a, phase_a),
    draws=st.lists(
        st.tuples(st.floats(0, 32), st.floats(0, 32), st.floats(0, 32)), min_size=0, max_size=6
    ),
    phases=st.lists(st.sampled_from([(0,), (1,), (0, 1, 2)]), min_size=6, max_size=6),
)
def test_decisions_keep_every_invariant(
    policy: str,
    meter: tuple[float, float, float],
    draws: list[tuple[float, float, float]],
    phases: list[tuple[int, ...]],
) -> None:
    """Invariants 1 and 2 hold on every decision: no node or phase over its limit less margin,
    every session at 0 or between its minimum and maximum, whatever the meter and the cars say."""
    config = site_config(chargers=6)
    sessions = [
        session(i, measured_a=draw, belief=EvBelief(phases=phases[i]))
        for i, draw in enumerate(draws)
    ]
    decision = decide(snapshot(sessions, meter_a=meter), config, get_policy(policy), {})
    assert violations(decision.problem, decision.allocation) == []


def test_meter_values_of_an_unknown_transaction_adopt_the_session() -> None:
    """After a restart, a charger's MeterValues for a running transaction make it a session."""
    from controller.model import ChargerBooted, ChargerMeasurement
    from controller.state import SiteState

    state = SiteState(CONFIG.control)
    state.apply(ChargerBooted("cp-0", at=1.0))
    state.apply(
        ChargerMeasurement("cp-0", 1, at=2.0, current_a=(16.0, 16.0, 16.0), transaction_id=4711)
    )
    [session] = state.snapshot(2.0).sessions
    assert session.transaction_id == 4711
    assert session.key == "cp-0/1"


def test_offline_chargers_draw_stays_in_the_base_load() -> None:
    """A session whose charger is offline is not planned, so its last draw is not taken off
    the meter reading either: otherwise the others would be given it too."""
    snap = snapshot([session(0, measured_a=(16.0, 16.0, 16.0))], meter_a=(30.0, 30.0, 30.0))
    offline = replace(snap, booted=frozenset())
    assert base_load_a(snap, CONFIG) == (14.0, 14.0, 14.0)
    assert base_load_a(offline, CONFIG) == (30.0, 30.0, 30.0)


def test_two_sites_in_one_process_plan_with_their_own_chargers() -> None:
    """Two sites' problems built interleaved: each has its own chargers' nodes (a
    charger-node cache kept for one site's config never serves the other's)."""
    small, large = site_config(chargers=2, max_current_a=40), site_config(chargers=3)
    small_snap = snapshot([session(i) for i in range(2)])
    large_snap = snapshot([session(i) for i in range(3)])
    base = (10.0, 10.0, 10.0)
    for _ in range(3):
        small_nodes = build_problem(small_snap, small, base).nodes
        large_nodes = build_problem(large_snap, large, base).nodes
        assert [n.id for n in small_nodes if n.id.startswith("cp-")] == ["cp-0", "cp-1"]
        assert [n.id for n in large_nodes if n.id.startswith("cp-")] == ["cp-0", "cp-1", "cp-2"]


def test_a_replaced_configs_charger_nodes_leave_with_it() -> None:
    """The charger nodes kept per config (a thousand at depot scale) go when their config
    goes: a site whose config was replaced keeps no old nodes for the collector to scan."""

    def nodes_alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, LimitNode) and o.id == "cp-2")

    snap = snapshot([session(0)])
    before = nodes_alive()
    for _ in range(5):
        replaced = site_config()
        assert any(n.id == "cp-2" for n in build_problem(snap, replaced, (0.0, 0.0, 0.0)).nodes)
        del replaced
    assert nodes_alive() == before


def test_the_modes_reason_is_not_a_non_compliant_sessions_reason() -> None:
    """A flagged session gets its own reason as its target's; the decision's mode keeps the
    meter's (it showed a session's reason as the site's on the dashboard and in the audit)."""
    snap = snapshot([session(0), session(1)])
    flagged = {"cp-0/1": "ignored its profile"}
    decision = decide(snap, CONFIG, FAIR, {}, noncompliant=flagged)
    assert (decision.mode, decision.mode_reason) == (Mode.NORMAL, "")
    assert "ignored its profile" in decision.targets["cp-0/1"].reason

    no_reading = snapshot([session(0)], meter_a=None, meter_at=None)
    decision = decide(no_reading, CONFIG, FAIR, {}, noncompliant=flagged)
    assert decision.mode is Mode.FAILSAFE
    assert "no good meter reading" in decision.mode_reason
