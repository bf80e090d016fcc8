"""The policy ``deadline``: plan the night for cars that must leave charged. Pure.

This module owns the policy for fleet depots. In order:

1. **Peak cap.** With ``horizon.peak_cap_w`` a ``peak cap`` power node is put
   between the root and everything below it (base load = the root's), so the
   cap holds in every slot like any other limit, and explanations name it.
2. **Who is planned.** A session with both a departure and a positive
   energy need (``SessionDemand.departure_s``, ``energy_wh``) is planned;
   the others are *flexible*.
3. **The plan.** The planned sessions' currents over the horizon's slots
   (15 minutes, 24 h by default), least shortfall first (by priority), then
   least cost under the slot prices, then the least taken from what each car
   holds now (``held_a``: no swaps between equal cars), then sooner: an LP
   solved by HiGHS (:mod:`policies.horizon`). Every limit of the tree holds
   on every phase in every slot, with the root's base load as forecast, or
   as measured now.
4. **Slot 0 becomes the setpoint, exactly.** Earliest departure first (among
   equal departures, cars that hold current now before those that do not, so
   a cut never stops a charging car to start a waiting one), each planned
   session gets its planned slot-0 current (raised to its minimum if the plan
   gives it less but more than nothing: charging now is never worse for a car
   that must leave charged), cut to what the limits still leave and floored
   to 0.1 A; if that is below its minimum it gets 0 A. So the
   0-or-at-least-the-minimum rule holds exactly and every limit holds on the
   0.1 A grid. A charging car the plan finishes within slot 0 (nothing planned
   after it) asks for its maximum, not the slot's average: it finishes sooner
   and is cut once, from its current to 0, when its need is met (a stopped car
   is not restarted at its maximum for what is left). Spread over the
   slot, its current came down a step per decision (16, 13, 6, 0 A on
   ``fleet_depot_departures.yaml``), each step a handover to a waiting car
   that the loop has to time against a car still following the step before.
5. **The rest, weighted-fair.** The flexible sessions share what the planned
   ones leave in slot 0 by ``weighted_fair`` (their currents added to the
   base loads of the nodes above them), pausing and rotation included.

Reasons: a planned session's entry says ``deadline plan`` (given what the
plan asks), ``deadline plan: later slot`` (the plan charges it later, e.g.
in a cheaper slot), ``session max``, the tightest limit that one more
0.1 A step would break (the plan's or the setpoint's binding limit), or ``paused:
minimum not available, priority w``; with ``; short X kWh at departure``
appended when the plan cannot give it its need in time. Those sessions are
also listed in ``Allocation.unserved`` (planned sessions that cannot run at
all, e.g. at an unknown node, with their whole need). Flexible sessions carry
``weighted_fair``'s reasons.

Should HiGHS fail (numerical trouble; the LP always has a solution), every
planned session asks for its maximum, earliest departure first.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from policies.horizon import Plan, plan, slot_rooms
from policies.incidence import (
    AT_MAX,
    PAUSED,
    RUNNABLE,
    UNKNOWN,
    BoolArray,
    FloatArray,
    IntArray,
    base_codes,
    floor_to_step,
    paused_reason,
)
from policies.layout import Compiled, compile_problem
from policies.problem import (
    CURRENT_STEP_A,
    PHASES,
    Allocation,
    AllocationProblem,
    ConnectorAllocation,
    LimitNode,
    Unserved,
)
from policies.weighted_fair import weighted_fair

PLANNED, LATER = -20, -21
"""Reason codes: given what the plan asks in slot 0; the plan charges it in later slots."""

_OFF_A = 1e-6
"""A planned current this small is 0."""

_SHORT_WH = 1.0
"""A shortfall under 1 Wh is solver noise, not a car that leaves short."""


def with_peak_cap(problem: AllocationProblem) -> AllocationProblem:
    """``problem`` with a ``peak cap`` power node under its root, when a cap is set."""
    cap_w = problem.horizon.peak_cap_w
    if cap_w is None or not problem.nodes:
        return problem
    root = problem.nodes[0]
    peak = LimitNode(
        f"{root.id}/peak",
        root.id,
        max_power_w=cap_w,
        margin_a=root.margin_a,
        base_load_a=root.base_load_a,
        label="peak cap",
    )
    nodes = [root, peak] + [
        replace(n, parent=peak.id) if n.parent == root.id else n for n in problem.nodes[1:]
    ]
    sessions = [replace(s, node=peak.id) if s.node == root.id else s for s in problem.sessions]
    return replace(problem, nodes=tuple(nodes), sessions=tuple(sessions))


def _planned(problem: AllocationProblem) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Departure and need per session (NaN when absent), and who has both and a need > 0."""
    dep = np.array([s.departure_s for s in problem.sessions], dtype=np.float64)
    need = np.array([s.energy_wh for s in problem.sessions], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        has = ~np.isnan(dep) & (need > 0.0)
    return dep, need, has


def _edf_order(
    compiled: Compiled, who: IntArray, departure_s: FloatArray, first_a: FloatArray
) -> IntArray:
    """Positions into ``who``: earliest departure first, then those that hold current now
    (so a cut falls on a car that is not charging, not on one that is: no swap), then the
    larger planned current."""
    demands = compiled.sessions.demands
    holding = np.array([(demands[i].held_a or 0.0) > 0.0 for i in who.tolist()], dtype=bool)
    return np.lexsort((-first_a, ~holding, departure_s[who]))


def _first_slot(
    compiled: Compiled, who: IntArray, departure_s: FloatArray, solved: Plan
) -> tuple[FloatArray, IntArray]:
    """Slot-0 currents and reason codes of the planned sessions (module doc, step 4)."""
    sessions, pairs = compiled.sessions, compiled.layout.pairs
    first_a, last_slot = solved.first_a, solved.last_slot
    room = compiled.tree.room_a.ravel()
    load = np.zeros(len(room))
    bounds = np.searchsorted(pairs.session, np.arange(len(sessions.ids) + 1))
    amps, codes = np.zeros(len(who)), np.full(len(who), PLANNED, dtype=np.int64)
    for k in _edf_order(compiled, who, departure_s, first_a):
        i = int(who[k])
        lo_a, hi_a = sessions.min_a[i], sessions.max_a[i]
        if first_a[k] <= _OFF_A:
            codes[k] = LATER
            continue
        charging = (sessions.demands[i].held_a or 0.0) > 0.0
        wanted = hi_a if last_slot[k] and charging else min(max(first_a[k], lo_a), hi_a)
        c = pairs.constraint[bounds[i] : bounds[i + 1]]
        coef = pairs.coef[bounds[i] : bounds[i + 1]]
        free = (room[c] - load[c]) / coef if len(c) else np.array([np.inf])
        tight = int(np.argmin(free))
        amount = float(floor_to_step(np.array([min(wanted, free[tight])]))[0])
        if amount < lo_a:
            codes[k] = PAUSED
            continue
        amps[k] = amount
        load[c] += coef * amount
        if amount >= hi_a:
            codes[k] = AT_MAX
        elif free[tight] < amount + CURRENT_STEP_A:  # one more step would break this limit
            codes[k] = int(c[tight])
    return amps, codes


def _remainder(
    compiled: Compiled, who: IntArray, amps: FloatArray, flexible: IntArray
) -> AllocationProblem:
    """The flexible sessions, with the planned sessions' slot-0 currents in the base loads."""
    problem, sessions, tree = compiled.problem, compiled.sessions, compiled.tree
    added = np.zeros((len(problem.nodes), PHASES))
    for k in np.flatnonzero(amps > 0.0):
        i = int(who[k])
        above = tree.ancestors[sessions.node[i]]
        for node in above[above >= 0]:
            added[node] += amps[k] * sessions.phase_mask[i]
    nodes = tuple(
        replace(n, base_load_a=tuple(np.add(n.base_load_a, added[j]).tolist()))
        if added[j].any()
        else n
        for j, n in enumerate(problem.nodes)
    )
    rest = tuple(problem.sessions[int(i)] for i in flexible)
    return replace(problem, nodes=nodes, sessions=rest)


def _reason(compiled: Compiled, code: int, weight: float) -> str:
    if code == PLANNED:
        return "deadline plan"
    if code == LATER:
        return "deadline plan: later slot"
    if code == AT_MAX:
        return "session max"
    if code == PAUSED:
        return paused_reason(weight)
    return compiled.tree.constraint_name(code)


def _fallback(compiled: Compiled, who: IntArray, need_wh: FloatArray) -> Plan:
    """Every planned session at its maximum; nothing known about shortfalls."""
    max_a = compiled.sessions.max_a[who]
    return Plan(max_a, np.zeros(len(who)), need_wh[who], np.zeros(len(who), dtype=bool))


def deadline(problem: AllocationProblem) -> Allocation:
    """The horizon plan's first slot for the planned sessions, weighted-fair for the rest.

    ValueError if the problem itself is malformed (see :mod:`policies.layout`).
    """
    problem = with_peak_cap(problem)
    departure, need, has = _planned(problem)
    if not has.any():
        return Allocation(weighted_fair(problem).connectors)
    compiled = compile_problem(problem)
    runnable = compiled.sessions.status == RUNNABLE
    who = np.flatnonzero(has & runnable)
    forecast = [0, 1] if problem.horizon.peak_cap_w is not None else [0]
    solved = None
    if len(who):
        rooms = slot_rooms(compiled, forecast, _slots_needed(problem, departure[who]))
        solved = plan(compiled, who, rooms, departure[who], need[who])
    solved = solved or _fallback(compiled, who, need)
    amps, codes = _first_slot(compiled, who, departure, solved)
    rest = weighted_fair(_remainder(compiled, who, amps, np.flatnonzero(~has)))
    return _answer(compiled, who, amps, codes, solved, rest, has)


def _slots_needed(problem: AllocationProblem, departure_s: FloatArray) -> int:
    """Slots up to the last departure (at least 1, at most the horizon)."""
    horizon = problem.horizon
    last = float(np.max(departure_s))
    return int(min(max(horizon.slots, 1), max(np.ceil(last / horizon.slot_s - 1e-9), 1)))


def _answer(
    compiled: Compiled,
    who: IntArray,
    amps: FloatArray,
    codes: IntArray,
    solved: Plan,
    rest: Allocation,
    has: BoolArray,
) -> Allocation:
    sessions = compiled.sessions
    entries: dict[str, ConnectorAllocation] = dict(rest.connectors)
    unserved: list[Unserved] = []
    for k, i in enumerate(who.tolist()):
        key, demand = sessions.ids[i], sessions.demands[i]
        text = _reason(compiled, int(codes[k]), demand.weight)
        short = float(solved.short_wh[k])
        if short >= _SHORT_WH:
            text += f"; short {short / 1000:.1f} kWh at departure"
            unserved.append(Unserved(key, short, float(solved.need_wh[k]), demand.departure_s or 0))
        entries[key] = ConnectorAllocation(key, float(amps[k]), text)
    blocked = np.flatnonzero(has & (sessions.status != RUNNABLE))
    for i, code in zip(blocked.tolist(), base_codes(sessions)[blocked].tolist(), strict=True):
        demand = sessions.demands[i]
        text = _blocked_reason(demand.node, code)
        entries[demand.connector_id] = ConnectorAllocation(demand.connector_id, 0.0, text)
        need_wh = float(demand.energy_wh or 0.0)
        unserved.append(Unserved(demand.connector_id, need_wh, need_wh, demand.departure_s or 0))
    ordered = {s.connector_id: entries[s.connector_id] for s in sessions.demands}
    return Allocation(ordered, tuple(unserved))


def _blocked_reason(node: str, code: int) -> str:
    if code == UNKNOWN:
        return f"paused: unknown node {node}"
    return "paused: session max below minimum"
