"""Weighted max-min fairness across the limit tree and the phases. Pure.

This module owns the policy ``weighted_fair``. In order:

1. A session whose own limits forbid charging (its maximum below its
   minimum) or that names an unknown node gets 0 A.
2. A session whose minimum alone does not fit some limit above it is paused.
3. While the minimums of the running sessions do not fit every limit, the
   session first in the pause order that loads a limit still over is
   paused: lower weight first; among equal weights by turn (who has run
   past its minimum run time yields to who has waited past its minimum
   pause; see :mod:`policies.pausing`), then the later connector id. A
   session that loads no over-full limit is never paused for it: pausing it
   would not help, and cars that are paused may not wake again, so the
   fewest sessions pause.
4. The running sessions share the rest by weighted progressive filling
   (:mod:`policies.filling`): session ``i`` follows ``clamp(w_i × t, min_i,
   max_i)`` as the level ``t`` rises and freezes when a limit it loads
   becomes tight. A session loads only its own phases: a single-phase car
   on L2 leaves L1 and L3 to the others.
5. Currents are floored to the 0.1 A step; minimum and maximum are already
   on that grid, so the floor keeps every session within them.
6. Work-conserving: a paused session whose minimum fits in what the others
   leave starts after all (highest priority first), taking what its limits
   leave up to its maximum. Step 3 pauses greedily, and the running sessions
   cannot always use the room a pause freed (other limits hold them): a
   single-phase car paused for a power limit can find room on its phase
   once a three-phase car is paused too. Nobody running gets less.

Each entry's reason names what bound it: ``<node> L1``..``L3``, ``<node>
power``, ``session max``, or ``paused: minimum not available, priority <w>``.
A limit that holds a single session acts as that session's maximum, so its
name appears where ``session max`` would otherwise. Where two limits become
full at the same level, either may be named.

Speed (none of it changes an answer): the problem's structure is compiled
once per site (:mod:`policies.layout`); a tick where every minimum fits skips
step 3's search; step 4 fills first under the limits that were nearly full
last time and checks the rest (:func:`_fill`), with interchangeable sessions
filled as one (:mod:`policies.symmetry`). The policy keeps these hints
between calls, so it is pure in what it answers, not in what it remembers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.filling import Filled, fill
from policies.incidence import (
    AT_MAX,
    KINDS,
    PAUSED,
    RUNNABLE,
    BoolArray,
    FloatArray,
    IntArray,
    Pairs,
    allocation,
    base_codes,
    floor_to_step,
)
from policies.layout import Compiled, Layout, compile_problem
from policies.pausing import FIT_NOISE_A, pause, pause_order, resume
from policies.problem import Allocation, AllocationProblem
from policies.symmetry import interchangeable

_NEAR_TIGHT = 0.9
"""A limit loaded to 90 % of its headroom is filled under on the next call (a warm start)."""

_WARM_TRIES = 3
"""Relaxed fillings tried before filling under every limit."""


def _subset(pairs: Pairs, keep: BoolArray) -> Pairs:
    return Pairs(pairs.session[keep], pairs.constraint[keep], pairs.coef[keep])


def _only(pairs: Pairs, running: BoolArray) -> Pairs:
    return pairs if running.all() else _subset(pairs, running[pairs.session])


def _fold_singles(
    pairs: Pairs, single: BoolArray, max_a: FloatArray, room: FloatArray
) -> tuple[FloatArray, IntArray]:
    """Lower each session's maximum to the headroom of the limits it is alone under.

    Returns the maximum and, per session, the limit that set it (``AT_MAX``
    where its own maximum stays lowest).
    """
    cap = np.full(len(max_a), AT_MAX, dtype=np.int64)
    if not single.any():
        return max_a, cap
    s, c = pairs.session[single], pairs.constraint[single]
    bound = floor_to_step(room[c] / pairs.coef[single])
    lowered = max_a.copy()
    np.minimum.at(lowered, s, bound)
    moved = (bound == lowered[s]) & (bound < max_a[s])
    setter = np.full(len(cap), len(room), dtype=np.int64)
    np.minimum.at(setter, s[moved], c[moved])
    return lowered, np.where(setter < len(room), setter, cap)


def _fold(
    pairs: Pairs, max_a: FloatArray, cap: IntArray, room: FloatArray
) -> tuple[Pairs, FloatArray, IntArray]:
    """Turn limits with one member into that member's maximum; drop limits that cannot bind.

    The maximum is the limit's headroom floored to the 0.1 A grid, so what
    flooring would leave unused under a parent limit goes to the others;
    dropping limits that cannot bind only saves the filling work. ``cap``
    records which limit set each maximum.
    """
    s, c = pairs.session, pairs.constraint
    single = np.bincount(c, minlength=len(room))[c] == 1
    lowered, setter = _fold_singles(pairs, single, max_a, room)
    cap = np.where(setter != AT_MAX, setter, cap)
    at_max = np.bincount(c, pairs.coef * lowered[s], minlength=len(room))
    return _subset(pairs, ~single & (at_max[c] > room[c])), lowered, cap


@dataclass(frozen=True, slots=True)
class _Plan:
    """Who runs (steps 1–3), each session's effective maximum and what set it, what to fill.

    The filling runs over ``pairs``, under the limits marked in ``can_bind``.
    """

    running: BoolArray
    pairs: Pairs
    can_bind: BoolArray
    max_a: FloatArray
    cap: IntArray


@dataclass(frozen=True, slots=True)
class _Sums:
    """Per limit, the runnable sessions' minimums: in total, the largest alone, how many.

    Kept per layout while the minimums and the runnable set stay the same.
    """

    min_a: FloatArray
    runnable: BoolArray
    need_a: FloatArray
    alone_a: FloatArray
    single: BoolArray


def _sums(layout: Layout, min_a: FloatArray, runnable: BoolArray, limits: int) -> _Sums:
    memo = layout.warm.get("weighted_fair.sums")
    if (
        isinstance(memo, _Sums)
        and np.array_equal(memo.min_a, min_a)
        and np.array_equal(memo.runnable, runnable)
    ):
        return memo
    s, c = layout.pairs.session, layout.pairs.constraint
    use = layout.pairs.coef * min_a[s] * runnable[s]
    alone_a = np.zeros(limits)
    np.maximum.at(alone_a, c, use)
    members = np.bincount(c, runnable[s], minlength=limits)
    memo = _Sums(
        min_a=min_a,
        runnable=runnable,
        need_a=np.bincount(c, use, minlength=limits).astype(np.float64),
        alone_a=alone_a,
        single=(members[c] == 1) & runnable[s],
    )
    layout.warm["weighted_fair.sums"] = memo
    return memo


def _plan_with_pauses(compiled: Compiled, sums: _Sums) -> _Plan:
    """Steps 1–3 of the module doc, when some minimum does not fit."""
    tree, sessions, layout = compiled.tree, compiled.sessions, compiled.layout
    room = tree.room_a.ravel()
    running = sessions.status == RUNNABLE
    min_a = sessions.min_a
    pairs = layout.pairs
    too_big = sums.alone_a > room + FIT_NOISE_A
    if too_big.any():  # only then look at each pair
        alone = too_big[pairs.constraint] & (
            pairs.coef * min_a[pairs.session] > room[pairs.constraint] + FIT_NOISE_A
        )
        running[pairs.session[alone]] = False
    pairs, max_a, cap = _fold(_only(pairs, running), sessions.max_a, _no_caps(len(min_a)), room)
    if not (max_a >= min_a)[running].all():
        running &= max_a >= min_a
        pairs = _only(pairs, running)
    order = pause_order(compiled.problem, sessions.weight, layout.id_rank, layout.warm)
    paused = pause(pairs, min_a, room, order)
    if paused.any():
        running &= ~paused
        # Limits left with one member become its maximum, on the 0.1 A grid: the rest of
        # the headroom under a parent limit goes to the others instead of to rounding.
        pairs, max_a, cap = _fold(_only(pairs, running), max_a, cap, room)
    return _Plan(running, pairs, np.ones(len(room), dtype=np.bool_), max_a, cap)


def _no_caps(count: int) -> IntArray:
    return np.full(count, AT_MAX, dtype=np.int64)


def _plan(compiled: Compiled) -> _Plan:
    """Steps 1–3 of the module doc: a shortcut for the usual case where every minimum fits."""
    tree, sessions, layout = compiled.tree, compiled.sessions, compiled.layout
    room = tree.room_a.ravel()
    runnable = sessions.status == RUNNABLE
    sums = _sums(layout, sessions.min_a, runnable, len(room))
    if (sums.alone_a > room + FIT_NOISE_A).any() or (sums.need_a > room + FIT_NOISE_A).any():
        return _plan_with_pauses(compiled, sums)
    pairs = layout.pairs
    max_a, cap = _fold_singles(pairs, sums.single, sessions.max_a, room)
    if (max_a < sessions.min_a)[runnable].any():
        return _plan_with_pauses(compiled, sums)
    if not runnable.all():
        pairs = _only(pairs, runnable)
    c = pairs.constraint
    at_max = np.bincount(c, pairs.coef * max_a[pairs.session], minlength=len(room))
    members = np.bincount(c, minlength=len(room))
    return _Plan(runnable, pairs, (members > 1) & (at_max > room), max_a, cap)


def _root_limits(limits: int) -> BoolArray:
    """The first guess on a new tree: the root's limits (a site's connection binds most)."""
    hint = np.zeros(limits, dtype=np.bool_)
    hint[:KINDS] = True
    return hint


def _fill_under(compiled: Compiled, plan: _Plan, limits: BoolArray) -> Filled:
    """The weighted max-min fair currents under ``limits`` only, interchangeable sessions
    filled as one (:mod:`policies.symmetry`)."""
    sessions, room, pairs = compiled.sessions, compiled.tree.room_a.ravel(), plan.pairs
    min_a, max_a, weight = sessions.min_a, plan.max_a, sessions.weight
    under = _subset(pairs, limits[pairs.constraint])
    groups = interchangeable(compiled.layout, limits, plan.running, min_a, max_a, weight)
    if groups is None:
        return fill(under, min_a, max_a, weight, room, plan.running)
    first = groups.first
    member = groups.group[under.session]
    keep = first[np.maximum(member, 0)] == under.session
    group = member[keep]
    stands_for = Pairs(group, under.constraint[keep], under.coef[keep] * groups.count[group])
    running = np.ones(len(first), dtype=np.bool_)
    filled = fill(stands_for, min_a[first], max_a[first], weight[first], room, running)
    index = np.maximum(groups.group, 0)
    return Filled(
        np.where(plan.running, filled.current_a[index], 0.0),
        np.where(plan.running, filled.binding[index], -1),
    )


def _fill(compiled: Compiled, plan: _Plan) -> Filled:
    """Step 4, warm-started from the limits that were nearly tight in the last answer on
    this tree (the root's limits on a new tree).

    Filling under only some limits gives the weighted max-min fair answer of a
    relaxed problem. If it leaves every other limit strictly slack, it is also
    the answer of the full problem (the fair answer over a larger feasible set
    that lies in the smaller set is the smaller set's), so the result does not
    depend on the hint, only the time does. A limit found not slack joins the
    set and the filling runs again; after a few tries, under every limit.
    """
    room, pairs = compiled.tree.room_a.ravel(), plan.pairs
    memo = compiled.layout.tree_warm.get("weighted_fair.hint")
    hint: BoolArray = memo if isinstance(memo, np.ndarray) else _root_limits(len(room))
    for _ in range(_WARM_TRIES):
        under = plan.can_bind & hint
        filled = _fill_under(compiled, plan, under)
        load = np.bincount(
            pairs.constraint, pairs.coef * filled.current_a[pairs.session], minlength=len(room)
        )
        missed = plan.can_bind & ~under & (load >= room - FIT_NOISE_A)
        if not missed.any():
            compiled.layout.tree_warm["weighted_fair.hint"] = load >= _NEAR_TIGHT * room
            return filled
        hint = hint | missed
    filled = _fill_under(compiled, plan, plan.can_bind)
    load = np.bincount(
        pairs.constraint, pairs.coef * filled.current_a[pairs.session], minlength=len(room)
    )
    compiled.layout.tree_warm["weighted_fair.hint"] = load >= _NEAR_TIGHT * room
    return filled


def solve(compiled: Compiled) -> tuple[FloatArray, IntArray]:
    """Per session of a compiled problem: the current and the reason code (see incidence)."""
    sessions = compiled.sessions
    plan = _plan(compiled)
    min_a, max_a, running = sessions.min_a, plan.max_a, plan.running
    filled = _fill(compiled, plan)
    current = np.minimum(np.maximum(floor_to_step(filled.current_a), min_a), max_a)
    # At its maximum a session names what set the maximum; else the limit that froze it.
    bound = np.where(current >= max_a, plan.cap, filled.binding)
    bound = np.where(running, np.where(bound == -1, plan.cap, bound), PAUSED)
    current = np.where(running, current, 0.0)
    paused = ~running & (sessions.status == RUNNABLE)
    if paused.any():
        layout = compiled.layout
        order = pause_order(compiled.problem, sessions.weight, layout.id_rank, layout.warm)
        limits = (compiled.tree.room_a.ravel(), min_a, sessions.max_a)
        current, resumed = resume(layout.pairs, current, paused, limits, order)
        bound = np.where(paused, resumed, bound)
    codes = np.where(sessions.status == RUNNABLE, bound, base_codes(sessions))
    return current, codes


def weighted_fair(problem: AllocationProblem) -> Allocation:
    """Weighted max-min fair currents under every node, phase and power limit.

    ValueError if the problem itself is malformed (see :mod:`policies.layout`).
    """
    compiled = compile_problem(problem)
    amps, codes = solve(compiled)
    return allocation(compiled.tree, compiled.sessions, amps, codes)
