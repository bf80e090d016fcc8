"""The horizon plan behind ``deadline``: an LP over time slots, solved by HiGHS. Pure.

This module owns the mathematics of :mod:`policies.deadline`. For each planned
session ``i`` (runnable, with a departure and an energy need) and each slot
``t`` before its departure:

* columns: its current ``x[i, t]`` (amperes, 0 to its maximum) and its
  shortfall ``s_i`` (kWh it will lack at departure, ≥ 0);
* rows: every limit of the tree in every slot (``Σ coef × x[·, t] ≤ room_t``),
  only where the planned sessions at their maximum could break it; and one
  energy row per session, ``Σ_t e[i, t] × x[i, t] + s_i = need_i``, where
  ``e[i, t]`` is the kWh one ampere gives in the part of slot ``t`` before it
  leaves (phases × voltage × seconds). The equality also keeps the plan from
  giving a car more than it needs, which leaves the rest to the others;
* objective: minimise ``Σ_i M × w_i × s_i`` (shortfall first, by priority)
  ``+ Σ price_t × energy`` (then cost) ``+ δ × t × energy`` (then sooner rather
  than later: a car that arrives or a forecast that errs later finds less
  left to do) ``+ κ × d_i × e[i, 0]``, where ``d_i ≥ held_i − x[i, 0]`` is
  how far the plan takes a car below the current it holds now
  (``SessionDemand.held_a``): among plans otherwise equal the present one
  wins, so the slot-0 setpoints do not swap equal cars from one tick to the
  next (an increase costs nothing: free room is still handed out). ``M`` is
  fixed (not taken from the weights), so raising one session's weight can
  only lower its shortfall; ``κ`` sits above every lateness difference and
  far below a shortfall, so holding current never leaves a car short.

Energy is counted in units of the most one ampere gives in one slot: every
cost is then of order 1 whatever the slot length, above HiGHS's absolute
tolerances (with seconds-long slots the per-ampere costs were 1e-9 and the
plan's slot 0 was left to chance, e.g. every car "later").

Rooms: slot 0 uses the measured base loads (the compiled headroom); later
slots use the forecast of the root's base load where one is given
(:class:`policies.problem.Horizon`), else the measured one. The 0-or-minimum
rule is not part of the LP: later slots are a plan, and a current below the
minimum there stands for charging part of the slot; slot 0 is made exact by
:mod:`policies.deadline`.

Horizon edge cases: a car already past its departure is planned as if it
leaves at the end of slot 0; one that leaves after the horizon is asked for
the share of its need that the horizon covers (need × horizon / departure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_array, vstack

from policies.incidence import KINDS, BoolArray, FloatArray, IntArray, non_negative
from policies.layout import Compiled
from policies.problem import PHASES, Horizon

_SHORTFALL_COST = 1e4
"""Cost of a kWh short at weight 1, in units of (1 + the largest price): with weights
clipped to ≥ 1e-3 a kWh short always costs at least 10 × any price."""

_SOONER = 1e-4
"""Relative worth of delivering a kWh one horizon earlier (a tie-break below any price)."""

_STICKY = 1e-3
"""Relative cost of a kWh a session that holds current now would lose in slot 0: above
every lateness tie-break, below any price difference worth the name, far below a kWh
short. Among plans otherwise equal the present one wins, so equal cars do not swap."""

_WH_PER_KWH = 1000.0

_OFF_A = 1e-6
"""A planned current this small is 0."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Per planned session: slot 0's current, the Wh it will lack, the Wh it needs, and
    whether the plan gives it nothing after slot 0 (it finishes within the slot)."""

    first_a: FloatArray
    short_wh: FloatArray
    need_wh: FloatArray
    last_slot: BoolArray


def _slot_seconds(departure_s: FloatArray, horizon: Horizon) -> tuple[IntArray, FloatArray]:
    """Per session the number of slots before it leaves (≥ 1, ≤ horizon), and the
    effective departure (a car already past it is planned to leave after slot 0)."""
    slot_s = horizon.slot_s
    leave = np.maximum(np.nan_to_num(departure_s, nan=slot_s), slot_s)
    count = np.clip(np.ceil(leave / slot_s - 1e-9), 1, max(horizon.slots, 1)).astype(np.int64)
    return count, leave


def _node_room(compiled: Compiled, node: int, base: tuple[float, float, float]) -> FloatArray:
    """The four headrooms (L1..L3, power) of one node with ``base`` as its base load."""
    limit = compiled.problem.nodes[node]
    room = np.full(KINDS, np.inf)
    with np.errstate(invalid="ignore"):
        if limit.max_current_a is not None:
            room[:PHASES] = non_negative(
                limit.max_current_a - limit.margin_a - np.array(base, dtype=np.float64)
            )
        if limit.max_power_w is not None:
            volts = compiled.problem.voltage_v
            power = limit.max_power_w / volts - PHASES * limit.margin_a - float(sum(base))
            room[PHASES] = non_negative(np.array([power]))[0]
    return room


def slot_rooms(compiled: Compiled, forecast_nodes: list[int], slots: int) -> FloatArray:
    """Headroom per slot and constraint, shape (slots, constraints): the measured one,
    with the forecast base load on ``forecast_nodes`` in slots 1.. where one is given."""
    room0 = compiled.tree.room_a.ravel()
    rooms = np.tile(room0, (slots, 1))
    forecast = compiled.problem.horizon.base_forecast_a
    for t in range(1, min(slots, len(forecast))):
        for node in forecast_nodes:
            rooms[t, node * KINDS : (node + 1) * KINDS] = _node_room(compiled, node, forecast[t])
    return rooms


def _prices(horizon: Horizon, slots: int) -> FloatArray:
    if not horizon.prices:
        return np.zeros(slots)
    given = np.array(horizon.prices, dtype=np.float64)
    return given[np.minimum(np.arange(slots), len(given) - 1)]


def plan(
    compiled: Compiled,
    who: IntArray,
    rooms: FloatArray,
    departure_s: FloatArray,
    need_wh: FloatArray,
) -> Plan | None:
    """The LP of the module doc for sessions ``who`` (indices into the compiled
    sessions); None if HiGHS does not find its optimum (numerical trouble only:
    delivering nothing is always feasible)."""
    horizon, sessions = compiled.problem.horizon, compiled.sessions
    count, leave = _slot_seconds(departure_s, horizon)
    span_s = horizon.slot_s * max(horizon.slots, 1)
    m, start = len(who), np.concatenate([[0], np.cumsum(count)])
    columns = int(start[-1])
    owner = np.repeat(np.arange(m), count)
    slot = np.arange(columns) - start[owner]
    seconds = np.minimum(horizon.slot_s, leave[owner] - slot * horizon.slot_s)
    phases, max_a = sessions.phase_count[who], sessions.max_a[who]
    kwh_per_a = phases[owner] * compiled.problem.voltage_v * seconds / 3.6e6
    # Energy is counted in units of the most one ampere gives in one slot, so every
    # cost is of order 1 whatever the slot length: HiGHS compares reduced costs with
    # an absolute tolerance, and per-ampere costs of 1e-9 (seconds-long slots) would
    # fall under it and leave the plan to chance.
    unit = float(np.max(kwh_per_a))
    per_a = kwh_per_a / unit
    need = need_wh / _WH_PER_KWH * np.minimum(1.0, span_s / leave) / unit
    prices = _prices(horizon, int(count.max()))
    scale = 1.0 + float(np.max(np.abs(prices), initial=0.0))
    # Lateness is measured against each car's own window, so a car that leaves sooner
    # pays more per slot of delay (earliest departure first among otherwise equal plans).
    lateness = (slot + 1) / count[owner]
    cost_x = (prices[slot] + _SOONER * scale * lateness) * per_a
    cost_s = _SHORTFALL_COST * scale * sessions.weight[who]
    held = _held_a(compiled, who, max_a)
    sticky = np.flatnonzero(held > 0.0)
    cost_d = _STICKY * scale * per_a[start[sticky]]
    width = columns + m + len(sticky)
    energy = csr_array(
        (
            np.concatenate([per_a, np.ones(m)]),
            (np.concatenate([owner, np.arange(m)]), np.arange(columns + m)),
        ),
        shape=(m, width),
    )
    a_ub, b_ub = _stack(
        _limit_rows(compiled, who, count, start, rooms, max_a, width),
        _sticky_rows(start, held, sticky, columns + m, width),
    )
    upper = np.concatenate([max_a[owner], np.full(m + len(sticky), np.inf)])
    result = linprog(
        np.concatenate([cost_x, cost_s, cost_d]),
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=energy,
        b_eq=need,
        bounds=np.stack([np.zeros(width), upper], 1),
        method="highs",
    )
    if result.status != 0:
        return None
    x, short = result.x[:columns], result.x[columns : columns + m]
    later = np.bincount(owner, np.where(slot > 0, x, 0.0), minlength=m) <= _OFF_A
    return Plan(x[start[:-1]], np.maximum(short, 0.0) * unit * _WH_PER_KWH, need_wh, later)


def _held_a(compiled: Compiled, who: IntArray, max_a: FloatArray) -> FloatArray:
    """Per planned session the current it holds now (0 when unknown), at most its maximum."""
    demands = compiled.sessions.demands
    held = np.array([demands[i].held_a or 0.0 for i in who.tolist()], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(held > 0.0, np.minimum(held, max_a), 0.0)


def _sticky_rows(
    start: IntArray, held: FloatArray, sticky: IntArray, first: int, width: int
) -> tuple[csr_array, FloatArray] | None:
    """``x[i, 0] + d_i ≥ held_i`` for each session that holds current: ``d_i`` is the
    decrease from what it holds, paid at ``_STICKY`` (module doc)."""
    if not len(sticky):
        return None
    k = len(sticky)
    rows = np.concatenate([np.arange(k), np.arange(k)])
    cols = np.concatenate([start[sticky], first + np.arange(k)])
    matrix = csr_array((np.full(2 * k, -1.0), (rows, cols)), shape=(k, width))
    return matrix, -held[sticky]


def _stack(
    *blocks: tuple[csr_array, FloatArray] | None,
) -> tuple[csr_array | None, FloatArray | None]:
    given = [b for b in blocks if b is not None]
    if not given:
        return None, None
    return vstack([b[0] for b in given], format="csr"), np.concatenate([b[1] for b in given])


def _limit_rows(
    compiled: Compiled,
    who: IntArray,
    count: IntArray,
    start: IntArray,
    rooms: FloatArray,
    max_a: FloatArray,
    width: int,
) -> tuple[csr_array, FloatArray] | None:
    """The limit rows that the planned sessions at their maximum could break, per slot."""
    pairs = compiled.layout.pairs
    local = np.full(len(compiled.sessions.ids), -1, dtype=np.int64)
    local[who] = np.arange(len(who))
    keep = local[pairs.session] >= 0
    s, c, coef = local[pairs.session[keep]], pairs.constraint[keep], pairs.coef[keep]
    reps = count[s]
    pair = np.repeat(np.arange(len(s)), reps)
    first = np.concatenate([[0], np.cumsum(reps)])[:-1]
    t = np.arange(len(pair)) - np.repeat(first, reps)
    constraints = rooms.shape[1]
    key = t * constraints + c[pair]
    value = coef[pair]
    column = start[s[pair]] + t
    at_max = np.bincount(key, value * max_a[s[pair]], minlength=rooms.size)
    binds = at_max[key] > rooms.ravel()[key]
    if not binds.any():
        return None
    used, row = np.unique(key[binds], return_inverse=True)
    matrix = csr_array((value[binds], (row, column[binds])), shape=(len(used), width))
    return matrix, rooms.ravel()[used]
