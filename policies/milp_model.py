"""The MILP behind ``optimal``: model, solve with HiGHS, exact 0-or-minimum rule, on time.

This module owns the mathematics of :mod:`policies.optimal`. For each
candidate session ``i`` (runnable, its minimum alone fits every limit):

* columns: its current ``x_i`` (amperes), its fair coverage ``y_i``
  (``y_i ≤ x_i`` and ``y_i ≤`` its ``weighted_fair`` current) and, where
  needed, a binary ``on_i`` with ``min_i × on_i ≤ x_i ≤ max_i × on_i``;
* rows: every node's phase and power limit that can bind, with the loads of
  :mod:`policies.incidence`, each headroom floored to the 0.1 A grid (the
  floored answer must fit it anyway, and a bound off the grid by a hair has
  made HiGHS report a solve error);
* objective: maximise ``Σ w_i × phases_i × x_i`` (weighted power ÷ voltage)
  plus ``ε × Σ y_i`` (see :mod:`policies.optimal` on fairness).

**The search.** The model is first solved as an LP with no binary at all:
its worth bounds every answer's, and if it keeps the rule it is the
optimum. Else a *dive*: the candidates it left between 0 and their minimum,
and those it left at 0 (so the current freed cannot flow to them instead),
are switched off and the LP is solved again, until the rule holds. A dive
within 0.1 % of the bound is taken (:data:`_GAP`); otherwise the exact MILP
runs with binaries only where needed: a candidate the relaxation leaves
between 0 and its minimum gets a binary, and so does every candidate below
its maximum on a limit it loads (the freed or taken current moves to them),
and the model is solved again. An optimum of this relaxation that keeps the
rule for every candidate is an optimum of the exact model. If the MILP
cannot finish in time, the dive's answer stands. Presolve runs for the MILPs
only: on an LP this small it costs more than it saves.

**On time.** A solve that is not expected to end in time is not started
(:mod:`policies.timing`): the first LP's time is estimated from the
model's size, and a solve with binaries is taken to cost up to five times
the first LP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from policies.incidence import RUNNABLE, BoolArray, FloatArray, IntArray, Pairs, floor_to_step
from policies.layout import Compiled
from policies.timing import PACE, Clock

_SOLVER_TOLERANCE_A = 1e-6
"""Currents a hair below the minimum (solver noise) keep the rule."""

_MIP_COST = 5.0
"""A solve with binaries takes up to about this many times the first LP (measured at
200–1,000 connectors: 1–4.8×)."""

_GAP = 1e-3
"""A dive's answer this close to the LP bound (relative) is taken as the optimum.

HiGHS's own MIP gap is 1e-4, but proving the last 0.1 % costs the exact MILP
5–10 times the dive (measured at 200 connectors: 67 ms instead of 8 ms to
gain 0.03 %); one dive in 50 ends between 1e-4 and 1e-3, none above."""

_DIVES = 4
"""LP solves a dive may take before the exact MILP is tried."""

_FAIRNESS = 1e-4
"""Worth of an ampere of fair coverage, relative to the least worth of an ampere of power."""

_OFF_A = 1e-6
"""A solver current this small is 0 (the session is off)."""

_FIT_NOISE_A = 1e-9


@dataclass(frozen=True, slots=True)
class Model:
    """The candidates (``who``), their numbers, and the limit rows that can bind them.

    ``pairs`` index candidates (``session``) and rows (``constraint``);
    ``alone`` marks sessions whose minimum alone does not fit some limit.
    """

    who: IntArray
    pairs: Pairs
    rows: IntArray
    room_a: FloatArray
    min_a: FloatArray
    max_a: FloatArray
    value: FloatArray
    fair_a: FloatArray
    alone: BoolArray


def build_model(compiled: Compiled, fair_a: FloatArray) -> Model:
    """Candidates (runnable, minimum fits alone) and the limit rows that can bind."""
    sessions, pairs = compiled.sessions, compiled.layout.pairs
    room = compiled.tree.room_a.ravel()
    runnable = sessions.status == RUNNABLE
    too_big = pairs.coef * sessions.min_a[pairs.session] > room[pairs.constraint] + _FIT_NOISE_A
    alone = np.zeros(len(runnable), dtype=np.bool_)
    alone[pairs.session[too_big]] = True
    who = np.flatnonzero(runnable & ~alone)
    local = np.full(len(runnable), -1, dtype=np.int64)
    local[who] = np.arange(len(who))
    keep = local[pairs.session] >= 0
    s, c, coef = local[pairs.session[keep]], pairs.constraint[keep], pairs.coef[keep]
    max_a = sessions.max_a[who]
    at_max = np.bincount(c, coef * max_a[s], minlength=len(room))
    binds = at_max[c] > room[c]
    rows, row = np.unique(c[binds], return_inverse=True)
    return Model(
        who=who,
        pairs=Pairs(s[binds], row, coef[binds]),
        rows=rows,
        room_a=floor_to_step(room[rows]),
        min_a=sessions.min_a[who],
        max_a=max_a,
        value=sessions.weight[who] * sessions.phase_count[who],
        fair_a=fair_a[who],
        alone=alone,
    )


def _limit_rows(model: Model, columns: int) -> LinearConstraint:
    pairs = model.pairs
    matrix = csr_array(
        (pairs.coef, (pairs.constraint, pairs.session)), shape=(len(model.rows), columns)
    )
    return LinearConstraint(matrix, -np.inf, model.room_a)


@dataclass(frozen=True, slots=True)
class _Solution:
    """Per candidate, the current; and the objective's value (worth, the larger the better)."""

    current_a: FloatArray
    worth: float


