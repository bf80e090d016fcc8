"""The speed-ups of the policies change no answer: columns, cached layouts, warm starts, screen.

Each shortcut is checked against the plain way on hand-made and generated
problems: a :class:`ConnectorTable` behaves as the dict it replaces, a solve
on a cached layout (and from a warm start) gives what a cold solve gives,
and the fast screen of :func:`violations` never clears an answer the worded
check would fault.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_policies import random_problem
from policies import POLICIES, Allocation, AllocationProblem, ConnectorAllocation, Policy
from policies.filling import fill
from policies.incidence import Pairs
from policies.layout import clear_cache, compile_problem
from policies.optimal import optimal
from policies.problem import ConnectorTable, LimitNode, SessionDemand
from policies.symmetry import interchangeable
from policies.verify import violations, worded_violations
from policies.weighted_fair import _fill_under, _plan
from tests.test_policy_properties import problems


def _table() -> ConnectorTable:
    reasons = ["session max", "site L2"]
    return ConnectorTable(("a", "b"), [16.0, 7.5], reasons.__getitem__)


SOLVERS: dict[str, Policy] = {
    "equal_share": POLICIES["equal_share"],
    "weighted_fair": POLICIES["weighted_fair"],
    "optimal": lambda problem: optimal(problem, time_limit_s=10.0),
}
"""Every policy, optimal with time to finish (its answer must not depend on the machine)."""


def _plain(allocation: Allocation) -> dict[str, tuple[float, str]]:
    return {k: (v.current_a, v.reason) for k, v in allocation.connectors.items()}


def _names_a_limit(reason: str) -> bool:
    return not reason.startswith("paused") and reason not in ("session max", "optimal throughput")


def _alike(
    first: dict[str, dict[str, tuple[float, str]]], second: dict[str, dict[str, tuple[float, str]]]
) -> bool:
    """The same currents, and the same reasons except where two limits tie.

    Two limits that become full at the same level both hold the session; which
    of them is named can depend on the order in which float sums were taken.
    """
    for name, answer in first.items():
        other = second[name]
        if {k: a for k, (a, _) in answer.items()} != {k: a for k, (a, _) in other.items()}:
            return False
        for key, (_, reason) in answer.items():
            theirs = other[key][1]
            if reason != theirs and not (_names_a_limit(reason) and _names_a_limit(theirs)):
                return False
    return True


def test_connector_table_is_a_read_only_mapping() -> None:
    """A table reads like the dict of entries it stands for, and equals it."""
    table = _table()
    as_dict = {
        "a": ConnectorAllocation("a", 16.0, "session max"),
        "b": ConnectorAllocation("b", 7.5, "site L2"),
    }
    assert len(table) == 2
    assert list(table) == ["a", "b"]
    assert "b" in table
    assert "z" not in table
    assert table["b"] == as_dict["b"]
    assert table == as_dict
    assert dict(table.items()) == as_dict
    assert table.get("z") is None
    with pytest.raises(KeyError):
        table["z"]
    assert "site L2" in repr(table)


def test_connector_table_builds_each_entry_once() -> None:
    """An entry is built when first read and the same object is returned after."""
    table = _table()
    assert table["a"] is table["a"]


def test_allocation_currents_read_the_columns() -> None:
    """``currents_a`` gives every current by id, from a table or from a dict alike."""
    table = _table()
    assert Allocation(table).currents_a() == {"a": 16.0, "b": 7.5}
    assert Allocation(dict(table.items())).currents_a() == {"a": 16.0, "b": 7.5}
    assert Allocation(table).current_a("b") == 7.5
    assert Allocation(table).current_a("z") == 0.0
    assert table.current_list() == [16.0, 7.5]


def test_allocation_rows_read_the_columns_without_building_entries() -> None:
    """``rows`` gives each (id, current, reason) as the entries would, from a table or a
    dict alike, and builds no entry of a table (the loop turns every row into a target)."""
    table = _table()
    expected = [("a", 16.0, "session max"), ("b", 7.5, "site L2")]
    assert list(Allocation(table).rows()) == expected
    assert not table._built
    assert list(Allocation(dict(table.items())).rows()) == expected


@given(case=problems())
@settings(max_examples=50, deadline=None)
def test_rows_of_a_policy_answer_equal_its_entries(case: AllocationProblem) -> None:
    """Every policy's rows say what its entries say: the same ids, currents and reasons."""
    for solve in SOLVERS.values():
        answer = solve(case)
        rows = list(answer.rows())
        assert rows == [(k, e.current_a, e.reason) for k, e in answer.connectors.items()]


def _site(base_a: float) -> AllocationProblem:
    nodes = (
        LimitNode("site", None, 40.0, base_load_a=(base_a, 0.0, 0.0)),
        LimitNode("f", "site", 20.0),
    )
    sessions = (SessionDemand("a", "f", (0,)), SessionDemand("b", "site", (0, 1, 2)))
    return AllocationProblem(nodes, sessions)


