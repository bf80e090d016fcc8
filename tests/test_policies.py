"""Hand-checked allocations, the invariant checker, and the policy registry.

Every case below was worked out by hand; the arithmetic is in the docstring.
Sites are 230 V and three-phase; ``one(p)`` is a single-phase car on site
phase ``p`` (0 = L1), ``THREE`` a three-phase car.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping

import pytest

from policies import POLICIES, Allocation, AllocationProblem, ConnectorAllocation, get_policy
from policies.equal_share import equal_share
from policies.problem import LimitNode, SessionDemand
from policies.verify import node_headroom_a, violations
from policies.weighted_fair import weighted_fair

THREE = (0, 1, 2)
PAUSED_1 = "paused: minimum not available, priority 1"


def one(phase: int) -> tuple[int, ...]:
    """A single-phase car wired to site phase ``phase``."""
    return (phase,)


def car(
    key: str,
    phases: tuple[int, ...] = THREE,
    max_a: float = 32.0,
    *,
    node: str = "site",
    weight: float = 1.0,
) -> SessionDemand:
    """A car wanting up to ``max_a`` (minimum 6 A), at the site node unless ``node`` says."""
    return SessionDemand(key, node, phases, max_a, weight=weight)


def site(
    max_a: float | None = 32.0, base: tuple[float, float, float] = (0, 0, 0), **kw: float
) -> LimitNode:
    """The root node, labelled ``site``."""
    return LimitNode("site", None, max_a, base_load_a=base, label="site", **kw)


def problem(nodes: list[LimitNode], sessions: list[SessionDemand]) -> AllocationProblem:
    """A 230 V problem."""
    return AllocationProblem(tuple(nodes), tuple(sessions), 230.0)


def given_(allocation: Allocation) -> dict[str, tuple[float, str]]:
    """The allocation as {connector: (amps, reason)} for exact comparison."""
    return {k: (v.current_a, v.reason) for k, v in allocation.connectors.items()}


def check(
    policy_answer: Allocation, case: AllocationProblem, expected: Mapping[str, tuple[float, str]]
) -> None:
    """The answer is exactly ``expected`` and breaks no invariant."""
    assert given_(policy_answer) == expected
    assert violations(case, policy_answer) == []


# --- hand-checked allocations ----------------------------------------------


def test_single_phase_cars_on_unbalanced_site() -> None:
    """Site 32 A, base load L1 20 A, L2 5 A, L3 5 A; cars on L1, L2, L3, L2.

    equal_share counts every car on every phase: the worst phase leaves
    12 A for four cars, 3 A each, below 6 A; pausing cp-4 then cp-3 leaves
    6 A each for two. weighted_fair loads only each car's own phase: L1 gives
    12 A to cp-1, L2 splits 27 A between cp-2 and cp-4, L3 gives 27 A to cp-3.
    """
    case = problem(
        [site(32.0, (20, 5, 5))],
        [car("cp-1", one(0)), car("cp-2", one(1)), car("cp-3", one(2)), car("cp-4", one(1))],
    )
    check(
        equal_share(case),
        case,
        {
            "cp-1": (6.0, "site L1"),
            "cp-2": (6.0, "site L1"),
            "cp-3": (0.0, PAUSED_1),
            "cp-4": (0.0, PAUSED_1),
        },
    )
    check(
        weighted_fair(case),
        case,
        {
            "cp-1": (12.0, "site L1"),
            "cp-2": (13.5, "site L2"),
            "cp-3": (27.0, "site L3"),
            "cp-4": (13.5, "site L2"),
        },
    )


def test_nested_feeder_with_lower_limit() -> None:
    """Site 63 A, feeder 32 A, base load 4 A on L2 (under the feeder, so the site sees it too).

    Feeder L2 leaves 28 A for its two three-phase cars: 14 A each. The site's
    L2 leaves 59 − 28 = 31 A for the car at the site: 31 A. equal_share gives
    everyone the feeder's 14 A.
    """
    case = problem(
        [site(63.0, (0, 4, 0)), LimitNode("f1", "site", 32.0, base_load_a=(0, 4, 0))],
        [car("a", node="f1"), car("b", node="f1"), car("c")],
    )
    check(
        weighted_fair(case),
        case,
        {"a": (14.0, "f1 L2"), "b": (14.0, "f1 L2"), "c": (31.0, "site L2")},
    )
    check(
        equal_share(case), case, {"a": (14.0, "f1 L2"), "b": (14.0, "f1 L2"), "c": (14.0, "f1 L2")}
    )


def test_minimum_pause_takes_lowest_priority_first() -> None:
    """Site 16 A, three three-phase cars with weights 1, 2, 3: minimums need 18 A.

    The weight-1 car pauses; the others fill 16 A as 2t + 3t = 16, t = 3.2:
    6.4 A and 9.6 A. (Phases tie on a balanced site; the lowest names it.)
    """
    case = problem(
        [site(16.0)],
        [car("a", weight=3.0), car("b", weight=1.0), car("c", weight=2.0)],
    )
    check(
        weighted_fair(case),
        case,
        {"a": (9.6, "site L1"), "b": (0.0, PAUSED_1), "c": (6.4, "site L1")},
    )


def test_equal_priorities_pause_the_later_connector_id() -> None:
    """Site 10 A fits one minimum; equal weights pause the later id first (both policies)."""
    case = problem([site(10.0)], [car("cp-b"), car("cp-a")])
    for policy in POLICIES.values():
        check(policy(case), case, {"cp-a": (10.0, "site L1"), "cp-b": (0.0, PAUSED_1)})


def test_pause_spares_sessions_that_load_no_overfull_limit() -> None:
    """Feeder f1 (10 A) cannot hold both of its cars; car z at the site has weight 1 too.

    Only a car under f1 may pause for f1: the later id, f1-b. A global "later
    id first" rule would pause z first, for nothing; weighted_fair does not.
    """
    case = problem(
        [site(63.0), LimitNode("f1", "site", 10.0)],
        [car("f1-a", node="f1"), car("f1-b", node="f1"), car("z")],
    )
    check(
        weighted_fair(case),
        case,
        {"f1-a": (10.0, "f1 L1"), "f1-b": (0.0, PAUSED_1), "z": (32.0, "session max")},
    )


def test_a_paused_car_resumes_into_room_a_later_pause_freed() -> None:
    """Site 40 A per phase with 30 A of building load on L1 (10 A left there) and a power
    limit of 55 phase-amperes, 25 left after the building. Minimums: z (1-phase L3) 6, b
    (3-phase) 18, c (1-phase L1, weight 2) 6: 30 phase-amperes, over the power limit, and
    12 A on L1, over its 10 A.

    Step 3 pauses in order (weight 1 first, the later id first): z for power, then b
    for L1. c fills L1 to 10 A, which leaves 15 phase-amperes of power that nobody
    running can use. Step 6 starts z on them: 15 A, held by the power limit (not paused,
    as it was before the work-conserving step). b stays paused: L1 is full.
    """
    case = problem(
        [site(40.0, (30.0, 0.0, 0.0), max_power_w=55 * 230.0)],
        [car("z", one(2)), car("b"), car("c", one(0), weight=2.0)],
    )
    check(
        weighted_fair(case),
        case,
        {"z": (15.0, "site power"), "b": (0.0, PAUSED_1), "c": (10.0, "site L1")},
    )


def test_power_limit_binds() -> None:
    """Site 11 kW, no current limit: 11000 / 230 = 47.83 phase-amperes.

    A three-phase car at t and a single-phase car at t: 4t = 47.83, t = 11.96,
    floored to 11.9 A each. equal_share counts both as three-phase:
    6c = 47.83, c = 7.97, floored to 7.9 A.
    """
    case = problem([site(None, max_power_w=11000.0)], [car("a"), car("b", one(1))])
    check(weighted_fair(case), case, {"a": (11.9, "site power"), "b": (11.9, "site power")})
    check(equal_share(case), case, {"a": (7.9, "site power"), "b": (7.9, "site power")})


def test_power_margin_counts_on_three_phases() -> None:
    """11 kW with a 1 A margin leaves 47.83 − 3 = 44.83 phase-amperes: one 3-phase car, 14.9 A."""
    case = problem([site(None, max_power_w=11000.0, margin_a=1.0)], [car("a")])
    check(weighted_fair(case), case, {"a": (14.9, "site power")})


def test_session_max_below_fair_share_leaves_rest_to_others() -> None:
    """Site 32 A, three cars on L1 with maxima 6, 32, 32: 6 A, then 26 A split 13 + 13."""
    case = problem([site(32.0)], [car("a", one(0), 6.0), car("b", one(0)), car("c", one(0))])
    check(
        weighted_fair(case),
        case,
        {"a": (6.0, "session max"), "b": (13.0, "site L1"), "c": (13.0, "site L1")},
    )


def test_weights_two_to_one_split_two_to_one() -> None:
    """Site 30 A, two cars on L1 with weights 2 and 1: 20 A and 10 A."""
    case = problem([site(30.0)], [car("a", one(0), weight=2.0), car("b", one(0))])
    check(weighted_fair(case), case, {"a": (20.0, "site L1"), "b": (10.0, "site L1")})


def test_base_load_over_the_limit_pauses_only_its_phase() -> None:
    """Base load 40 A on L1 of a 32 A site: nothing can repair L1, so cars on L1 get 0 A.

    The L2 car is untouched by L1 and takes its 32 A maximum; the three-phase
    car loads L1 and must pause.
    """
    case = problem([site(32.0, (40, 0, 0))], [car("l1", one(0)), car("l2", one(1)), car("all")])
    check(
        weighted_fair(case),
        case,
        {"l1": (0.0, PAUSED_1), "l2": (32.0, "session max"), "all": (0.0, PAUSED_1)},
    )


def test_margin_is_kept_free() -> None:
    """Site 32 A with a 2 A margin and 10 A base on L3: 20 A for a three-phase car."""
    case = problem([site(32.0, (0, 0, 10), margin_a=2.0)], [car("a")])
    check(weighted_fair(case), case, {"a": (20.0, "site L3")})


def test_charger_rating_acts_as_the_session_max() -> None:
    """A 16 A charger node with one connector caps it at 16 A and is named as the reason."""
    case = problem(
        [site(63.0), LimitNode("cp-7", "site", 16.0, label="cp-7")], [car("cp-7/1", node="cp-7")]
    )
    check(weighted_fair(case), case, {"cp-7/1": (16.0, "cp-7 L1")})


def test_sessions_that_cannot_run_get_zero() -> None:
    """Max below min, and an unknown node, give 0 A with their own reason; zero sessions work."""
    case = problem([site(32.0)], [car("low", max_a=4.0), car("lost", node="nowhere")])
    for policy in POLICIES.values():
        check(
            policy(case),
            case,
            {
                "low": (0.0, "paused: session max below minimum"),
                "lost": (0.0, "paused: unknown node nowhere"),
            },
        )
        assert policy(problem([site(32.0)], [])).connectors == {}


def test_nodes_without_limits_give_each_car_its_max() -> None:
    """No limit anywhere: every car gets its maximum, floored to 0.1 A."""
    case = problem([site(None)], [car("a", max_a=16.05), car("b", one(2), 32.0)])
    for policy in POLICIES.values():
        check(policy(case), case, {"a": (16.0, "session max"), "b": (32.0, "session max")})


def test_priority_can_cost_total_current() -> None:
    """Feeder 11 A fits one minimum. weighted_fair keeps the weight-5 car (max 6 A);
    equal_share ignores priority and pauses the later id, so it delivers 11 A to
    the other. Priority is worth more than throughput: this is intended."""
    case = problem(
        [site(63.0), LimitNode("f", "site", 11.0)],
        [car("a", node="f"), car("b", max_a=6.0, node="f", weight=5.0)],
    )
    assert given_(weighted_fair(case)) == {"a": (0.0, PAUSED_1), "b": (6.0, "session max")}
    assert given_(equal_share(case)) == {
        "a": (11.0, "f L1"),
        "b": (0.0, "paused: minimum not available, priority 5"),
    }


def test_fairness_to_a_single_phase_car_can_cost_power() -> None:
    """Site L3 19 A; a single-phase car behind a 3 kW feeder that equal_share (counting it
    three-phase, 4.3 A) cannot fit at all. weighted_fair serves it: 19 A over three cars
    on L3 is 6.33 A each, floored to 6.3 A. Fewer phase-amperes in total, but no car
    is left out."""
    case = problem(
        [site(19.0), LimitNode("f", "site", None, 3000.0)],
        [car("a", one(2), 7.0), car("b", (0, 2), 12.0), car("c", (0, 2), 7.0, node="f")],
    )
    check(
        weighted_fair(case),
        case,
        {"a": (6.3, "site L3"), "b": (6.3, "site L3"), "c": (6.3, "site L3")},
    )
    check(
        equal_share(case),
        case,
        {"a": (7.0, "session max"), "b": (12.0, "session max"), "c": (0.0, PAUSED_1)},
    )


def test_nan_reading_counts_as_no_headroom() -> None:
    """A NaN base load on L1 leaves nothing on L1 (the safe reading); L2 is unaffected.
    equal_share counts the L2 car on L1 too, so it pauses both."""
    case = problem([site(32.0, (float("nan"), 0, 0))], [car("l1", one(0)), car("l2", one(1))])
    check(weighted_fair(case), case, {"l1": (0.0, PAUSED_1), "l2": (32.0, "session max")})
    check(equal_share(case), case, {"l1": (0.0, PAUSED_1), "l2": (0.0, PAUSED_1)})


def test_odd_weights_rise_last_and_are_quoted_as_given() -> None:
    """A weight of 0 counts as the smallest weight (1e-3): it pauses first, and its reason
    quotes the weight it was given."""
    case = problem([site(10.0)], [car("a", weight=0.0), car("b", weight=0.5)])
    check(
        weighted_fair(case),
        case,
        {"a": (0.0, "paused: minimum not available, priority 0"), "b": (10.0, "site L1")},
    )


def test_malformed_problems_raise() -> None:
    """Duplicate connectors, phases outside 0..2, a parent listed after its child and a
    voltage that is not positive are errors, not answers."""
    bad = [
        problem([site()], [car("a"), car("a")]),
        problem([site()], [car("a", (3,))]),
        problem([LimitNode("f", "site"), site()], [car("a")]),
        AllocationProblem((site(),), (car("a"),), 0.0),
    ]
    for case in bad:
        for policy in POLICIES.values():
            with pytest.raises(ValueError, match=r"connector|phases|parent|voltage"):
                policy(case)


# --- the invariant checker -------------------------------------------------


def entry(key: str, amps: float) -> ConnectorAllocation:
    """An allocation entry with a dummy reason."""
    return ConnectorAllocation(key, amps, "test")


def answer(**amps: float) -> Allocation:
    """An allocation from keyword amps."""
    return Allocation({key: entry(key, value) for key, value in amps.items()})


def test_verify_names_a_phase_overload() -> None:
    """Base 10 A + 25 A on L1 = 35 A > 32 − 1 A margin: one message naming node, phase, sums."""
    case = problem([site(32.0, (10, 0, 0), margin_a=1.0)], [car("a", one(0))])
    assert violations(case, answer(a=25.0)) == [
        "site L1: base load 10 A + sessions 25 A = 35 A exceeds 31 A (limit 32 A − margin 1 A)"
    ]
    assert violations(case, answer(a=21.0)) == []


def test_verify_base_load_over_limit_is_kept_by_zero() -> None:
    """A limit broken by base load alone is kept when the sessions loading it get 0 A,
    and broken when any of them gets more (cars on other phases do not count)."""
    case = problem([site(32.0, (40, 0, 0))], [car("l1", one(0)), car("l2", one(1))])
    assert violations(case, answer(l1=0.0, l2=32.0)) == []
    (message,) = violations(case, answer(l1=6.0, l2=0.0))
    assert message.startswith("site L1: base load 40 A alone exceeds 32 A")
    assert "must get 0 A, but they get 6 A" in message


def test_verify_names_a_power_overload() -> None:
    """11 kW site: a three-phase car at 16 A draws 11040 W > 11000 W."""
    case = problem([site(None, max_power_w=11000.0)], [car("a")])
    assert violations(case, answer(a=16.0)) == [
        "site power: base load 0 W + sessions 11040 W = 11040 W exceeds 11000 W "
        "(limit 11000 W − margin 0 A × 230 V × 3)"
    ]
    assert violations(case, answer(a=15.9)) == []


def test_verify_session_bounds_and_grid() -> None:
    """Between 0 and the minimum, above the maximum, off the 0.1 A grid, negative, NaN."""
    case = problem([site(None)], [car("a"), car("b", max_a=16.0), car("c"), car("d"), car("e")])
    found = violations(case, answer(a=3.0, b=20.0, c=7.05, d=-1.0, e=float("nan")))
    assert found == [
        "connector a: 3 A is above 0 but below its minimum 6 A",
        "connector b: 20 A exceeds its maximum 16 A",
        "connector c: 7.05 A is not a multiple of 0.1 A",
        "connector d: -1.0 A is not a finite current ≥ 0",
        "connector e: nan A is not a finite current ≥ 0",
    ]


def test_verify_entries_match_sessions() -> None:
    """A session without an entry and an entry without a session are both reported."""
    case = problem([site(32.0)], [car("a")])
    assert violations(case, answer(z=0.0)) == [
        "connector a: no entry in the allocation",
        "entry z: names no session of the problem",
    ]


def test_verify_unknown_node_must_get_zero() -> None:
    """No limit can be checked for a session at an unknown node: only 0 A is safe."""
    case = problem([site(32.0)], [car("a", node="ghost")])
    assert violations(case, answer(a=0.0)) == []
    assert violations(case, answer(a=6.0)) == [
        "connector a: 6 A at unknown node ghost, where no limit can be checked"
    ]


def test_verify_counts_sessions_below_a_node_once() -> None:
    """A feeder's sessions load the feeder and the site; base loads are not summed up the tree."""
    case = problem(
        [site(40.0, (5, 0, 0)), LimitNode("f", "site", 20.0, base_load_a=(5, 0, 0))],
        [car("a", one(0), node="f"), car("b", one(0))],
    )
    assert violations(case, answer(a=15.0, b=20.0)) == []
    assert node_headroom_a(case, answer(a=15.0, b=20.0)) == {
        "site": (0.0, 40.0, 40.0),
        "f": (0.0, 20.0, 20.0),
    }
    (message,) = violations(case, answer(a=15.0, b=20.1))
    assert message.startswith("site L1: base load 5 A + sessions 35.1 A = 40.1 A exceeds 40 A")


# --- registry and purity ---------------------------------------------------


def test_registry_returns_every_policy() -> None:
    """The config names policies; get_policy maps the names to the functions."""
    assert get_policy("equal_share") is equal_share
    assert get_policy("weighted_fair") is weighted_fair
    assert set(POLICIES) == {"deadline", "equal_share", "optimal", "weighted_fair"}


def test_registry_unknown_name_lists_the_known_ones() -> None:
    """A typo in the config gets a KeyError that says what would have worked."""
    with pytest.raises(KeyError, match="equal_share, optimal, weighted_fair"):
        get_policy("fastest")


def test_importing_policies_does_no_io() -> None:
    """Policies decide, they do no I/O: importing them loads no asyncio, websockets, ocpp,
    pymodbus or aiomqtt (checked in a fresh interpreter, where nothing is loaded yet)."""
    script = textwrap.dedent(
        """
        import sys
        import policies, policies.verify, policies.equal_share, policies.weighted_fair
        import policies.optimal
        banned = ("asyncio", "websockets", "ocpp", "pymodbus", "aiomqtt")
        print(",".join(m for m in sys.modules if m.split(".")[0] in banned))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
