"""A fast screen for :func:`policies.verify.violations`: "certainly safe", or "look closer". Pure.

This module owns one question: does an allocation keep invariants (a)–(d) of
:mod:`policies.verify` with room to spare? It answers with numpy in a few
passes, so the control loop can check every answer of a large site. It is
conservative: it says yes only when the wordy check would find nothing, and
says no (so the wordy check runs and words what it finds) for anything
unusual or close to a limit: a duplicate or unknown id, a phase outside
0..2, a parent that is not a node, a cycle, a current that is not finite, not
on the grid, or within a hair of a bound.

Like :mod:`policies.verify` it shares no code with the policies: it reads
the problem's dataclasses itself and sums the loads its own way (each
session's current added to its node, then carried up the parent chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from itertools import permutations

import numpy as np
import numpy.typing as npt

from policies.problem import (
    CURRENT_STEP_A,
    PHASES,
    Allocation,
    AllocationProblem,
    ConnectorTable,
    LimitNode,
    SessionDemand,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SPARE = 1e-9
"""How much closer than the tolerance the screen wants to be: float sums taken in another
order may differ in the last digits, and then the wordy check decides."""

_NO_BASE_LOAD = next(f.default for f in fields(LimitNode) if f.name == "base_load_a")
"""The default base load object: nodes that carry it need no conversion."""

_SETS = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
_SET_OF = {order: k for k, subset in enumerate(_SETS) for order in permutations(subset)}
"""Phase tuples without repeats, by the index of their set in :data:`_SETS`."""

_LOADED = np.array([[p in subset or not subset for p in range(PHASES)] for subset in _SETS], float)
"""Per set, 1 on the site phases it loads (no phases at all: all three)."""


def _currents(allocation: Allocation, ids: Sequence[str]) -> list[float] | None:
    """The allocation's current per session id, in order; None if entries and ids differ."""
    table = allocation.connectors
    if isinstance(table, ConnectorTable) and table.ids == tuple(ids):
        return table.current_list()
    if len(table) != len(ids):
        return None
    try:
        entries = [table[key] for key in ids]
    except KeyError:
        return None
    if any(entry.connector_id != key for entry, key in zip(entries, ids, strict=True)):
        return None
    return [entry.current_a for entry in entries]


def _chains(problem: AllocationProblem) -> tuple[dict[str, int], IntArray] | None:
    """Node index by id and, per node, itself and every node above it (padded with -1).

    None for duplicate ids, a parent that is not a node, or a cycle.
    """
    index = {node.id: i for i, node in enumerate(problem.nodes)}
    if len(index) != len(problem.nodes):
        return None
    parent_ids = [node.parent for node in problem.nodes]
    parent = np.array([-1 if p is None else index.get(p, -2) for p in parent_ids], dtype=np.int64)
    if (parent == -2).any():
        return None
    columns = [np.arange(len(parent), dtype=np.int64)]
    while (columns[-1] >= 0).any():
        if len(columns) > len(parent):
            return None  # a chain longer than the tree: a cycle
        last = columns[-1]
        columns.append(np.where(last >= 0, parent[np.maximum(last, 0)], -1))
    return index, np.stack(columns, axis=1)


def _loads(
    sessions: Sequence[SessionDemand], amps: FloatArray, node: IntArray, nodes: int
) -> FloatArray | None:
    """Per node: the current its own sessions draw on L1, L2, L3 and in phase-amperes."""
    sets = [_SET_OF.get(s.phases, -1) for s in sessions]
    if -1 in sets:
        return None  # a phase outside 0..2, or a repeat: the wordy check reads those
    mask = _LOADED[np.array(sets, dtype=np.int64)].reshape(len(sessions), PHASES)
    # The wordy check leaves negative currents (within tolerance) out of the loads.
    drawn = mask * np.maximum(amps, 0.0)[:, None]
    loads = np.empty((nodes, PHASES + 1))
    for k in range(PHASES):
        loads[:, k] = np.bincount(node, drawn[:, k], minlength=nodes)
    loads[:, PHASES] = np.bincount(node, drawn.sum(axis=1), minlength=nodes)
    return loads


