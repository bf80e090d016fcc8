"""The allocation problem as index arrays: the shared front end of the numpy policies.

This module owns how a policy reads an :class:`AllocationProblem`:

* **Headroom.** A per-phase current limit leaves ``max_current_a − margin_a −
  base_load_a[p]`` amperes to the sessions below the node on phase ``p``; a
  power limit leaves ``max_power_w / V − 3 × margin_a − Σ base_load_a``
  "phase-amperes" (a session drawing ``x`` A on ``k`` phases uses ``k × x``
  of it). Headroom is never below 0: a node already over its limit by its base
  load alone can only be served by giving the sessions that load it 0 A, which
  is exactly what 0 headroom makes every policy do. A NaN headroom (a NaN
  reading) also counts as 0, the safe side.
* **Constraints.** Node ``j`` owns constraint ids ``4j + 0..2`` (its L1..L3
  current limit) and ``4j + 3`` (its power limit); only limits that exist are
  ever referenced. Ids grow with node order, so the root's come first.
* **What a session may draw.** Its minimum rounded up and its maximum rounded
  down to the 0.1 A step a charger can be told, so that any grid value
  between them respects both. Phases outside 0..2 are a model error
  (ValueError); an empty phase tuple is read as all three phases (unknown
  wiring is assumed to load every phase).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, permutations

import numpy as np
import numpy.typing as npt

from policies.problem import (
    CURRENT_STEP_A,
    PHASES,
    Allocation,
    AllocationProblem,
    ConnectorAllocation,
    LimitNode,
    SessionDemand,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STEPS_PER_A = round(1 / CURRENT_STEP_A)
"""0.1 A steps per ampere: currents are floored to whole steps."""

_GRID_FUZZ = 1e-9
"""In steps (1e-10 A): absorbs float noise so 5.9999999999 A still floors to 6.0 A."""

KINDS = PHASES + 1
"""Constraint kinds per node: L1, L2, L3, power."""

_MIN_WEIGHT, _MAX_WEIGHT = 1e-3, 1e3

RUNNABLE, UNKNOWN_NODE, BAD_LIMITS = 0, 1, 2
"""Session status codes: may run, names an unknown node, its own limits forbid running."""


def floor_to_step(current_a: FloatArray) -> FloatArray:
    """Round down to the 0.1 A grid (floats a hair below a step count as on it)."""
    return np.floor(current_a * STEPS_PER_A + _GRID_FUZZ) / STEPS_PER_A


def ceil_to_step(current_a: FloatArray) -> FloatArray:
    """Round up to the 0.1 A grid (floats a hair above a step count as on it)."""
    return np.ceil(current_a * STEPS_PER_A - _GRID_FUZZ) / STEPS_PER_A


def non_negative(values: FloatArray) -> FloatArray:
    """``values`` with negatives and NaN replaced by 0 (headroom is never below 0)."""
    return np.where(values > 0.0, values, 0.0)


@dataclass(frozen=True, slots=True)
class Tree:
    """The limit tree: ancestors and headroom per node.

    ``ancestors[j]`` lists node ``j`` and every node above it (self first),
    padded with ``-1``; its extra last row is all ``-1`` (the row of an unknown
    node). ``room_a[j, k]`` is the headroom of constraint ``4j + k`` (inf where
    the limit does not exist).
    """

    nodes: tuple[LimitNode, ...]
    index: dict[str, int]
    ancestors: IntArray
    room_a: FloatArray

    def constraint_name(self, constraint: int) -> str:
        """``<node name> L1`` .. ``L3`` or ``<node name> power``."""
        node, kind = divmod(int(constraint), KINDS)
        suffix = "power" if kind == PHASES else f"L{kind + 1}"
        return f"{self.nodes[node].name()} {suffix}"


def _repeated(ids: Sequence[str]) -> str:
    return ", ".join(sorted(key for key, count in Counter(ids).items() if count > 1))


def _parents(problem: AllocationProblem, index: dict[str, int]) -> IntArray:
    """Parent index per node, plus a last entry -1 for the padding row."""
    count = len(problem.nodes)
    parents = np.array(
        [-1 if n.parent is None else index.get(n.parent, count) for n in problem.nodes] + [-1],
        dtype=np.int64,
    )
    late = np.flatnonzero(parents[:count] >= np.arange(count))
    if len(late):
        # Parent-before-child order also rules out cycles.
        node = problem.nodes[int(late[0])]
        raise ValueError(f"node {node.id!r}: parent {node.parent!r} is not listed before it")
    return parents


def _ancestors(parents: IntArray) -> IntArray:
    columns = [np.arange(len(parents), dtype=np.int64)]
    columns[0][-1] = -1
    while True:
        above = parents[columns[-1]]
        above[columns[-1] < 0] = -1
        if not (above >= 0).any():
            return np.stack(columns, axis=1)
        columns.append(above)


def _room(problem: AllocationProblem) -> FloatArray:
    """Headroom per node and constraint kind (module doc), inf where no limit exists."""
    nodes = problem.nodes
    # None becomes NaN in a float array; a NaN limit given on purpose stays a limit.
    values = np.fromiter(
        chain.from_iterable(
            (n.max_current_a, n.max_power_w, n.margin_a, *n.base_load_a) for n in nodes
        ),
        dtype=np.float64,
        count=len(nodes) * 6,
    ).reshape(len(nodes), 6)
    current, power, margin, base = values[:, 0], values[:, 1], values[:, 2], values[:, 3:]
    room = np.full((len(nodes), KINDS), np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        phase_room = non_negative(current[:, None] - margin[:, None] - base)
        power_room = non_negative(power / problem.voltage_v - PHASES * margin - base.sum(axis=1))
    has_current = np.array([n.max_current_a is not None for n in nodes], dtype=np.bool_)
    has_power = np.array([n.max_power_w is not None for n in nodes], dtype=np.bool_)
    room[has_current, :PHASES] = phase_room[has_current]
    room[has_power, PHASES] = power_room[has_power]
    return room


def compile_tree(problem: AllocationProblem) -> Tree:
    """The tree of ``problem`` as arrays; ValueError on duplicate ids, a bad parent or voltage."""
    ids = tuple(n.id for n in problem.nodes)
    index = dict(zip(ids, range(len(ids)), strict=True))
    if len(index) != len(ids):
        raise ValueError(f"nodes listed twice: {_repeated(ids)}")
    if not problem.voltage_v > 0.0 or problem.voltage_v == np.inf:
        raise ValueError(f"voltage_v {problem.voltage_v!r}: must be a positive number")
    return Tree(
        nodes=problem.nodes,
        index=index,
        ancestors=_ancestors(_parents(problem, index)),
        room_a=_room(problem),
    )


_SUBSETS = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
_PHASE_CODE = {
    order: code for code, subset in enumerate(_SUBSETS) for order in permutations(subset)
}
"""Every phase tuple without repeats, by the code of its set; others take the slow path."""

_PHASE_MASK = np.array(
    [[p in subset or not subset for p in range(PHASES)] for subset in _SUBSETS], dtype=np.bool_
)
"""Per code, the site phases loaded; no phases at all counts as all three (module doc)."""


def _phase_codes(sessions: Sequence[SessionDemand]) -> IntArray:
    """Per session, the row of :data:`_PHASE_MASK` that says which site phases it loads."""
    codes = [_PHASE_CODE.get(tuple(s.phases), -1) for s in sessions]
    for i, code in enumerate(codes):
        if code < 0:
            phases = tuple(sessions[i].phases)
            if any(p not in range(PHASES) for p in phases):
                raise ValueError(f"phases {phases!r}: site phases are 0, 1 and 2")
            codes[i] = _PHASE_CODE[tuple(sorted(set(phases)))]
    return np.array(codes, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Sessions:
    """The sessions as arrays, in problem order.

    ``min_a``/``max_a`` are on the 0.1 A grid; ``weight`` is clipped to
    [1e-3, 1e3] (NaN and non-positive weights count as 1e-3: they rise last),
    which keeps the water levels in a range floats resolve well. ``node`` is
    -1 for an unknown node.
    """

    demands: tuple[SessionDemand, ...]
    ids: tuple[str, ...]
    node: IntArray
    phase_mask: BoolArray
    phase_count: FloatArray
    min_a: FloatArray
    max_a: FloatArray
    weight: FloatArray
    status: IntArray


def compile_sessions(problem: AllocationProblem, tree: Tree) -> Sessions:
    """The sessions of ``problem`` as arrays.

    ValueError on a phase outside 0..2 or a connector listed twice (one
    allocation entry could not carry two currents).
    """
    sessions = problem.sessions
    ids = tuple(s.connector_id for s in sessions)
    if len(set(ids)) != len(ids):
        raise ValueError(f"connectors listed in more than one session: {_repeated(ids)}")
    node = np.array([tree.index.get(s.node, -1) for s in sessions], dtype=np.int64)
    mask = _PHASE_MASK[_phase_codes(sessions)].reshape(len(sessions), PHASES)
    low = np.array([s.min_current_a for s in sessions], dtype=np.float64)
    high = np.array([s.max_current_a for s in sessions], dtype=np.float64)
    weight = np.array([s.weight for s in sessions], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        min_a = ceil_to_step(np.where(low > 0.0, low, 0.0))
        max_a = floor_to_step(high)
        weight = np.where(weight > _MIN_WEIGHT, np.minimum(weight, _MAX_WEIGHT), _MIN_WEIGHT)
        good = np.isfinite(max_a) & (max_a >= min_a) & ~np.isnan(low)
    status = np.where(good, RUNNABLE, BAD_LIMITS)
    status[node < 0] = UNKNOWN_NODE
    return Sessions(
        demands=sessions,
        ids=ids,
        node=node,
        phase_mask=mask,
        phase_count=mask.sum(axis=1).astype(np.float64),
        min_a=min_a,
        max_a=np.where(good, max_a, 0.0),
        weight=weight,
        status=status,
    )


@dataclass(frozen=True, slots=True)
class Pairs:
    """Which constraints each session loads, session-major.

    Pair ``k`` says session ``session[k]`` adds ``coef[k]`` × its current to
    constraint ``constraint[k]``: 1 on a phase limit, its phase count on a
    power limit.
    """

    session: IntArray
    constraint: IntArray
    coef: FloatArray


def session_pairs(tree: Tree, sessions: Sessions, chosen: IntArray) -> Pairs:
    """The pairs of the sessions ``chosen`` (their indices; pair sessions index ``chosen``)."""
    anc = tree.ancestors[sessions.node[chosen]]  # (S, D); node -1 gives the padding row
    depth = anc.shape[1]
    kinds = np.arange(KINDS, dtype=np.int64)
    constraint = anc[:, :, None] * KINDS + kinds  # (S, D, 4)
    valid = anc[:, :, None] >= 0
    finite = np.isfinite(tree.room_a.ravel()[np.where(valid, constraint, 0)])
    loads = np.concatenate(
        [sessions.phase_mask[chosen], np.ones((len(chosen), 1), dtype=np.bool_)], axis=1
    )
    flat = np.flatnonzero((valid & finite & loads[:, None, :]).ravel())
    local = flat // (depth * KINDS)
    coef = np.where(flat % KINDS == PHASES, sessions.phase_count[chosen][local], 1.0)
    return Pairs(local, constraint.ravel()[flat], coef)


AT_MAX, PAUSED, UNKNOWN, OWN_LIMITS = -1, -2, -3, -4
"""Reason codes next to constraint ids (which are ≥ 0): why a session got what it got."""

_FIXED_REASONS = {AT_MAX: "session max", OWN_LIMITS: "paused: session max below minimum"}


def paused_reason(weight: float) -> str:
    """Why a session gets 0 A although it could run: ``...priority 1`` (compact weight)."""
    return f"paused: minimum not available, priority {weight:g}"


def allocation(tree: Tree, sessions: Sessions, amps: FloatArray, codes: IntArray) -> Allocation:
    """The answer, in problem order: ``amps`` and a reason from ``codes`` per session."""
    code_list = codes.tolist()
    texts = dict(_FIXED_REASONS)
    texts.update({c: tree.constraint_name(c) for c in set(code_list) if c >= 0})
    texts[PAUSED] = texts[UNKNOWN] = ""
    reasons = list(map(texts.__getitem__, code_list))
    for i in np.flatnonzero(codes <= PAUSED).tolist():
        demand = sessions.demands[i]
        if code_list[i] == PAUSED:
            reasons[i] = paused_reason(demand.weight)
        elif code_list[i] == UNKNOWN:
            reasons[i] = f"paused: unknown node {demand.node}"
    return Allocation(
        {
            key: ConnectorAllocation(key, amp, why)
            for key, amp, why in zip(sessions.ids, amps.tolist(), reasons, strict=True)
        }
    )


def base_codes(sessions: Sessions) -> IntArray:
    """Reason codes for sessions that cannot run whatever the limits (0 for the rest)."""
    codes = np.where(sessions.status == RUNNABLE, 0, OWN_LIMITS)
    codes[sessions.status == UNKNOWN_NODE] = UNKNOWN
    return codes


def id_rank(ids: Sequence[str], chosen: IntArray) -> IntArray:
    """The rank of each chosen session by connector id (plain string order), 0 first."""
    rank = np.empty(len(chosen), dtype=np.int64)
    names = np.array([ids[i] for i in chosen.tolist()], dtype=np.str_)
    rank[np.argsort(names, kind="stable")] = np.arange(len(chosen))
    return rank
