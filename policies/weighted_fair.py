"""Weighted max-min fairness across the limit tree and the phases. Pure.

This module owns the policy ``weighted_fair``. In order:

1. A session whose own limits forbid charging (its maximum below its
   minimum) or that names an unknown node gets 0 A.
2. A session whose minimum alone does not fit some limit above it is paused.
3. While the minimums of the running sessions do not fit every limit, the
   lowest-priority session that loads a limit still over is paused: lower
   weight first; among equal weights the later connector id first (a fixed
   order, to be replaced by rotation). A session that loads no over-full
   limit is never paused for it: pausing it would not help, and cars that
   are paused may not wake again, so the fewest sessions pause.
4. The running sessions share the rest by weighted progressive filling
   (:mod:`policies.filling`): session ``i`` follows ``clamp(w_i × t, min_i,
   max_i)`` as the level ``t`` rises and freezes when a limit it loads
   becomes tight. A session loads only its own phases: a single-phase car
   on L2 leaves L1 and L3 to the others.
5. Currents are floored to the 0.1 A step; minimum and maximum are already
   on that grid, so the floor keeps every session within them.

Each entry's reason names what bound it: ``<node> L1``..``L3``, ``<node>
power``, ``session max``, or ``paused: minimum not available, priority <w>``.
A limit that holds a single session acts as that session's maximum, so its
name appears where ``session max`` would otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.filling import fill, first_of_runs
from policies.incidence import (
    AT_MAX,
    PAUSED,
    RUNNABLE,
    BoolArray,
    FloatArray,
    IntArray,
    Pairs,
    Sessions,
    Tree,
    allocation,
    base_codes,
    compile_sessions,
    compile_tree,
    floor_to_step,
    id_rank,
    session_pairs,
)
from policies.problem import Allocation, AllocationProblem

_FIT_NOISE_A = 1e-9
"""Sums of minimums may exceed a headroom by float noise and still fit."""


def _only(pairs: Pairs, keep: BoolArray) -> Pairs:
    mask = keep[pairs.session]
    return Pairs(pairs.session[mask], pairs.constraint[mask], pairs.coef[mask])


def _fold(
    pairs: Pairs, max_a: FloatArray, cap: IntArray, room: FloatArray
) -> tuple[Pairs, FloatArray, IntArray]:
    """Turn limits with one member into that member's maximum; drop limits that cannot bind.

    Both are shortcuts: the filling would reach the same answer with them
    left in, only slower. ``cap`` records which limit set each maximum.
    """
    s, c = pairs.session, pairs.constraint
    single = np.bincount(c, minlength=len(room))[c] == 1
    if single.any():
        bound = floor_to_step(room[c[single]] / pairs.coef[single])
        lowered = max_a.copy()
        np.minimum.at(lowered, s[single], bound)
        moved = (bound == lowered[s[single]]) & (bound < max_a[s[single]])
        setter = np.full(len(cap), len(room), dtype=np.int64)
        np.minimum.at(setter, s[single][moved], c[single][moved])
        cap = np.where(setter < len(room), setter, cap)
        max_a = lowered
    at_max = np.bincount(c, pairs.coef * max_a[s], minlength=len(room))
    keep = ~single & (at_max[c] > room[c])
    return Pairs(s[keep], c[keep], pairs.coef[keep]), max_a, cap


def _exclusive_sums(values: FloatArray, group: IntArray) -> FloatArray:
    """For values sorted by group: the sum of the earlier values of the same group."""
    first = first_of_runs(group)
    before: FloatArray = np.cumsum(values) - values
    sums: FloatArray = before - before[np.flatnonzero(first)][np.cumsum(first) - 1]
    return sums


def _pause(
    pairs: Pairs, min_a: FloatArray, room: FloatArray, priority: Callable[[], IntArray]
) -> BoolArray:
    """Which sessions to pause so the minimums of the others fit (step 3 of the module doc).

    Equivalent to visiting the sessions from the lowest priority up and
    pausing each one that loads a limit still over, but done in batches: the
    candidates are assumed paused in order until the first one whose limits
    would already fit; that one stays and the rest are reconsidered.
    """
    s, c = pairs.session, pairs.constraint
    use = pairs.coef * min_a[s]
    paused = np.zeros(len(min_a), dtype=np.bool_)
    rank: IntArray | None = None
    while True:
        live = ~paused[s]
        need = np.bincount(c[live], use[live], minlength=len(room))
        over = need > room + _FIT_NOISE_A
        if not over.any():
            return paused
        rank = priority() if rank is None else rank
        pick = np.flatnonzero(live & over[c])
        pick = pick[np.argsort(c[pick] * len(min_a) + rank[s[pick]])]
        relief = _exclusive_sums(use[pick], c[pick])
        still = need[c[pick]] - relief > room[c[pick]] + _FIT_NOISE_A
        confirmed = np.zeros(len(min_a), dtype=np.bool_)
        confirmed[s[pick][still]] = True
        candidates = np.unique(s[pick])
        candidates = candidates[np.argsort(rank[candidates])]
        misses = np.flatnonzero(~confirmed[candidates])
        paused[candidates[: misses[0] if len(misses) else len(candidates)]] = True


def _priority(sessions: Sessions, chosen: IntArray) -> Callable[[], IntArray]:
    """Pause order of the chosen sessions (0 = paused first), computed only when needed."""

    def rank() -> IntArray:
        order = np.lexsort((-id_rank(sessions.ids, chosen), sessions.weight[chosen]))
        result = np.empty(len(chosen), dtype=np.int64)
        result[order] = np.arange(len(chosen))
        return result

    return rank


@dataclass(frozen=True, slots=True)
class _Plan:
    """Who runs (steps 1–3), the limits left to fill, and each session's effective maximum."""

    running: BoolArray
    pairs: Pairs
    max_a: FloatArray
    cap: IntArray


