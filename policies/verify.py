"""The safety invariants, checked: an allocation against its problem. Pure.

This module owns the definition of a safe answer that every policy must give
(invariants 1 and 2 of docs/architecture.md) and says in words each way an
answer breaks it. It shares no code with the policies on purpose: it is the
independent check of their arithmetic, written to be read, not to be fast
(a vectorised screen, as independent, clears the usual safe answer first).

(a) Phase current. For every node with ``max_current_a`` and every site phase
    ``p``: ``base_load_a[p]`` + the currents of the sessions below the node
    that draw on ``p`` ≤ ``max_current_a − margin_a``.
(b) Power. For every node with ``max_power_w``: ``V × (Σ_p base_load_a[p] +
    Σ current × phase count)`` ≤ ``max_power_w − margin_a × V × 3``.
(c) Every session gets 0 A or at least its minimum, and at most its maximum.
(d) Every session has one entry, keyed by its connector id; no entry names
    an unknown connector; every current is finite, not negative and a
    multiple of 0.1 A.

"Below a node" includes the node itself; a node's ``base_load_a`` already
counts every non-controllable load under it, so the base loads of its
children are not added again.

Rule for a limit already broken by base load alone: no allocation can repair
it, and the only safe answer gives 0 A to every session that adds to it (on a
phase limit the sessions below drawing on that phase, on a power limit every
session below). Such a limit counts as kept when those sessions get 0 A. In
one formula for every limit: the sessions' share ≤ max(0, limit − margin −
base load); a NaN base load leaves them 0.

A session at an unknown node cannot be checked against any limit, so it must
get 0 A. A session with no phases counts as drawing on all three (the
policies assume the same). ``tolerance_a`` absorbs float noise (on power,
``tolerance_a × voltage``); it is not headroom.
"""

from __future__ import annotations

import math

from policies.problem import (
    CURRENT_STEP_A,
    PHASES,
    Allocation,
    AllocationProblem,
    LimitNode,
    SessionDemand,
)
from policies.screen import certainly_safe

Loads = dict[str, list[float]]
"""Per node id: the sessions' current on L1, L2, L3 and their phase-amperes (for power)."""


def _amps(value: float) -> str:
    return f"{value:.6g} A"


def _room(value: float) -> float:
    """Headroom is never below 0; NaN counts as 0 (``nan > 0`` is false)."""
    return value if value > 0.0 else 0.0


_LOADED: dict[tuple[int, ...], tuple[int, ...]] = {}
"""Phase tuples seen so far and the site phases they load (a memo of :func:`_loaded`)."""


def _loaded(phases: tuple[int, ...]) -> tuple[int, ...] | None:
    """The site phases a session loads; None if it names a phase outside 0..2."""
    known = _LOADED.get(phases)
    if known is None:
        if any(p not in range(PHASES) for p in phases):
            return None
        # No phases at all counts as all three, as in the policies (unknown wiring).
        known = tuple(sorted(set(phases))) if phases else (0, 1, 2)
        if len(phases) <= PHASES:  # keeps the memo small whatever the input
            _LOADED[phases] = known
    return known


def _chains(problem: AllocationProblem, found: list[str]) -> dict[str, list[str]]:
    """Per node id: the node and every node above it; tree faults go to ``found``."""
    parents: dict[str, str | None] = {}
    for node in problem.nodes:
        if node.id in parents:
            found.append(f"node {node.id}: listed twice")
        parents[node.id] = node.parent
    chains: dict[str, list[str]] = {}
    for node_id in parents:
        chain = [node_id]
        parent = parents[node_id]
        while parent is not None:
            if parent not in parents:
                found.append(f"node {chain[-1]}: parent {parent} is not a node of the problem")
                break
            if parent in chain:
                found.append(f"node {node_id}: its parents form a cycle")
                break
            chain.append(parent)
            parent = parents[parent]
        chains[node_id] = chain
    return chains


def _entries(problem: AllocationProblem, allocation: Allocation, tol: float) -> list[str]:
    """Invariants (c) and (d)."""
    found: list[str] = []
    known: set[str] = set()
    step_tol = tol / CURRENT_STEP_A
    for session in problem.sessions:
        key = session.connector_id
        if key in known:
            found.append(f"connector {key}: listed in more than one session")
        known.add(key)
        entry = allocation.connectors.get(key)
        if entry is None:
            found.append(f"connector {key}: no entry in the allocation")
            continue
        current_a = entry.current_a
        steps = current_a / CURRENT_STEP_A
        # Fast path for the usual answer; the slow one words each fault.
        if current_a == 0.0 or (
            session.min_current_a - tol <= current_a <= session.max_current_a + tol
            and abs(steps - round(steps)) <= step_tol
            and session.phases in _LOADED
        ):
            continue
        found += _current_faults(session, current_a, tol)
    for key, entry in allocation.connectors.items():
        if key not in known:
            found.append(f"entry {key}: names no session of the problem")
        if entry.connector_id != key:
            found.append(f"entry {key}: carries connector id {entry.connector_id}")
    return found


def _current_faults(session: SessionDemand, current_a: float, tol: float) -> list[str]:
    key = session.connector_id
    if not math.isfinite(current_a) or current_a < -tol:
        return [f"connector {key}: {current_a!r} A is not a finite current ≥ 0"]
    found: list[str] = []
    steps = current_a / CURRENT_STEP_A
    if abs(steps - round(steps)) * CURRENT_STEP_A > tol:
        found.append(f"connector {key}: {_amps(current_a)} is not a multiple of 0.1 A")
    if current_a > tol and current_a < session.min_current_a - tol:
        found.append(
            f"connector {key}: {_amps(current_a)} is above 0 but below its minimum "
            f"{_amps(session.min_current_a)}"
        )
    if not current_a <= session.max_current_a + tol and current_a > tol:
        found.append(
            f"connector {key}: {_amps(current_a)} exceeds its maximum "
            f"{_amps(session.max_current_a)}"
        )
    if _loaded(session.phases) is None and current_a > tol:
        found.append(f"connector {key}: draws {_amps(current_a)} on phases {session.phases}")
    return found


