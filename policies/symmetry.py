"""Sessions that are interchangeable under a set of limits: fill one, give all the same. Pure.

This module owns a shortcut of the filling (:mod:`policies.filling`). Two
running sessions that load the same limits of the set being filled, with the
same phases, minimum, maximum and weight, are interchangeable: the weighted
max-min fair answer is unique, so it gives them the same current, frozen by
the same limit. The filling then runs on one representative per group, each
of its loads counted as many times as the group has members, and the answer
is copied to the rest. On a large site most sessions share their limits
above the charger (the site's phases, a feeder), so 5,000 sessions make a
few hundred groups.

Which limits of the set a session loads is fixed by the nearest node above
it (itself included) that has a limit in the set, and by its phases: the
limits in the set above that node are the same for every session below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.incidence import KINDS, STEPS_PER_A, BoolArray, FloatArray, IntArray
from policies.layout import Layout

_WORTH_IT = 0.5
"""Group only when there are at most half as many groups as sessions."""

_KEY_BITS = 62
"""The group key is one int64: its parts must fit in this many bits together."""


@dataclass(frozen=True, slots=True)
class Groups:
    """``group`` per session (-1 for one not running), and per group its first member
    (``first``) and how many members it has (``count``)."""

    group: IntArray
    first: IntArray
    count: FloatArray


def _nearest_in_set(layout: Layout, limits: BoolArray) -> IntArray:
    """Per session, the nearest node at or above its node with a limit in ``limits`` (-1: none)."""
    marked = np.append(limits.reshape(-1, KINDS).any(axis=1), False)  # row -1: padding
    ancestors = layout.ancestors[layout.node]
    hit = marked[ancestors]
    first = hit.argmax(axis=1)
    nearest: IntArray = np.where(hit.any(axis=1), ancestors[np.arange(len(ancestors)), first], -1)
    return nearest


def _key(parts: list[IntArray]) -> IntArray | None:
    """The parts (each ≥ 0) packed into one int64 per session; None if they do not fit."""
    key = np.zeros(len(parts[0]), dtype=np.int64)
    bits = 0
    for part in parts:
        span = int(part.max()) + 1 if len(part) else 1
        bits += max(span - 1, 1).bit_length()
        if bits > _KEY_BITS:
            return None
        key = key * span + part
    return key


def interchangeable(
    layout: Layout,
    limits: BoolArray,
    running: BoolArray,
    min_a: FloatArray,
    max_a: FloatArray,
    weight: FloatArray,
) -> Groups | None:
    """The running sessions grouped as the module doc says; None if grouping would not pay."""
    who = np.flatnonzero(running)
    if len(who) < 2:
        return None
    _, weight_rank = np.unique(weight[who], return_inverse=True)
    parts = [
        _nearest_in_set(layout, limits)[who] + 1,
        layout.phase_code[who],
        np.rint(min_a[who] * STEPS_PER_A).astype(np.int64),
        np.rint(max_a[who] * STEPS_PER_A).astype(np.int64),
        weight_rank.astype(np.int64),
    ]
    key = _key(parts)
    if key is None or (key < 0).any():
        return None
    _, first, inverse, count = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    if len(first) > _WORTH_IT * len(who):
        return None
    group = np.full(len(running), -1, dtype=np.int64)
    group[who] = inverse
    return Groups(group, who[first], count.astype(np.float64))
