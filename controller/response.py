"""How long each charger's car takes to follow a new setpoint, learned from its draw. Pure.

Each accepted change of a connector's setpoint is watched until the car's draw
shows it followed (:mod:`controller.follow` judges each report); the time it
took is an observation of the charger. Each charger's response time is the
**slowest of its last** :data:`KEEP` observations, bounded to
``[MIN_RESPONSE_S, max_s]``; until it has one, the configured default applies.
The slowest, not the mean: an increase sent before the car has followed the
last change is what makes a site oscillate. A change that teaches nothing (the
car was already inside it, when it got there is not known, or it never followed
within ``max_s``) leaves the observations as they were. The
observations outlive a restart (:mod:`controller.persist`, :func:`learned_before`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controller.follow import Pending, changed_entry, measured_entry

KEEP = 3
"""Observations kept per charger: the response time is the slowest of them."""

MIN_RESPONSE_S = 1.0
"""The lower bound of a learned response time: one report interval of most chargers."""


@dataclass(frozen=True, slots=True)
class ResponseBook:
    """What is learned: observations per charger, and the changes still being followed."""

    observed_s: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    pending: Mapping[str, Pending] = field(default_factory=dict)
    """By connector key."""


def changed(
    book: ResponseBook,
    key: str,
    charger_id: str,
    old_a: float,
    new_a: float,
    at: float,
    drawn_a: float | None,
) -> ResponseBook:
    """The charger accepted ``new_a`` (from ``old_a``), sent at ``at`` (the car cannot start
    to follow before: times run from the send); the car drew ``drawn_a``."""
    work = WorkingBook(book)
    work.changed(key, charger_id, old_a, new_a, at, drawn_a)
    return work.book()


def measured(
    book: ResponseBook,
    key: str,
    drawn_a: float,
    at: float,
    max_s: float,
    window_s: float | None = None,
) -> tuple[ResponseBook, bool]:
    """A report of ``drawn_a`` (A, the most loaded phase) at ``at``: the new book, and
    whether it shows the connector's car has followed its pending change just now.

    ``window_s`` is how long after a setpoint was replaced the car may still draw it (its
    response time; ``max_s`` when not known)."""
    work = WorkingBook(book)
    _, followed = work.measured(key, drawn_a, at, max_s, window_s)
    return work.book(), followed


def learned(
    observed_s: Mapping[str, tuple[float, ...]], charger_id: str, took_s: float
) -> tuple[float, ...]:
    """The charger's observations once a car took ``took_s`` to follow (the last KEEP)."""
    return (*observed_s.get(charger_id, ()), took_s)[-KEEP:]


def response_s(book: ResponseBook, charger_id: str, default_s: float, max_s: float) -> float:
    """The charger's response time: the slowest recent observation, bounded; else the default."""
    return observed_response_s(book.observed_s.get(charger_id), default_s, max_s)


def observed_response_s(seen: tuple[float, ...] | None, default_s: float, max_s: float) -> float:
    """:func:`response_s` from a charger's observations (``None``: none yet)."""
    if not seen:
        return default_s
    return min(max(max(seen), MIN_RESPONSE_S), max_s)


def following(book: ResponseBook, key: str) -> bool:
    """True while the connector's car has a change it has not followed yet."""
    return key in book.pending


def learned_before(book: ResponseBook, observed_s: Mapping[str, tuple[float, ...]]) -> ResponseBook:
    """``book`` with the observations of a previous run (from the state store) for the
    chargers it has none of."""
    return replace(book, observed_s={**observed_s, **book.observed_s})


def forget(book: ResponseBook, live_keys: set[str]) -> ResponseBook:
    """Drop pending changes of connectors whose session ended."""
    if all(k in live_keys for k in book.pending):
        return book
    return replace(book, pending={k: p for k, p in book.pending.items() if k in live_keys})


class WorkingBook:
    """A :class:`ResponseBook` being updated: its mappings copied once, not once per change
    (a thousand accepted setpoints come in one decision: :meth:`Settling.observe
    <controller.settling.Settling.observe>` makes one per decision)."""

    def __init__(self, book: ResponseBook) -> None:
        self._book = book
        self.pending = dict(book.pending)
        self._observed = dict(book.observed_s)
        self._dirty = False

    def changed(
        self,
        key: str,
        charger_id: str,
        old_a: float,
        new_a: float,
        at: float,
        drawn_a: float | None,
    ) -> None:
        """:func:`changed` on the working copy."""
        entry = changed_entry(self.pending.pop(key, None), charger_id, old_a, new_a, at, drawn_a)
        if entry is not None:
            self.pending[key] = entry
        self._dirty = True

    def measured(
        self, key: str, drawn_a: float, at: float, max_s: float, window_s: float | None = None
    ) -> tuple[bool, bool]:
        """:func:`measured` on the working copy: whether the report taught a response time,
        and whether it shows the car followed just now."""
        change = self.pending.get(key)
        if change is None:
            return False, False
        entry, took_s, followed = measured_entry(change, drawn_a, at, max_s, window_s)
        if entry is change:
            return False, followed
        if entry is None:
            del self.pending[key]
        else:
            self.pending[key] = entry
        if took_s is not None:
            self._observed[change.charger_id] = learned(self._observed, change.charger_id, took_s)
        self._dirty = True
        return took_s is not None, followed

    def drop(self, key: str) -> None:
        """Forget the connector's pending change (a new car there)."""
        if self.pending.pop(key, None) is not None:
            self._dirty = True

    def response_s(self, charger_id: str, default_s: float, max_s: float) -> float:
        """:func:`response_s` from the working copy."""
        return observed_response_s(self._observed.get(charger_id), default_s, max_s)

    def book(self) -> ResponseBook:
        """The book after the updates (the same object when there were none)."""
        if not self._dirty:
            return self._book
        return ResponseBook(self._observed, self.pending)