def _session_loads(
    problem: AllocationProblem,
    allocation: Allocation,
    chains: dict[str, list[str]],
    found: list[str],
    tol: float,
) -> Loads:
    """What the sessions add to each node (themselves included in their node's subtree)."""
    direct: Loads = {}
    for session in problem.sessions:
        current_a = allocation.current_a(session.connector_id)
        if not current_a > 0.0 or current_a == math.inf:
            continue  # NaN, inf and negatives are reported by _entries
        if session.node not in chains:
            if current_a > tol:
                found.append(
                    f"connector {session.connector_id}: {_amps(current_a)} at unknown node "
                    f"{session.node}, where no limit can be checked"
                )
            continue
        phases = _loaded(session.phases) or ()
        row = direct.setdefault(session.node, [0.0] * (PHASES + 1))
        for p in phases:
            row[p] += current_a
        row[PHASES] += current_a * len(phases)
    totals: Loads = {node_id: [0.0] * (PHASES + 1) for node_id in chains}
    for node_id, row in direct.items():
        for above in chains[node_id]:
            total = totals[above]
            for k in range(PHASES + 1):
                total[k] += row[k]
    return totals


def _phase_faults(node: LimitNode, load: list[float], tol: float) -> list[str]:
    """Invariant (a) on one node."""
    if node.max_current_a is None:
        return []
    allowed = node.max_current_a - node.margin_a
    found: list[str] = []
    for p in range(PHASES):
        base, sessions = node.base_load_a[p], load[p]
        if sessions <= _room(allowed - base) + tol:
            continue
        where = f"{node.name()} L{p + 1}"
        limit = (
            f"{_amps(allowed)} (limit {_amps(node.max_current_a)} − margin {_amps(node.margin_a)})"
        )
        if not base <= allowed:
            found.append(
                f"{where}: base load {_amps(base)} alone exceeds {limit}, so the sessions "
                f"below on L{p + 1} must get 0 A, but they get {_amps(sessions)}"
            )
        else:
            found.append(
                f"{where}: base load {_amps(base)} + sessions {_amps(sessions)} = "
                f"{_amps(base + sessions)} exceeds {limit}"
            )
    return found


def _power_faults(node: LimitNode, load: list[float], voltage_v: float, tol: float) -> list[str]:
    """Invariant (b) on one node."""
    if node.max_power_w is None:
        return []
    allowed_w = node.max_power_w - node.margin_a * voltage_v * PHASES
    base_w = voltage_v * sum(node.base_load_a)
    sessions_w = voltage_v * load[PHASES]
    if sessions_w <= _room(allowed_w - base_w) + tol * voltage_v:
        return []
    limit = (
        f"{allowed_w:.6g} W (limit {node.max_power_w:.6g} W − margin "
        f"{_amps(node.margin_a)} × {voltage_v:g} V × 3)"
    )
    if not base_w <= allowed_w:
        return [
            f"{node.name()} power: base load {base_w:.6g} W alone exceeds {limit}, so the "
            f"sessions below must get 0 A, but they draw {sessions_w:.6g} W"
        ]
    return [
        f"{node.name()} power: base load {base_w:.6g} W + sessions {sessions_w:.6g} W = "
        f"{base_w + sessions_w:.6g} W exceeds {limit}"
    ]


def violations(
    problem: AllocationProblem, allocation: Allocation, tolerance_a: float = 1e-6
) -> list[str]:
    """Every broken invariant of ``allocation`` as a sentence; empty when it is safe.

    A vectorised screen (:mod:`policies.screen`) answers first; only an answer it
    cannot clear with room to spare is checked and worded here.
    """
    if certainly_safe(problem, allocation, tolerance_a):
        return []
    return worded_violations(problem, allocation, tolerance_a)


def worded_violations(
    problem: AllocationProblem, allocation: Allocation, tolerance_a: float = 1e-6
) -> list[str]:
    """:func:`violations` without the screen: each session and node checked and worded."""
    found: list[str] = []
    chains = _chains(problem, found)
    found += _entries(problem, allocation, tolerance_a)
    loads = _session_loads(problem, allocation, chains, found, tolerance_a)
    for node in problem.nodes:
        found += _phase_faults(node, loads[node.id], tolerance_a)
        found += _power_faults(node, loads[node.id], problem.voltage_v, tolerance_a)
    return found


def node_headroom_a(
    problem: AllocationProblem, allocation: Allocation
) -> dict[str, tuple[float, float, float]]:
    """Per node, the current still free on L1, L2, L3 under its current limit.

    ``max_current_a − margin_a − base_load_a[p] − sessions on p``; negative
    where the limit is broken, ``inf`` where the node has no current limit.
    """
    chains = _chains(problem, [])
    loads = _session_loads(problem, allocation, chains, [], math.inf)
    free: dict[str, tuple[float, float, float]] = {}
    for node in problem.nodes:
        if node.max_current_a is None:
            free[node.id] = (math.inf, math.inf, math.inf)
            continue
        allowed = node.max_current_a - node.margin_a
        load = loads[node.id]
        free[node.id] = (
            allowed - node.base_load_a[0] - load[0],
            allowed - node.base_load_a[1] - load[1],
            allowed - node.base_load_a[2] - load[2],
        )
    return free
