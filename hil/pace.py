"""How a run paced its increases: the no-oscillation KPI of issue 6. Pure.

``increases_within_response`` counts the increases a charger applied sooner than
its EV's true response delay after the previous change of its offer, during
one EV's stay: an increase sent before the car could have followed the last
change is the start of an oscillation (the controller cannot yet know what the
last change did). The first offer of a stay has no previous change to follow.
Times are the simulated charger's, when it accepted each profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EPS_A = 0.05
"""Offers closer than this are the same offer (0.1 A is the OCPP step)."""


@dataclass(frozen=True, slots=True)
class Stay:
    """One EV's stay on a connector: its response delay and the charger's offers meanwhile."""

    response_s: float
    offers: Sequence[tuple[float, float]]
    """(time, offered A) after each accepted profile, oldest first."""


def early_increases(stay: Stay) -> int:
    """Increases of the offer sooner than ``response_s`` after the previous change."""
    count = 0
    last_a: float | None = None
    changed_at: float | None = None
    for at, offered_a in stay.offers:
        if last_a is not None and abs(offered_a - last_a) <= EPS_A:
            continue  # a renewal, or a profile for another purpose that left the offer as it was
        if (
            last_a is not None
            and changed_at is not None
            and offered_a > last_a
            and at - changed_at < stay.response_s
        ):
            count += 1
        if last_a is not None:
            changed_at = at
        last_a = offered_a
    return count


def stay_offers(
    offers: Sequence[tuple[float, int, float]], connector_id: int, start: float, end: float
) -> list[tuple[float, float]]:
    """A connector's offers from ``start`` to ``end`` (a charger's log of every connector),
    led by the offer in force at ``start`` (when one was logged before it)."""
    mine = [(at, a) for at, c, a in offers if c == connector_id]
    before = [(start, a) for at, a in mine if at < start][-1:]
    return [*before, *((at, a) for at, a in mine if start <= at <= end)]


def increases_within_response(stays: Iterable[Stay]) -> int:
    """The KPI over every stay of a run."""
    return sum(early_increases(s) for s in stays)
