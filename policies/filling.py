"""Weighted progressive filling over the constraints, one vectorised round at a time.

This module owns the water level. Every running session ``i`` follows one
common level ``t``: it draws ``clamp(w_i × t, min_i, max_i)``. A constraint
(a node's phase or power limit) becomes tight at the level where the load of
its members reaches its headroom; its members freeze there, the others keep
rising. The answer is the weighted max-min fair allocation.

Rather than raising ``t`` in small steps, each round computes, for every
constraint at once, the exact level at which it would become tight if its
unfrozen members kept rising: the load is piecewise linear in ``t``, with
breakpoints where a member leaves its minimum or reaches its maximum.
Those levels can only grow as other sessions freeze, so a constraint whose
level is not above that of any constraint sharing a member with it (a *local*
minimum) binds exactly there: its members freeze in this round. The global
minimum is always local, so each round freezes someone; a tree needs about
one round per level.

Members with the same breakpoint (same minimum, maximum and weight: the
common case on a real site) share one breakpoint per constraint, which keeps
the per-round arrays short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.incidence import BoolArray, FloatArray, IntArray, Pairs

_NO_CONSTRAINT = np.iinfo(np.int64).max
_SLOPE_NOISE = 1e-9
"""Real slopes are ≥ 1e-6 (weights span at most 1e6 once scaled); less is float noise."""


@dataclass(frozen=True, slots=True)
class Filled:
    """Per session: the current reached (unrounded) and the constraint that froze it.

    ``binding`` is ``-1`` for a session that reached its maximum before any
    constraint became tight (and for sessions that were not running).
    """

    current_a: FloatArray
    binding: IntArray


@dataclass(frozen=True, slots=True)
class Breakpoints:
    """The distinct levels where a constraint's load changes slope, sorted by (constraint, level).

    Each pair gives two events, its member starting to rise (at min/w) and
    stopping (at max/w), with signed slope change ``event_rate``; events at
    the same level of the same constraint share a breakpoint (``event_group``).
    """

    constraint: IntArray
    level: FloatArray
    event_group: IntArray
    event_session: IntArray
    event_rate: FloatArray


def breakpoints(
    pairs: Pairs, min_a: FloatArray, max_a: FloatArray, scale: FloatArray
) -> Breakpoints:
    """The breakpoints of every constraint for sessions rising at ``scale`` per unit level."""
    count = len(scale)
    distinct, rank = np.unique(np.concatenate([min_a / scale, max_a / scale]), return_inverse=True)
    s, c = pairs.session, pairs.constraint
    width = len(distinct)
    key = np.concatenate([c * width + rank[s], c * width + rank[count + s]])
    groups, event_group = _group(key)
    rate = pairs.coef * scale[s]
    return Breakpoints(
        constraint=groups // width,
        level=distinct[groups % width],
        event_group=event_group,
        event_session=np.concatenate([s, s]),
        event_rate=np.concatenate([rate, -rate]),
    )


def _group(key: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct keys in order, and the index of each key among them."""
    space = int(key.max()) + 1 if len(key) else 0
    if space <= 8 * len(key) + 4096:
        # Few distinct levels (the usual site): counting beats sorting.
        present = np.zeros(space, dtype=np.bool_)
        present[key] = True
        rank = np.cumsum(present, dtype=np.int32)  # int32 halves a large temporary
        return np.flatnonzero(present), (rank[key] - 1).astype(np.int64)
    order = np.argsort(key)
    ordered = key[order]
    first = first_of_runs(ordered)
    index = np.empty(len(key), dtype=np.int64)
    index[order] = np.cumsum(first) - 1
    return ordered[first], index


def first_of_runs(values: IntArray) -> BoolArray:
    """True where a run of equal values starts."""
    first = np.empty(len(values), dtype=np.bool_)
    first[:1] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return first