def _run(
    cost: FloatArray,
    integrality: FloatArray,
    bounds: Bounds,
    rows: list[LinearConstraint],
    time_left_s: float,
) -> FloatArray | None:
    """HiGHS's solution, or None unless it proved it optimal within the time left."""
    if time_left_s <= 0.0:
        return None
    result = milp(
        cost,
        integrality=integrality,
        bounds=bounds,
        constraints=rows,
        # Presolve costs an LP more than it saves; a MIP it saves time (measured).
        options={"time_limit": time_left_s, "presolve": bool(integrality.any())},
    )
    solution: FloatArray | None = result.x if result.status == 0 else None
    return solution


def _most_power(
    model: Model, binary: BoolArray, upper_a: FloatArray, time_left_s: float
) -> _Solution | None:
    """Maximise weighted power (+ ε × fair coverage) with the 0-or-minimum rule on the
    ``binary`` candidates only; the others may take any current from 0 to ``upper_a``.

    Columns: currents ``x`` (n), fair coverage ``y`` (n, ``y ≤ x``, ``y ≤ fair``),
    on/off (one per binary candidate).
    """
    n, chosen = len(model.who), np.flatnonzero(binary)
    k = len(chosen)
    ids, on = np.arange(n), np.arange(2 * n, 2 * n + k)
    # Per candidate y − x ≤ 0; per binary candidate x − max·on ≤ 0 and min·on − x ≤ 0.
    links = csr_array(
        (
            np.concatenate(
                [
                    np.ones(n),
                    -np.ones(n),
                    np.stack(
                        [np.ones(k), -model.max_a[chosen], -np.ones(k), model.min_a[chosen]], 1
                    ).reshape(-1),
                ]
            ),
            (
                np.concatenate([ids, ids, n + np.repeat(np.arange(2 * k), 2)]),
                np.concatenate([ids + n, ids, np.stack([chosen, on, chosen, on], 1).reshape(-1)]),
            ),
        ),
        shape=(n + 2 * k, 2 * n + k),
    )
    worth = model.value / model.value.max()
    cost = np.concatenate([-worth, np.full(n, -_FAIRNESS * worth.min()), np.zeros(k)])
    solution = _run(
        cost,
        np.concatenate([np.zeros(2 * n), np.ones(k)]),
        Bounds(
            np.zeros(2 * n + k),
            np.concatenate([upper_a, np.minimum(model.fair_a, upper_a), np.ones(k)]),
        ),
        [_limit_rows(model, 2 * n + k), LinearConstraint(links, -np.inf, 0.0)],
        time_left_s,
    )
    if solution is None:
        return None
    return _Solution(solution[:n], -float(cost @ solution))


def _breaks_rule(model: Model, current: FloatArray) -> BoolArray:
    """Candidates between 0 and their minimum (beyond the solver's tolerance)."""
    broken: BoolArray = (current > _OFF_A) & (current < model.min_a - _SOLVER_TOLERANCE_A)
    return broken


