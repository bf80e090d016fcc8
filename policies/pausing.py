"""Who pauses when the minimums do not all fit, whose turn it is, and who resumes. Pure.

This module owns steps 3 and 6 of :mod:`policies.weighted_fair`: while the minimums
of the running sessions do not fit every limit, the session first in the
pause order among those that load a limit still over is paused. A session
that loads no over-full limit is never paused for it: pausing it would not
help, and cars that are paused may not wake again, so the fewest sessions
pause.

The pause order is the priority (lower weight pauses first) and, among
equal weights, rotation: the caller says how long each session has been
running or paused (``SessionDemand.running_for_s`` / ``paused_for_s``), and
a car that has charged past ``min_run_s`` yields to one that has waited past
``min_pause_s``, so no car starves and none flaps. The policy stays pure:
the times are inputs, and the same inputs give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from policies.filling import first_of_runs
from policies.incidence import (
    AT_MAX,
    PAUSED,
    BoolArray,
    FloatArray,
    IntArray,
    Pairs,
    floor_to_step,
)
from policies.problem import AllocationProblem

FIT_NOISE_A = 1e-9
"""Sums of minimums may exceed a headroom by float noise and still fit."""


def _exclusive_sums(values: FloatArray, group: IntArray) -> FloatArray:
    """For values sorted by group: the sum of the earlier values of the same group."""
    first = first_of_runs(group)
    before: FloatArray = np.cumsum(values) - values
    sums: FloatArray = before - before[np.flatnonzero(first)][np.cumsum(first) - 1]
    return sums


def pause(
    pairs: Pairs, min_a: FloatArray, room: FloatArray, order: Callable[[], IntArray]
) -> BoolArray:
    """Which sessions to pause so the minimums of the others fit.

    ``order()`` gives each session's place in the pause order (0 pauses
    first); it is called only if someone must pause. Equivalent to visiting
    the sessions in that order and pausing each one that loads a limit still
    over, but done in batches: the candidates are assumed paused in order
    until the first one whose limits would already fit; that one stays and
    the rest are reconsidered.
    """
    s, c = pairs.session, pairs.constraint
    use = pairs.coef * min_a[s]
    paused = np.zeros(len(min_a), dtype=np.bool_)
    over = np.bincount(c, use, minlength=len(room)) > room + FIT_NOISE_A
    if not over.any():
        return paused
    # Pausing only lowers loads: a limit that fits with everyone running always fits.
    on_over = over[c]
    s, c, use = s[on_over], c[on_over], use[on_over]
    rank: IntArray | None = None
    while True:
        live = ~paused[s]
        need = np.bincount(c[live], use[live], minlength=len(room))
        over = need > room + FIT_NOISE_A
        if not over.any():
            return paused
        rank = order() if rank is None else rank
        pick = np.flatnonzero(live & over[c])
        pick = pick[np.argsort(c[pick] * len(min_a) + rank[s[pick]])]
        relief = _exclusive_sums(use[pick], c[pick])
        still = need[c[pick]] - relief > room[c[pick]] + FIT_NOISE_A
        confirmed = np.zeros(len(min_a), dtype=np.bool_)
        confirmed[s[pick][still]] = True
        listed = np.zeros(len(min_a), dtype=np.bool_)
        listed[s[pick]] = True
        candidates = np.flatnonzero(listed)
        candidates = candidates[np.argsort(rank[candidates])]
        misses = np.flatnonzero(~confirmed[candidates])
        paused[candidates[: misses[0] if len(misses) else len(candidates)]] = True


_WAITING, _DUE_TO_WAIT, _DUE_TO_RESUME, _PROTECTED = 0, 1, 2, 3
"""Pause order among equal weights, first to last: paused within its minimum pause (it stays
paused); running past its minimum run (it yields); paused past its minimum pause (it takes
the turn); running within its minimum run (nobody takes its turn away)."""


def _seconds(values: list[float | None]) -> FloatArray:
    """The times as floats, None as NaN (fast when no time is given at all)."""
    if values.count(None) == len(values):
        return np.full(len(values), np.nan)
    return np.array(values, dtype=np.float64)


def _turns(problem: AllocationProblem) -> tuple[IntArray, FloatArray]:
    """Per session: its class above, and the time that orders the sessions within it."""
    sessions = problem.sessions
    ran, waited = (
        _seconds([s.running_for_s for s in sessions]),
        _seconds([s.paused_for_s for s in sessions]),
    )
    running = ~np.isnan(ran)
    waited = np.where(running | np.isnan(waited), 0.0, waited)  # unknown: just paused
    ran = np.where(running, ran, 0.0)
    turn = np.where(
        running,
        np.where(ran >= problem.min_run_s, _DUE_TO_WAIT, _PROTECTED),
        np.where(waited >= problem.min_pause_s, _DUE_TO_RESUME, _WAITING),
    )
    # Within a class: the longest run pauses first; the longest wait resumes first.
    return turn.astype(np.int64), np.where(running, -ran, waited)


def pause_order(
    problem: AllocationProblem,
    weight: FloatArray,
    id_rank: Callable[[], IntArray],
    memo: dict[str, object] | None = None,
) -> Callable[[], IntArray]:
    """The pause order: lower weight first; among equal weights, by turn (see above), then
    the later connector id first. Without times every session is "just paused" and the
    order is the weight, then the id.

    ``memo`` (a layout's) keeps the last order: the next call with the same weights and
    turns reuses it instead of sorting again.
    """

    def rank() -> IntArray:
        turn, within = _turns(problem)
        keys = (weight, turn, within)
        last = memo.get("pause_order") if memo is not None else None
        if isinstance(last, tuple) and all(
            np.array_equal(old, new) for old, new in zip(last[:3], keys, strict=True)
        ):
            kept: IntArray = last[3]
            return kept
        order = np.lexsort((-id_rank(), within, turn, weight))
        result = np.empty(len(order), dtype=np.int64)
        result[order] = np.arange(len(order))
        if memo is not None:
            memo["pause_order"] = (weight.copy(), turn, within, result)
        return result

    return rank


def resume(
    pairs: Pairs,
    current_a: FloatArray,
    paused: BoolArray,
    limits_a: tuple[FloatArray, FloatArray, FloatArray],
    order: Callable[[], IntArray],
) -> tuple[FloatArray, IntArray]:
    """Step 6 of :mod:`policies.weighted_fair`: paused sessions whose minimum fits in what
    the filled answer leaves start after all, last in the pause order first (the highest
    priority), each taking what its limits leave up to its maximum, on the 0.1 A grid.

    The pausing of step 3 is greedy: pausing a later session can free the room an earlier
    one lacked, and the running sessions cannot always use it (they are held by other
    limits). Nobody running gets less. ``limits_a`` is (headroom per constraint, minimum,
    maximum per session). Returns the currents and, per session, the reason code of a
    resumed one (the constraint that holds it, or ``AT_MAX``; ``PAUSED`` for the rest).
    """
    room, min_a, max_a = limits_a
    current = current_a.copy()
    held_by = np.full(len(current), PAUSED, dtype=np.int64)
    candidates = np.flatnonzero(paused & (max_a >= min_a))
    if not len(candidates):
        return current, held_by
    s, c = pairs.session, pairs.constraint
    load = np.bincount(c, pairs.coef * current[s], minlength=len(room)).astype(np.float64)
    # Only a car whose minimum fits now can start; starting one only lowers what the
    # others find, so the ones that do not fit now are never looked at (the usual case).
    free_now = np.full(len(current), np.inf)
    np.minimum.at(free_now, s, (room[c] - load[c]) / pairs.coef)
    candidates = candidates[free_now[candidates] >= min_a[candidates] - FIT_NOISE_A]
    if not len(candidates):
        return current, held_by
    bounds = np.searchsorted(s, np.arange(len(current) + 1))
    for i in candidates[np.argsort(-order()[candidates], kind="stable")].tolist():
        mine, coef = c[bounds[i] : bounds[i + 1]], pairs.coef[bounds[i] : bounds[i + 1]]
        free = (room[mine] - load[mine]) / coef if len(mine) else np.array([np.inf])
        tight = int(np.argmin(free))
        amount = float(floor_to_step(np.array([min(max_a[i], free[tight])]))[0])
        if amount < min_a[i]:
            continue
        current[i] = amount
        load[mine] += coef * amount
        held_by[i] = AT_MAX if amount >= max_a[i] else int(mine[tight])
    return current, held_by
