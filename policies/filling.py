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
    Per breakpoint: ``first`` starts a constraint's run, ``gap`` is the level
    difference to the next breakpoint of the same constraint (0 at a run's
    end), ``room`` is its constraint's headroom. ``starts`` indexes the run
    starts and ``segment`` numbers each breakpoint's run.
    """

    constraint: IntArray
    level: FloatArray
    event_group: IntArray
    event_rate: FloatArray
    first: BoolArray
    starts: IntArray
    segment: IntArray
    gap: FloatArray
    room: FloatArray


def breakpoints(
    pairs: Pairs, min_a: FloatArray, max_a: FloatArray, scale: FloatArray, room: FloatArray
) -> Breakpoints:
    """The breakpoints of every constraint for sessions rising at ``scale`` per unit level.

    ``pairs`` must number their constraints densely (0 .. ``len(room)`` − 1).
    """
    count = len(scale)
    distinct, rank = np.unique(np.concatenate([min_a / scale, max_a / scale]), return_inverse=True)
    s, c = pairs.session, pairs.constraint
    width = len(distinct)
    row = c * width
    groups, event_group = _group(np.concatenate([row + rank[s], row + rank[count + s]]))
    rate = pairs.coef * scale[s]
    constraint = groups // width
    level = distinct[groups % width]
    first = first_of_runs(constraint)
    starts = np.flatnonzero(first)
    gap = np.zeros(len(level))
    gap[:-1] = level[1:] - level[:-1]
    gap[starts[1:] - 1] = 0.0
    return Breakpoints(
        constraint=constraint,
        level=level,
        event_group=event_group,
        event_rate=np.concatenate([rate, -rate]),
        first=first,
        starts=starts,
        segment=np.cumsum(first) - 1,
        gap=gap,
        room=room[constraint],
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


def tight_levels(points: Breakpoints, slope_change: FloatArray, base: FloatArray) -> FloatArray:
    """Per constraint, the level at which its load reaches its room (inf: never).

    ``slope_change`` is the change of load rate at each breakpoint (rising
    members only); ``base`` is each constraint's load at level 0: frozen
    members at their value, rising members at their minimum.
    """
    c, level, starts, segment = points.constraint, points.level, points.starts, points.segment
    levels = np.full(len(base), np.inf)
    if len(c) == 0:
        return levels
    # Members add +rate then -rate inside their constraint's run, so the running
    # sum returns to ~0 at every run end: no cancellation across constraints.
    total = np.cumsum(slope_change)
    slope = total - (total[starts] - slope_change[starts])[segment]
    slope[np.abs(slope) < _SLOPE_NOISE] = 0.0
    rise = slope * points.gap
    before = np.cumsum(rise) - rise
    load = base[c] + before - before[starts][segment]
    over = np.flatnonzero(load > points.room)
    if len(over) == 0:
        return levels
    hit = over[first_of_runs(c[over])]
    prev = np.maximum(hit - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = level[prev] + (points.room[hit] - load[prev]) / slope[prev]
    cross = np.where(slope[prev] > 0.0, np.minimum(cross, level[hit]), level[prev])
    # Over at the first breakpoint: the minimums alone reach the room (they fit
    # up to float noise), so the members stay at their minimum.
    levels[c[hit]] = np.where(points.first[hit], 0.0, np.maximum(cross, 0.0))
    return levels


def _dense(constraint: IntArray) -> tuple[IntArray, IntArray]:
    """The constraint ids present, and each entry's index among them."""
    present = np.zeros(int(constraint.max()) + 1 if len(constraint) else 0, dtype=np.bool_)
    present[constraint] = True
    return np.flatnonzero(present), np.cumsum(present)[constraint] - 1


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
    named = np.full(len(weight), _NO_CONSTRAINT, dtype=np.int64)
    active = running.copy()
    ids, c = _dense(pairs.constraint)
    s, coef, count = pairs.session, pairs.coef, len(ids)
    points = breakpoints(Pairs(s, c, coef), min_a, max_a, scale, room[ids])
    live = np.arange(len(s))  # the pairs whose session still rises
    while active.any():
        events = np.concatenate([live, live + len(s)])
        change = np.bincount(
            points.event_group[events], points.event_rate[events], minlength=len(points.level)
        ).astype(np.float64)
        base = np.bincount(c, coef * current[s], minlength=count).astype(np.float64)
        levels = tight_levels(points, change, base)
        ls, lc = s[live], c[live]
        at = levels[lc]
        level_of = np.full(len(weight), np.inf)
        np.minimum.at(level_of, ls, at)
        mine = level_of[ls]
        lowest = np.full(count, np.inf)
        np.minimum.at(lowest, lc, mine)
        local = (levels <= lowest) & np.isfinite(levels)
        freeze = active & np.isinf(level_of)
        freeze[ls[local[lc]]] = True
        current = np.where(freeze, np.clip(scale * level_of, min_a, max_a), current)
        frozen = freeze[ls]
        # Name, for each session frozen now, the lowest-id limit that became tight at its level.
        tight = frozen & (at == mine) & np.isfinite(at)
        np.minimum.at(named, ls[tight], lc[tight])
        live = live[~frozen]
        active &= ~freeze
    binding = np.full(len(weight), -1, dtype=np.int64)
    was_named = named != _NO_CONSTRAINT
    binding[was_named] = ids[named[was_named]]
    return Filled(current, binding)