def _room(values: FloatArray) -> FloatArray:
    """Headroom is never below 0; NaN counts as 0."""
    return np.where(values > 0.0, values, 0.0)


def _node_numbers(problem: AllocationProblem) -> tuple[FloatArray, ...]:
    """Per node: current limit (NaN: none), power limit (NaN: none), margin, base load."""
    nodes = problem.nodes
    current = [n.max_current_a for n in nodes]
    power = [n.max_power_w for n in nodes]
    limit_a = np.array(current, dtype=np.float64)  # None: NaN, masked by the caller
    limit_w = np.full(len(nodes), np.nan)
    powered = [i for i, w in enumerate(power) if w is not None]
    if powered:
        limit_w[powered] = [power[i] for i in powered]
    bases = [n.base_load_a for n in nodes]
    base = np.zeros((len(nodes), PHASES))
    loaded = [i for i, b in enumerate(bases) if b is not _NO_BASE_LOAD]
    if loaded:
        base[loaded] = np.array([bases[i] for i in loaded], dtype=np.float64)
    margin = np.array([n.margin_a for n in nodes], dtype=np.float64)
    return limit_a, limit_w, margin, base


def _limits_kept(problem: AllocationProblem, totals: FloatArray, tol: float) -> bool:
    nodes = problem.nodes
    limit_a, limit_w, margin, base = _node_numbers(problem)
    has_a = np.array([n.max_current_a is not None for n in nodes], dtype=np.bool_)
    has_w = np.array([n.max_power_w is not None for n in nodes], dtype=np.bool_)
    volts = problem.voltage_v
    with np.errstate(invalid="ignore"):
        phase_room = _room((limit_a - margin)[:, None] - base)
        power_room = _room(limit_w - margin * volts * PHASES - volts * base.sum(axis=1))
        phase_ok = totals[:, :PHASES] <= phase_room + (tol - _SPARE)
        power_ok = volts * totals[:, PHASES] <= power_room + (tol - _SPARE) * volts
    return bool((phase_ok.all(axis=1) | ~has_a).all() and (power_ok | ~has_w).all())


def certainly_safe(problem: AllocationProblem, allocation: Allocation, tol: float) -> bool:
    """True only if :func:`policies.verify.violations` would find nothing."""
    sessions = problem.sessions
    ids = [s.connector_id for s in sessions]
    currents = _currents(allocation, ids)
    chains = _chains(problem)
    if currents is None or chains is None or len(set(ids)) != len(ids):
        return False
    index, ancestors = chains
    amps = np.array(currents, dtype=np.float64)
    low = np.array([s.min_current_a for s in sessions], dtype=np.float64)
    high = np.array([s.max_current_a for s in sessions], dtype=np.float64)
    node = np.array([index.get(s.node, -1) for s in sessions], dtype=np.int64)
    steps = amps / CURRENT_STEP_A
    with np.errstate(invalid="ignore"):
        on_grid = np.abs(steps - np.round(steps)) <= (tol - _SPARE) / CURRENT_STEP_A
        bounded = (amps >= low - tol + _SPARE) & (amps <= high + tol - _SPARE)
    # Sessions at an unknown node must get exactly 0 A (the wordy check allows tol).
    if not ((amps == 0.0) | (on_grid & bounded & (node >= 0))).all():
        return False
    loads = _loads(sessions, amps, np.maximum(node, 0), len(problem.nodes))
    if loads is None:
        return False
    totals = np.zeros_like(loads)
    for column in ancestors.T:
        below = column >= 0
        for k in range(PHASES + 1):
            totals[:, k] += np.bincount(column[below], loads[below, k], minlength=len(loads))
    return _limits_kept(problem, totals, tol)