def _relaxation(model: Model, clock: Clock) -> _Solution | None:
    """The LP with the rule on no candidate: its worth bounds every answer's."""
    nonzeros = len(model.pairs.session)
    if PACE.lp_s(nonzeros) > clock.left_s():
        return None
    started = time.perf_counter()
    solution = _most_power(model, np.zeros(len(model.who), np.bool_), model.max_a, clock.left_s())
    clock.lp_s = time.perf_counter() - started
    PACE.learn(nonzeros, clock.lp_s)
    return solution


def _dive(model: Model, relaxed: _Solution, clock: Clock) -> _Solution | None:
    """Keep the rule by switching off whom the LP left below its minimum, and whom it left
    at 0 (so the current freed cannot flow to them instead), then solve the LP again."""
    solution: _Solution | None = relaxed
    upper = model.max_a
    for _ in range(_DIVES):
        if solution is None:
            return None
        broken = _breaks_rule(model, solution.current_a)
        if not broken.any():
            return solution
        if not clock.affords(1.5):
            return None
        upper = np.where(broken | (solution.current_a <= _OFF_A), 0.0, upper)
        solution = _most_power(model, np.zeros(len(model.who), np.bool_), upper, clock.left_s())
    return None


def _exact(model: Model, relaxed: _Solution, clock: Clock) -> _Solution | None:
    """The exact optimum, adding binaries only where the relaxation breaks the rule.

    A candidate left between 0 and its minimum gets a binary (and so do its
    neighbours, see :func:`_suspects`) and the model is solved again: an
    optimum of a relaxation that keeps the rule for every candidate is an
    optimum of the exact model.
    """
    binary = np.zeros(len(model.who), dtype=np.bool_)
    solution: _Solution | None = relaxed
    while solution is not None:
        broken = _breaks_rule(model, solution.current_a) & ~binary
        if not broken.any():
            return solution
        if not clock.affords(_MIP_COST):
            return None
        binary |= _suspects(model, solution.current_a, broken)
        solution = _most_power(model, binary, model.max_a, clock.left_s())
    return None


def _suspects(model: Model, current: FloatArray, broken: BoolArray) -> BoolArray:
    """The broken candidates and every one below its maximum on a limit they load.

    When a broken candidate is switched off or raised to its minimum, the
    current it leaves or takes moves to a neighbour on the same limits, which
    may then break the rule: giving the neighbours a binary at once saves
    solves (measured: the slowest of 80 solves at 200 connectors took 24 ms
    instead of 44 ms).
    """
    pairs = model.pairs
    rows = np.zeros(len(model.rows), dtype=np.bool_)
    rows[pairs.constraint[broken[pairs.session]]] = True
    near = np.zeros(len(broken), dtype=np.bool_)
    near[pairs.session[rows[pairs.constraint]]] = True
    return broken | (near & (current < model.max_a - _OFF_A))


def _snap_a(candidates: int) -> float:
    """How far under a 0.1 A step a solver current may be and still count as on it.

    Small enough that the snapped currents of every candidate together (on a
    power limit, three phases each) stay under one 0.1 A step: sums of grid
    values then still fit the floored headroom they fitted before snapping.
    """
    return min(1e-5, 0.03 / max(1, 3 * candidates))


def solve_model(model: Model, deadline: float) -> FloatArray | None:
    """Per candidate, the best current on the 0.1 A grid; None if nothing in time.

    The LP relaxation bounds the worth of every answer. If it keeps the rule,
    it is the optimum. Else a dive (:func:`_dive`) usually lands within
    :data:`_GAP` of the bound, which proves it optimal within the tolerance
    HiGHS itself stops at; only otherwise does the exact MILP run
    (:func:`_exact`), and if that cannot finish in time the dive's answer is
    used.
    """
    clock = Clock(deadline)
    relaxed = _relaxation(model, clock)
    if relaxed is None:
        return None
    best = _dive(model, relaxed, clock)
    if best is None or best.worth < (1.0 - _GAP) * relaxed.worth:
        best = _exact(model, relaxed, clock) or best
    if best is None:
        return None
    current = best.current_a
    amps = floor_to_step(current + _snap_a(len(current)))
    return np.where(current > _OFF_A, np.clip(amps, model.min_a, model.max_a), 0.0)
