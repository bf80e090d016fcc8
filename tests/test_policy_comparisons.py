"""How much the policies deliver, compared: what holds always, and where the claims stop.

Weighted throughput is Σ weight × phases × current: the power ``optimal``
maximises (÷ voltage). The claims of issue 3, checked:

* "weighted_fair delivers ≥ 97 % of optimal's weighted throughput" is false
  in general. optimal buys throughput with fairness: an ampere on a loaded
  phase earns three times as much in a three-phase car as in a single-phase
  one, and a weight-3 car three times a weight-1 car, so the optimum starves
  the cheap cars (``test_three_phase_car_outearns_a_single_phase_one`` in
  test_optimal.py: 67 %). On the generated sites of this file (2,000
  drawn) 88 % of cases reach 97 %, one in twenty is below 75 % and the worst
  seen is 49 %; benchmarks/ reports the ratio on larger sites
  (docs/benchmarks.md). What holds: where no such
  trade exists — equal weights, every car three-phase (each ampere then
  earns the same everywhere and the limits nest like the tree), nobody
  paused — weighted_fair wastes nothing: it is within the 0.1 A flooring of
  the optimum.
* "both beat equal_share whenever phases are unbalanced" holds in this
  sense: when equal_share is held by a site phase and a running car below
  its maximum draws on none of the most loaded phases (where another phase
  has at least 1 A more headroom), weighted_fair delivers strictly more
  current and weighted throughput, and so does optimal. Unbalanced phases
  alone are not enough: if every car draws on the worst phase, all three
  policies are held by it alike.
* optimal is never below weighted_fair (it falls back to it) and, given
  time to finish, never below equal_share by more than its flooring.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Allocation, AllocationProblem
from policies.equal_share import equal_share
from policies.layout import compile_problem
from policies.optimal import optimal, weighted_throughput
from policies.problem import LimitNode, SessionDemand
from policies.weighted_fair import weighted_fair
from tests.test_policy_properties import problems

EXAMPLES = settings(max_examples=150, deadline=None)


def _throughput(problem: AllocationProblem, answer: Allocation) -> float:
    compiled = compile_problem(problem)
    ids = compiled.sessions.ids
    return weighted_throughput(compiled, np.array([answer.current_a(k) for k in ids]))


def _flooring(problem: AllocationProblem) -> float:
    """The most that flooring every session to 0.1 A can cost in weighted throughput."""
    return sum(0.1 * s.weight * len(set(s.phases) or {0, 1, 2}) for s in problem.sessions)


def _amps(answer: Allocation) -> float:
    return sum(answer.currents_a().values())


def _paused(answer: Allocation) -> bool:
    return any(e.reason.startswith("paused") for e in answer.connectors.values())


@EXAMPLES
@given(case=problems())
def test_optimal_is_never_below_the_others(case: AllocationProblem) -> None:
    """optimal's weighted throughput is at least weighted_fair's, and at least equal_share's
    less the flooring of optimal's currents (its MILP answer is continuous)."""
    best = _throughput(case, optimal(case, time_limit_s=10.0))
    assert best >= _throughput(case, weighted_fair(case)) - 1e-9
    assert best >= _throughput(case, equal_share(case)) - _flooring(case) - 1e-9


@EXAMPLES
@given(case=problems(equal_weights=True))
def test_weighted_fair_wastes_nothing_when_every_ampere_earns_alike(
    case: AllocationProblem,
) -> None:
    """All cars three-phase with equal weights and none paused: weighted_fair's weighted
    throughput is the optimum's, up to the 0.1 A per car and phase that flooring takes."""
    three = replace(case, sessions=tuple(replace(s, phases=(0, 1, 2)) for s in case.sessions))
    fair = weighted_fair(three)
    if _paused(fair):
        return
    running = sum(1 for amps in fair.currents_a().values() if amps > 0)
    best = _throughput(three, optimal(three, time_limit_s=10.0))
    assert _throughput(three, fair) >= best - 0.3 * running - 1e-9


_PHASES = st.sampled_from([(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)])


@st.composite
def unbalanced_sites(draw: st.DrawFn) -> AllocationProblem:
    """One site node (20–100 A, no power limit) with base load up to half of it per phase,
    and one to eight cars of weight 1 on random phases, 6–32 A."""
    limit = draw(st.integers(20, 100))
    base = tuple(float(draw(st.integers(0, limit // 2))) for _ in range(3))
    cars = tuple(
        SessionDemand(f"c{i}", "site", draw(_PHASES), float(draw(st.integers(6, 32))))
        for i in range(draw(st.integers(1, 8)))
    )
    node = LimitNode("site", None, float(limit), base_load_a=(base[0], base[1], base[2]))
    return AllocationProblem((node,), cars)


def _a_car_avoids_the_worst_phase(case: AllocationProblem, equal: Allocation) -> bool:
    site = case.nodes[0]
    assert site.max_current_a is not None
    room = [site.max_current_a - base for base in site.base_load_a]
    worst = {p for p in range(3) if room[p] == min(room)}
    return any(
        not worst & set(s.phases)
        and equal.current_a(s.connector_id) < s.max_current_a
        and min(room[p] for p in s.phases) - min(room) >= 1.0
        for s in case.sessions
    )


@settings(max_examples=400, deadline=None)
@given(case=unbalanced_sites())
def test_both_beat_equal_share_when_a_car_avoids_the_worst_phase(case: AllocationProblem) -> None:
    """equal_share held by a site phase, nobody paused, and a car below its maximum that
    draws on none of the most loaded phases: weighted_fair gives strictly more current and
    weighted throughput than equal_share, and optimal strictly more weighted throughput."""
    equal, fair = equal_share(case), weighted_fair(case)
    held = any(e.reason.startswith("site L") for e in equal.connectors.values())
    if _paused(equal) or _paused(fair) or not held:
        return
    if not _a_car_avoids_the_worst_phase(case, equal):
        return
    assert _amps(fair) > _amps(equal)
    assert _throughput(case, fair) > _throughput(case, equal)
    assert _throughput(case, optimal(case, time_limit_s=10.0)) > _throughput(case, equal)