def _plan(tree: Tree, sessions: Sessions, chosen: IntArray) -> _Plan:
    room = tree.room_a.ravel()
    min_a, max_a = sessions.min_a[chosen], sessions.max_a[chosen]
    cap = np.full(len(chosen), AT_MAX, dtype=np.int64)
    pairs = session_pairs(tree, sessions, chosen)
    alone = pairs.coef * min_a[pairs.session] > room[pairs.constraint] + _FIT_NOISE_A
    running = np.ones(len(chosen), dtype=np.bool_)
    running[pairs.session[alone]] = False
    pairs, max_a, cap = _fold(_only(pairs, running), max_a, cap, room)
    running &= max_a >= min_a
    paused = _pause(_only(pairs, running), min_a, room, _priority(sessions, chosen))
    if paused.any():
        running &= ~paused
        pairs, max_a, cap = _fold(_only(pairs, running), max_a, cap, room)
    return _Plan(running, _only(pairs, running), max_a, cap)


def weighted_fair(problem: AllocationProblem) -> Allocation:
    """Weighted max-min fair currents under every node, phase and power limit.

    ValueError if the problem itself is malformed (see :mod:`policies.incidence`).
    """
    tree = compile_tree(problem)
    sessions = compile_sessions(problem, tree)
    chosen = np.flatnonzero(sessions.status == RUNNABLE)
    plan = _plan(tree, sessions, chosen)
    min_a, max_a, running = sessions.min_a[chosen], plan.max_a, plan.running
    weight = sessions.weight[chosen]
    filled = fill(plan.pairs, min_a, max_a, weight, tree.room_a.ravel(), running)
    current = np.minimum(np.maximum(floor_to_step(filled.current_a), min_a), max_a)
    # At its maximum a session names what set the maximum; else the limit that froze it.
    bound = np.where(current >= max_a, plan.cap, filled.binding)
    codes = base_codes(sessions)
    codes[chosen] = np.where(running, np.where(bound == -1, plan.cap, bound), PAUSED)
    amps = np.zeros(len(sessions.ids))
    amps[chosen] = np.where(running, current, 0.0)
    return allocation(tree, sessions, amps, codes)
