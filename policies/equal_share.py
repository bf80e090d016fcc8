"""The baseline: one equal current for every session, as chargers' own load balancing gives. Pure.

This module owns the policy ``equal_share``, the yardstick the smarter
policies are measured against. It copies the naive "worst phase" approach of
built-in load balancing: every session counts as drawing on all three
phases, so a node offers the sessions below it one current, its headroom on
its most loaded phase (or a third of its power headroom, if less).

Every running session gets the same current ``c``, capped at its own
maximum: the largest multiple of 0.1 A at which ``Σ min(c, max_i)`` over the
sessions below fits every node. If ``c`` would fall below a running
session's minimum, sessions are paused in a fixed order, the last connector
id (plain string order) first, until it does not. Sessions that cannot run
whatever the others do (maximum below minimum, minimum alone above a node's
headroom, unknown node) get 0 A first, so they cost no one else a place.

Reasons: ``session max`` for a session held by its own maximum, else the one
limit that stopped the common current (``<node> L2``, ``<node> power``).
"""

from __future__ import annotations

import numpy as np

from policies.incidence import (
    AT_MAX,
    PAUSED,
    RUNNABLE,
    BoolArray,
    IntArray,
    Sessions,
    Tree,
    allocation,
    base_codes,
)
from policies.layout import compile_problem
from policies.problem import PHASES, Allocation, AllocationProblem

_FIT_NOISE_A = 1e-9
"""Float noise tolerated when a sum of 0.1 A steps meets a headroom."""


class _Shares:
    """The chosen sessions below each node, and the test "does a common level fit"."""

    def __init__(self, tree: Tree, sessions: Sessions, chosen: IntArray) -> None:
        self.room = np.minimum(tree.room_a[:, :PHASES].min(axis=1), tree.room_a[:, PHASES] / 3)
        anc = tree.ancestors[sessions.node[chosen]]
        limited = (anc >= 0) & np.isfinite(self.room[anc])
        flat = np.flatnonzero(limited.ravel())
        self.session = flat // anc.shape[1]
        self.node = anc.ravel()[flat]
        self.min_steps = np.rint(sessions.min_a[chosen] * 10).astype(np.int64)
        self.max_steps = np.rint(sessions.max_a[chosen] * 10).astype(np.int64)

    def alone_too_big(self) -> BoolArray:
        """Sessions whose minimum alone exceeds the headroom of a node above them."""
        too_big = np.zeros(len(self.min_steps), dtype=np.bool_)
        over = self.min_steps[self.session] / 10 > self.room[self.node] + _FIT_NOISE_A
        too_big[self.session[over]] = True
        return too_big

    def over(self, running: BoolArray, level_steps: int) -> BoolArray:
        """Per node: is it over its headroom with every running session at the level?"""
        member = running[self.session]
        share = np.minimum(level_steps, self.max_steps[self.session[member]]) / 10
        load = np.bincount(self.node[member], share, minlength=len(self.room))
        over: BoolArray = load > self.room + _FIT_NOISE_A
        return over

    def fits(self, running: BoolArray, level_steps: int) -> bool:
        """Does every node fit with every running session at the level (capped at its max)?"""
        return not self.over(running, level_steps).any()


def _keep_count(shares: _Shares, order: IntArray) -> int:
    """How many sessions, taken in ``order``, can all run at their minimum (a prefix)."""
    lowest = np.maximum.accumulate(shares.min_steps[order]) if len(order) else order
    running = np.zeros(len(shares.min_steps), dtype=np.bool_)

    def fits(count: int) -> bool:
        running[:] = False
        running[order[:count]] = True
        return count == 0 or shares.fits(running, int(lowest[count - 1]))

    if fits(len(order)):
        return len(order)
    low, high = 0, len(order)  # fits(low) holds, fits(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _level(shares: _Shares, running: BoolArray) -> int:
    """The largest common level in 0.1 A steps that fits (at least every running minimum)."""
    if not running.any():
        return 0
    low = int(shares.min_steps[running].max())
    high = int(shares.max_steps[running].max())
    if shares.fits(running, high):
        return high
    while high - low > 1:  # fits(low) holds, fits(high) does not
        mid = (low + high) // 2
        low, high = (mid, high) if shares.fits(running, mid) else (low, mid)
    return low


def _binding(tree: Tree, shares: _Shares, running: BoolArray, level: int) -> int:
    """The constraint id of the first node limit that one more step would break."""
    over = np.flatnonzero(shares.over(running, level + 1))
    if len(over) == 0:
        return AT_MAX
    node = int(over[0])
    phase_room = tree.room_a[node, :PHASES]
    if tree.room_a[node, PHASES] / 3 < phase_room.min():
        return node * (PHASES + 1) + PHASES
    return node * (PHASES + 1) + int(np.argmin(phase_room))


def equal_share(problem: AllocationProblem) -> Allocation:
    """Every session the same current, as if all drew on every phase (the baseline).

    ValueError if the problem itself is malformed (see :mod:`policies.layout`).
    """
    compiled = compile_problem(problem)
    tree, sessions = compiled.tree, compiled.sessions
    chosen = np.flatnonzero(sessions.status == RUNNABLE)
    shares = _Shares(tree, sessions, chosen)
    running = ~shares.alone_too_big()
    lowest = int(shares.min_steps[running].max()) if running.any() else 0
    if not shares.fits(running, lowest):
        able = np.flatnonzero(running)
        order = able[np.argsort(compiled.layout.id_rank()[chosen][able], kind="stable")]
        running[:] = False
        running[order[: _keep_count(shares, order)]] = True
    level = _level(shares, running)
    at_level = np.where(shares.max_steps <= level, AT_MAX, _binding(tree, shares, running, level))
    codes = base_codes(sessions)
    codes[chosen] = np.where(running, at_level, PAUSED)
    amps = np.zeros(len(sessions.ids))
    amps[chosen] = np.where(running, np.minimum(level, shares.max_steps) / 10, 0.0)
    return allocation(tree, sessions, amps, codes)
