"""Reading an :class:`AllocationProblem` into arrays, with its structure compiled once.

This module owns the split between what a control loop changes every tick and
what it does not:

* **Structure**: node ids and parents, which nodes have a current or power
  limit, and each session's connector id, node and phases. Compiling it
  (ancestors, which limits each session loads) is the costly part, so the
  result is kept in a small cache and reused while the structure is the same.
* **Numbers**: limit values, margins and base loads; each session's minimum,
  maximum and weight. They are read on every call.

A cache hit is decided by comparing the structure read from the problem with
the one compiled, field by field, never by object identity: a caller may build
fresh objects every tick. Reading one field of every node and session is the
floor of the cost of a call (a list comprehension over the dataclasses).

The headroom and rounding rules are those of :mod:`policies.incidence`.
Malformed problems raise ValueError: duplicate node or connector ids, a
parent not listed before its child, a phase outside 0..2, a voltage that is
not a positive number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from itertools import permutations

import numpy as np

from policies.incidence import (
    BAD_LIMITS,
    KINDS,
    RUNNABLE,
    UNKNOWN_NODE,
    BoolArray,
    FloatArray,
    IntArray,
    Pairs,
    Sessions,
    Tree,
    ceil_to_step,
    floor_to_step,
    non_negative,
)
from policies.problem import PHASES, AllocationProblem, LimitNode

_CACHE_SIZE = 64
"""Structures kept, the least recently used dropped first: one per site a process serves
(a 5,000-connector layout takes about 2 MB, a 100-connector one about 50 kB)."""

_MIN_WEIGHT, _MAX_WEIGHT = 1e-3, 1e3
_DEFAULT_BASE = next(f.default for f in fields(LimitNode) if f.name == "base_load_a")
"""The default base load object: nodes that carry it need no conversion."""

_SUBSETS = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
_PHASE_CODE = {
    order: code for code, subset in enumerate(_SUBSETS) for order in permutations(subset)
}
"""Every phase tuple without repeats, by the code of its set; others take the slow path."""

_PHASE_MASK = np.array(
    [[p in subset or not subset for p in range(PHASES)] for subset in _SUBSETS], dtype=np.bool_
)
"""Per code, the site phases loaded; no phases at all counts as all three (unknown wiring)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The compiled structure of a problem, and the structure it was compiled from.

    ``pairs`` lists, for every session at a known node, every existing limit it
    loads (see :class:`policies.incidence.Pairs`). ``warm`` keeps what the
    policies may reuse on the next call with this structure, ``tree_warm``
    what they may reuse on any call with the same tree (shared by every
    layout of that tree); both are hints, answers never depend on them.
    """

    parents: list[str | None]
    has_current: list[bool]
    has_power: list[bool]
    session_nodes: list[str]
    session_phases: list[tuple[int, ...]]
    index: dict[str, int]
    ancestors: IntArray
    exists: BoolArray
    power_rows: list[int]
    ids: tuple[str, ...]
    node: IntArray
    phase_mask: BoolArray
    phase_code: IntArray
    phase_count: FloatArray
    pairs: Pairs
    tree_warm: dict[str, object]
    warm: dict[str, object] = field(default_factory=dict)

    def id_rank(self) -> IntArray:
        """The rank of each session by connector id (plain string order), 0 first.

        Computed on first use (only pausing needs it) and kept.
        """
        rank = self.warm.get("id_rank")
        if not isinstance(rank, np.ndarray):
            rank = np.empty(len(self.ids), dtype=np.int64)
            rank[np.argsort(np.array(self.ids, dtype=np.str_), kind="stable")] = np.arange(
                len(self.ids)
            )
            self.warm["id_rank"] = rank
        return rank


@dataclass(frozen=True, slots=True)
class Compiled:
    """A problem as arrays: the problem, its layout, its tree with headroom, its sessions."""

    problem: AllocationProblem
    layout: Layout
    tree: Tree
    sessions: Sessions


_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], Layout] = {}


def _repeated(ids: Sequence[str]) -> str:
    return ", ".join(sorted(key for key, count in Counter(ids).items() if count > 1))


def _ancestors(parents: IntArray) -> IntArray:
    """Per node, itself and every node above it, padded with -1; one extra all -1 row."""
    columns = [np.arange(len(parents), dtype=np.int64)]
    columns[0][-1] = -1
    while True:
        above = parents[columns[-1]]
        above[columns[-1] < 0] = -1
        if not (above >= 0).any():
            return np.stack(columns, axis=1)
        columns.append(above)


def _tree_index(
    node_ids: tuple[str, ...], parents: list[str | None]
) -> tuple[dict[str, int], IntArray]:
    """Node index by id and the ancestors matrix; ValueError on a duplicate or late parent."""
    index = {key: i for i, key in enumerate(node_ids)}
    if len(index) != len(node_ids):
        raise ValueError(f"nodes listed twice: {_repeated(node_ids)}")
    count = len(node_ids)
    up = np.array([-1 if p is None else index.get(p, count) for p in parents] + [-1], np.int64)
    late = np.flatnonzero(up[:count] >= np.arange(count))
    if len(late):
        # Parent-before-child order also rules out cycles.
        first = int(late[0])
        raise ValueError(
            f"node {node_ids[first]!r}: parent {parents[first]!r} is not listed before it"
        )
    return index, _ancestors(up)


def _phase_codes(phases: list[tuple[int, ...]]) -> IntArray:
    """Per session, the row of :data:`_PHASE_MASK` that says which site phases it loads."""
    codes = [_PHASE_CODE.get(tuple(p), -1) for p in phases]
    for i, code in enumerate(codes):
        if code < 0:
            given = tuple(phases[i])
            if any(p not in range(PHASES) for p in given):
                raise ValueError(f"phases {given!r}: site phases are 0, 1 and 2")
            codes[i] = _PHASE_CODE[tuple(sorted(set(given)))]
    return np.array(codes, dtype=np.int64)


def _pairs(ancestors: IntArray, exists: BoolArray, node: IntArray, mask: BoolArray) -> Pairs:
    """Every existing limit each session loads: its phases' current limits and every power limit."""
    anc = ancestors[node]  # (S, D); node -1 gives the padding row
    depth = anc.shape[1]
    constraint = anc[:, :, None] * KINDS + np.arange(KINDS, dtype=np.int64)  # (S, D, 4)
    valid = anc[:, :, None] >= 0
    present = exists[np.where(valid, constraint, 0)] & valid
    loads = np.concatenate([mask, np.ones((len(node), 1), dtype=np.bool_)], axis=1)
    flat = np.flatnonzero((present & loads[:, None, :]).ravel())
    session = flat // (depth * KINDS)
    count = mask.sum(axis=1).astype(np.float64)
    coef = np.where(flat % KINDS == PHASES, count[session], 1.0)
    return Pairs(session, constraint.ravel()[flat], coef)


