"""The most weighted power the limits allow, as a MILP, never late and never worse. Timed.

This module owns the policy ``optimal``: for the sessions that could run, the
currents that maximise weighted delivered power ``Σ w_i × phases_i × x_i``
(× voltage, a constant) under every node's phase and power limit, with the
0-or-at-least-the-minimum rule exact (a binary per session where it
matters), solved by HiGHS through scipy's ``milp`` (:mod:`policies.milp_model`).

**Fairness, the secondary goal, and why this way.** Throughput alone has many
optima (two single-phase cars of equal weight on one phase can split its
current any way, or one can be paused), and a solver returns a vertex: one
car at its maximum, the other at its minimum or off. We want, among the
optima, the one closest to the weighted max-min fair answer, so the
objective adds ``ε × Σ_i min(x_i, f_i)``, ``f_i`` being the ``weighted_fair``
current: every ampere up to a session's fair share earns a little extra,
which also turns back on the sessions the optimum can serve at no cost. One
solve keeps the time budget (a lexicographic second solve with the
throughput fixed costs a second MILP, and fixing the on/off pattern of the
first to make it an LP could not revive a paused car); ``ε`` is 1e-4 of the
least worth of an ampere, so fairness never buys more than about 0.01 % of
throughput, the order of the gap HiGHS stops at anyway. The other candidate,
a small weight on the minimum normalised share, lifts only the poorest
session and leaves every other tie to the solver.

**Never late, never worse.** ``weighted_fair`` is solved first (a
millisecond or so). The MILP gets what is left of ``time_limit_s``; if the
wall time since the call began exceeds ``time_limit_s``, if the solver
finds no answer in time, if its rounded answer would break a limit, or if it
does not beat ``weighted_fair``'s weighted throughput, the answer is
``weighted_fair``'s, reasons included. "Optimal" means within 0.1 % of the
LP bound (see :mod:`policies.milp_model`), before flooring to 0.1 A. This is
the one policy that reads a clock: its answer may depend on the machine's
speed, its safety never.

Currents are floored to 0.1 A (a current within the solver's tolerance of a
step counts as on it; the minimum is on the grid, so a session that is on
stays at or above it). Reasons: the lowest-id limit that one more 0.1 A step
would break, ``session max``, ``paused: optimal throughput, priority w`` for
a session the optimum pauses although its minimum fits, ``paused: minimum
not available, priority w`` for one whose minimum alone does not fit, and
``optimal throughput`` when nothing single holds a session where it is.
"""

from __future__ import annotations

import time

import numpy as np

from policies.incidence import (
    AT_MAX,
    OPTIMAL_SHARE,
    PAUSED,
    RUNNABLE,
    TRADED,
    FloatArray,
    IntArray,
    allocation,
    base_codes,
)
from policies.layout import Compiled, compile_problem
from policies.milp_model import Model, build_model, solve_model
from policies.problem import CURRENT_STEP_A, Allocation, AllocationProblem
from policies.weighted_fair import solve as solve_fair

DEFAULT_TIME_LIMIT_S = 0.05
"""50 ms: well inside a 1 s control tick, and enough for a few hundred connectors."""

_FIT_NOISE_A = 1e-9


def weighted_throughput(compiled: Compiled, amps: FloatArray) -> float:
    """Σ weight × phases × current: what ``optimal`` maximises (in phase-amperes, × V for W)."""
    sessions = compiled.sessions
    return float(np.sum(sessions.weight * sessions.phase_count * amps))


def _keeps_limits(compiled: Compiled, amps: FloatArray) -> bool:
    pairs, room = compiled.layout.pairs, compiled.tree.room_a.ravel()
    load = np.bincount(pairs.constraint, pairs.coef * amps[pairs.session], minlength=len(room))
    return bool((load <= room + _FIT_NOISE_A).all())


def _codes(compiled: Compiled, model: Model, amps: FloatArray) -> IntArray:
    """Reason codes for the MILP's answer (module doc)."""
    sessions, pairs = compiled.sessions, compiled.layout.pairs
    room = compiled.tree.room_a.ravel()
    load = np.bincount(pairs.constraint, pairs.coef * amps[pairs.session], minlength=len(room))
    step = pairs.coef * CURRENT_STEP_A
    blocked = (amps[pairs.session] > 0) & (load[pairs.constraint] + step > room[pairs.constraint])
    named = np.full(len(amps), len(room), dtype=np.int64)
    np.minimum.at(named, pairs.session[blocked], pairs.constraint[blocked])
    codes = np.where(named < len(room), named, OPTIMAL_SHARE)
    codes = np.where(amps >= sessions.max_a, AT_MAX, codes)
    off = np.zeros(len(amps), dtype=np.bool_)
    off[model.who[amps[model.who] == 0.0]] = True
    codes = np.where(off, TRADED, codes)
    codes = np.where(model.alone, PAUSED, codes)
    return np.where(sessions.status == RUNNABLE, codes, base_codes(sessions))


def optimal(problem: AllocationProblem, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Allocation:
    """The answer with the most weighted power, within ``time_limit_s`` (module doc).

    ValueError if the problem itself is malformed (see :mod:`policies.layout`).
    """
    start = time.perf_counter()
    compiled = compile_problem(problem)
    fair_a, fair_codes = solve_fair(compiled)
    fair = allocation(compiled.tree, compiled.sessions, fair_a, fair_codes)
    model = build_model(compiled, fair_a)
    solved = solve_model(model, start + time_limit_s) if len(model.who) else None
    if solved is None or time.perf_counter() - start > time_limit_s:
        return fair
    amps = np.zeros(len(fair_a))
    amps[model.who] = solved
    better = weighted_throughput(compiled, amps) > weighted_throughput(compiled, fair_a)
    if not better or not _keeps_limits(compiled, amps):
        return fair
    codes = _codes(compiled, model, amps)
    return allocation(compiled.tree, compiled.sessions, amps, codes)
