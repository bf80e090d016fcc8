"""The allocation problem as index arrays: the vocabulary of the numpy policies.

This module owns the rules by which a policy reads an :class:`AllocationProblem`
(:mod:`policies.layout` applies them) and how it words its answer:

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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policies.problem import (
    CURRENT_STEP_A,
    PHASES,
    Allocation,
    ConnectorTable,
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


AT_MAX, PAUSED, UNKNOWN, OWN_LIMITS = -1, -2, -3, -4
"""Reason codes next to constraint ids (which are ≥ 0): why a session got what it got."""

TRADED, OPTIMAL_SHARE = -5, -6
"""Reason codes of ``optimal``: paused because its current earns more elsewhere; given
what the optimum gives, with no single limit or maximum to blame."""

_FIXED_REASONS = {
    AT_MAX: "session max",
    OWN_LIMITS: "paused: session max below minimum",
    OPTIMAL_SHARE: "optimal throughput",
}


def paused_reason(weight: float) -> str:
    """Why a session gets 0 A although it could run: ``...priority 1`` (compact weight)."""
    return f"paused: minimum not available, priority {weight:g}"


class _Reasons:
    """Words the reason of row ``i`` from its code when the entry is first read."""

    __slots__ = ("_codes", "_sessions", "_texts", "_tree")

    def __init__(self, tree: Tree, sessions: Sessions, codes: IntArray) -> None:
        self._tree, self._sessions, self._codes = tree, sessions, codes
        self._texts: dict[int, str] = dict(_FIXED_REASONS)

    def __call__(self, row: int) -> str:
        code = int(self._codes[row])
        if code == PAUSED:
            return paused_reason(self._sessions.demands[row].weight)
        if code == TRADED:
            return f"paused: optimal throughput, priority {self._sessions.demands[row].weight:g}"
        if code == UNKNOWN:
            return f"paused: unknown node {self._sessions.demands[row].node}"
        text = self._texts.get(code)
        if text is None:
            text = self._texts[code] = self._tree.constraint_name(code)
        return text


def allocation(tree: Tree, sessions: Sessions, amps: FloatArray, codes: IntArray) -> Allocation:
    """The answer, in problem order: ``amps`` and a reason from ``codes`` per session.

    The entries are stored as columns (:class:`ConnectorTable`); ``codes`` is
    copied, so the caller may reuse its array.
    """
    return Allocation(
        ConnectorTable(sessions.ids, amps.tolist(), _Reasons(tree, sessions, codes.copy()))
    )


def base_codes(sessions: Sessions) -> IntArray:
    """Reason codes for sessions that cannot run whatever the limits (0 for the rest)."""
    codes = np.where(sessions.status == RUNNABLE, 0, OWN_LIMITS)
    codes[sessions.status == UNKNOWN_NODE] = UNKNOWN
    return codes