def tight_levels(
    points: Breakpoints, slope_change: FloatArray, base: FloatArray, room: FloatArray
) -> FloatArray:
    """Per constraint, the level at which its load reaches its room (inf: never).

    ``slope_change`` is the change of load rate at each breakpoint (rising
    members only); ``base`` is each constraint's load at level 0: frozen
    members at their value, rising members at their minimum.
    """
    c, level = points.constraint, points.level
    levels = np.full(len(room), np.inf)
    if len(c) == 0:
        return levels
    first = first_of_runs(c)
    starts = np.flatnonzero(first)
    segment = np.cumsum(first) - 1
    # Members add +rate then -rate inside their constraint's run, so the running
    # sum returns to ~0 at every run end: no cancellation across constraints.
    total = np.cumsum(slope_change)
    slope = total - (total[starts] - slope_change[starts])[segment]
    slope[np.abs(slope) < _SLOPE_NOISE] = 0.0
    gap = np.zeros(len(c))
    gap[:-1] = level[1:] - level[:-1]
    gap[starts[1:] - 1] = 0.0
    rise = slope * gap
    before = np.cumsum(rise) - rise
    load = base[c] + before - before[starts][segment]
    over = np.flatnonzero(load > room[c])
    if len(over) == 0:
        return levels
    hit = over[first_of_runs(c[over])]
    prev = np.maximum(hit - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = level[prev] + (room[c[hit]] - load[prev]) / slope[prev]
    cross = np.where(slope[prev] > 0.0, np.minimum(cross, level[hit]), level[prev])
    # Over at the first breakpoint: the minimums alone reach the room (they fit
    # up to float noise), so the members stay at their minimum.
    levels[c[hit]] = np.where(first[hit], 0.0, np.maximum(cross, 0.0))
    return levels


def fill(
    pairs: Pairs,
    min_a: FloatArray,
    max_a: FloatArray,
    weight: FloatArray,
    room: FloatArray,
    running: BoolArray,
) -> Filled:
    """Weighted max-min fair currents of the ``running`` sessions under ``room``.

    ``pairs`` must only name running sessions, and the minimums of the
    running sessions must already fit every constraint.
    """
    scale = weight / weight[running].max() if running.any() else weight
    current = np.where(running, min_a, 0.0)
    binding = np.full(len(weight), -1, dtype=np.int64)
    active = running.copy()
    points = breakpoints(pairs, min_a, max_a, scale)
    s, c, coef = pairs.session, pairs.constraint, pairs.coef
    while active.any():
        change = np.bincount(
            points.event_group,
            points.event_rate * active[points.event_session],
            minlength=len(points.level),
        ).astype(np.float64)
        base = np.bincount(c, coef * current[s], minlength=len(room)).astype(np.float64)
        levels = tight_levels(points, change, base, room)
        live = active[s]
        ls, lc = s[live], c[live]
        level_of = np.full(len(weight), np.inf)
        np.minimum.at(level_of, ls, levels[lc])
        lowest = np.full(len(room), np.inf)
        np.minimum.at(lowest, lc, level_of[ls])
        local = (levels <= lowest) & np.isfinite(levels)
        freeze = active & np.isinf(level_of)
        freeze[ls[local[lc]]] = True
        with np.errstate(invalid="ignore"):
            current = np.where(freeze, np.clip(scale * level_of, min_a, max_a), current)
        binding = _name_binding(ls, lc, levels, level_of, freeze, binding)
        active &= ~freeze
    return Filled(current, binding)


def _name_binding(
    s: IntArray,
    c: IntArray,
    levels: FloatArray,
    level_of: FloatArray,
    freeze: BoolArray,
    binding: IntArray,
) -> IntArray:
    """For each session frozen now, the lowest-id constraint that froze it."""
    tight = freeze[s] & (levels[c] == level_of[s]) & np.isfinite(levels[c])
    named = np.full(len(binding), _NO_CONSTRAINT, dtype=np.int64)
    np.minimum.at(named, s[tight], c[tight])
    return np.where(named != _NO_CONSTRAINT, named, binding)