def test_layout_is_reused_while_the_structure_holds() -> None:
    """New numbers on the same structure reuse the compiled layout; a new phase does not."""
    clear_cache()
    first = compile_problem(_site(5.0)).layout
    assert compile_problem(_site(9.0)).layout is first
    moved = replace(_site(9.0), sessions=(SessionDemand("a", "f", (1,)), _site(0).sessions[1]))
    assert compile_problem(moved).layout is not first
    assert compile_problem(moved).tree.room_a[0, 0] == 31.0  # 40 − 9 A of base load on L1


def test_new_numbers_on_a_cached_layout_give_the_cold_answer() -> None:
    """Base load and maxima change between calls: each answer equals a solve from scratch."""
    for base_a in (5.0, 30.0, 12.0, 45.0, 0.0):
        case = _site(base_a)
        warm = {name: _plain(policy(case)) for name, policy in SOLVERS.items()}
        clear_cache()
        assert _alike(warm, {name: _plain(policy(case)) for name, policy in SOLVERS.items()})


@settings(max_examples=150, deadline=None)
@given(case=problems(), data=st.data())
def test_warm_started_answers_equal_cold_ones(case: AllocationProblem, data: st.DataObject) -> None:
    """After one solve, a problem with the same structure and new base loads and maxima
    gets exactly the currents, and the reasons, that a solve with no cache gives (where two
    limits tie, either may be named)."""
    for policy in SOLVERS.values():
        policy(case)
    factor = st.sampled_from([0.5, 1.0, 1.5])
    nodes = tuple(
        replace(n, base_load_a=(n.base_load_a[0] * data.draw(factor), n.base_load_a[1], 0.0))
        for n in case.nodes
    )
    sessions = tuple(
        replace(s, max_current_a=data.draw(st.sampled_from([s.max_current_a, 6.0, 10.0, 32.0])))
        for s in case.sessions
    )
    new = replace(case, nodes=nodes, sessions=sessions)
    warm = {name: _plain(policy(new)) for name, policy in SOLVERS.items()}
    clear_cache()
    assert _alike(warm, {name: _plain(policy(new)) for name, policy in SOLVERS.items()})


_BAD_CURRENTS = [0.0, 6.0, 6.05, 5.9, 32.0, 32.1, 80.0, -1.0, -1e-7, math.nan, math.inf]


@settings(max_examples=300, deadline=None)
@given(case=problems(), data=st.data())
def test_screen_never_clears_a_faulty_answer(case: AllocationProblem, data: st.DataObject) -> None:
    """``violations`` (screen first) and ``worded_violations`` (no screen) agree exactly on
    policy answers with some currents replaced by odd values, an entry dropped or added."""
    answer = dict(POLICIES["weighted_fair"](case).connectors.items())
    for key in data.draw(st.lists(st.sampled_from(sorted(answer)), max_size=3)) if answer else []:
        bump = data.draw(st.sampled_from([*_BAD_CURRENTS, answer[key].current_a + 0.1]))
        answer[key] = ConnectorAllocation(key, bump, "test")
    if answer and data.draw(st.booleans()):
        answer.pop(data.draw(st.sampled_from(sorted(answer))))
    if data.draw(st.integers(0, 9)) == 0:
        answer["stranger"] = ConnectorAllocation("stranger", 0.0, "test")
    allocation = Allocation(answer)
    assert violations(case, allocation) == worded_violations(case, allocation)


def test_screen_agrees_on_large_answers_near_the_limits() -> None:
    """On a generated 300-connector site, answers pushed 0.1 A over a bound are faulted by
    both checks, and the policies' own answers are cleared by both."""
    case = random_problem(300, random.Random(3))
    for policy in SOLVERS.values():
        answer = policy(case)
        assert violations(case, answer) == worded_violations(case, answer) == []
        entries = dict(answer.connectors.items())
        key = max(entries, key=lambda k: entries[k].current_a)
        entries[key] = ConnectorAllocation(key, entries[key].current_a + 0.1, "test")
        assert violations(case, Allocation(entries)) == worded_violations(case, Allocation(entries))


def test_interchangeable_sessions_filled_as_one_get_what_each_would() -> None:
    """Filling one representative per group of interchangeable sessions gives every session
    exactly the current and binding limit that filling them one by one gives (300- and
    1,000-connector sites, under every limit and under the root's alone, where the groups
    are few)."""
    rng = random.Random(5)
    for size in (300, 1000):
        compiled = compile_problem(random_problem(size, rng))
        plan = _plan(compiled)
        sessions, room = compiled.sessions, compiled.tree.room_a.ravel()
        root = plan.can_bind.copy()
        root[4:] = False
        for limits in (plan.can_bind, root):
            groups = interchangeable(
                compiled.layout, limits, plan.running, sessions.min_a, plan.max_a, sessions.weight
            )
            if limits is root:  # under every limit most chargers bind: groups may not pay
                assert groups is not None
                assert len(groups.first) < size / 2
            grouped = _fill_under(compiled, plan, limits)
            pairs = plan.pairs
            keep = limits[pairs.constraint]
            under = Pairs(pairs.session[keep], pairs.constraint[keep], pairs.coef[keep])
            alone = fill(under, sessions.min_a, plan.max_a, sessions.weight, room, plan.running)
            assert np.allclose(grouped.current_a, alone.current_a, rtol=0, atol=1e-9)
            assert (grouped.binding == alone.binding).all()