_TREE_WARM: dict[tuple[tuple[object, ...], ...], dict[str, object]] = {}


def _tree_warm(tree: tuple[tuple[object, ...], ...]) -> dict[str, object]:
    """The hints shared by every layout of one tree (node ids, parents, which limits exist)."""
    memo = _TREE_WARM.get(tree)
    if memo is None:
        while len(_TREE_WARM) >= _CACHE_SIZE:
            del _TREE_WARM[next(iter(_TREE_WARM))]
        memo = _TREE_WARM[tree] = {}
    return memo


def _compile(
    node_ids: tuple[str, ...],
    structure: tuple[list[str | None], list[bool], list[bool], list[str], list[tuple[int, ...]]],
    ids: tuple[str, ...],
) -> Layout:
    parents, has_current, has_power, session_nodes, session_phases = structure
    if len(set(ids)) != len(ids):
        raise ValueError(f"connectors listed in more than one session: {_repeated(ids)}")
    index, ancestors = _tree_index(node_ids, parents)
    node = np.array([index.get(n, -1) for n in session_nodes], dtype=np.int64)
    codes = _phase_codes(session_phases)
    mask = _PHASE_MASK[codes].reshape(len(ids), PHASES)
    exists = np.zeros((len(node_ids), KINDS), dtype=np.bool_)
    exists[:, :PHASES] = np.array(has_current, dtype=np.bool_).reshape(-1, 1)
    exists[:, PHASES] = has_power
    return Layout(
        *structure,
        index=index,
        ancestors=ancestors,
        exists=exists,
        power_rows=[i for i, has in enumerate(has_power) if has],
        ids=ids,
        node=node,
        phase_mask=mask,
        phase_code=codes,
        phase_count=mask.sum(axis=1).astype(np.float64),
        pairs=_pairs(ancestors, exists.ravel(), node, mask),
        tree_warm=_tree_warm((node_ids, tuple(parents), tuple(has_current), tuple(has_power))),
    )


def _layout(
    problem: AllocationProblem, current: list[float | None], power: list[float | None]
) -> Layout:
    """The layout of ``problem``, from the cache when its structure is unchanged."""
    nodes, sessions = problem.nodes, problem.sessions
    node_ids = tuple([n.id for n in nodes])
    ids = tuple([s.connector_id for s in sessions])
    structure = (
        [n.parent for n in nodes],
        [c is not None for c in current],
        [p is not None for p in power],
        [s.node for s in sessions],
        [s.phases for s in sessions],
    )
    key = (node_ids, ids)
    layout = _CACHE.get(key)
    if layout is not None and structure == (
        layout.parents,
        layout.has_current,
        layout.has_power,
        layout.session_nodes,
        layout.session_phases,
    ):
        _CACHE[key] = _CACHE.pop(key)  # now the most recently used
        return layout
    layout = _compile(node_ids, structure, ids)
    _CACHE.pop(key, None)
    while len(_CACHE) >= _CACHE_SIZE:
        del _CACHE[next(iter(_CACHE))]  # the least recently used
    _CACHE[key] = layout
    return layout


def _room(
    problem: AllocationProblem,
    current: list[float | None],
    power: list[float | None],
    layout: Layout,
) -> FloatArray:
    """Headroom per node and limit kind (L1, L2, L3, power); inf where no limit exists."""
    nodes = problem.nodes
    count = len(nodes)
    bases = [n.base_load_a for n in nodes]
    base = np.zeros((count, PHASES))
    # Most nodes (chargers) carry the default: only the others need converting.
    loaded = [i for i, b in enumerate(bases) if b is not _DEFAULT_BASE]
    if loaded:
        base[loaded] = np.array([bases[i] for i in loaded], dtype=np.float64)
    limit_a = np.array(current, dtype=np.float64)  # None becomes NaN; masked below
    limit_w = np.full(count, np.nan)
    if layout.power_rows:
        limit_w[layout.power_rows] = [power[i] for i in layout.power_rows]
    margin = np.array([n.margin_a for n in nodes], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        phase_room = non_negative(limit_a[:, None] - margin[:, None] - base)
        power_room = non_negative(limit_w / problem.voltage_v - PHASES * margin - base.sum(axis=1))
    room = np.concatenate([phase_room, power_room[:, None]], axis=1)
    return np.where(layout.exists, room, np.inf)


def _sessions(problem: AllocationProblem, layout: Layout) -> Sessions:
    """The sessions' numbers on the 0.1 A grid, with their status (see :class:`Sessions`)."""
    sessions = problem.sessions
    low = np.array([s.min_current_a for s in sessions], dtype=np.float64)
    high = np.array([s.max_current_a for s in sessions], dtype=np.float64)
    weight = np.array([s.weight for s in sessions], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        min_a = ceil_to_step(np.where(low > 0.0, low, 0.0))
        max_a = floor_to_step(high)
        weight = np.where(weight > _MIN_WEIGHT, np.minimum(weight, _MAX_WEIGHT), _MIN_WEIGHT)
        good = np.isfinite(max_a) & (max_a >= min_a) & ~np.isnan(low)
    status = np.where(good, RUNNABLE, BAD_LIMITS)
    status[layout.node < 0] = UNKNOWN_NODE
    return Sessions(
        demands=sessions,
        ids=layout.ids,
        node=layout.node,
        phase_mask=layout.phase_mask,
        phase_count=layout.phase_count,
        min_a=min_a,
        max_a=np.where(good, max_a, 0.0),
        weight=weight,
        status=status,
    )


def compile_problem(problem: AllocationProblem) -> Compiled:
    """``problem`` as arrays; ValueError if it is malformed (module doc)."""
    voltage_v = problem.voltage_v
    if not voltage_v > 0.0 or voltage_v == np.inf:
        raise ValueError(f"voltage_v {voltage_v!r}: must be a positive number")
    current = [n.max_current_a for n in problem.nodes]
    power = [n.max_power_w for n in problem.nodes]
    layout = _layout(problem, current, power)
    tree = Tree(
        problem.nodes, layout.index, layout.ancestors, _room(problem, current, power, layout)
    )
    return Compiled(problem, layout, tree, _sessions(problem, layout))


def clear_cache() -> None:
    """Forget every compiled layout and hint (tests and benchmarks measure cold solves)."""
    _CACHE.clear()
    _TREE_WARM.clear()
