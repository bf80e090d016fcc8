"""Fairness and shortfall of a run's EV sessions: who got how much of what they could take. Pure.

*Demand* is the energy a session would have taken unconstrained while it
was plugged in (its own maximum, tapering included, up to a full battery);
*delivered* is what it took. Fairness compares delivered ÷ demand between
sessions; shortfall is what a driver with a departure time went without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index, (Σx)² ÷ (n·Σx²): 1 when all equal, 1/n when one takes all.

    An empty list, or one of zeros only, is perfectly fair (1.0).
    """
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * squares)


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """One EV's stay, for fairness and shortfall: energies in Wh."""

    key: str
    priority: float
    delivered_wh: float
    demand_wh: float  # what it would have taken, unconstrained, while it was there
    needed_wh: float | None = None  # to reach its target SoC, when it had a departure time


def fairness(sessions: Sequence[SessionOutcome]) -> dict[str, Any]:
    """Jain's index on delivered ÷ demand, per priority class, and weighted over all sessions.

    ``fairness`` is the worst class; ``fairness_weighted`` divides each
    session's share by its priority first, so it is 1 when energy follows
    the weights exactly.
    """
    served = [s for s in sessions if s.demand_wh > 0]
    classes: dict[str, list[float]] = {}
    for s in served:
        classes.setdefault(f"{s.priority:g}", []).append(s.delivered_wh / s.demand_wh)
    by_class = {k: round(jain_index(v), 4) for k, v in sorted(classes.items())}
    weighted = [s.delivered_wh / s.demand_wh / s.priority for s in served]
    return {
        "fairness": min(by_class.values(), default=1.0),
        "fairness_by_priority": by_class,
        "fairness_weighted": round(jain_index(weighted), 4),
    }


def shortfall_kwh(sessions: Sequence[SessionOutcome]) -> float:
    """Energy short at departure: Σ max(0, min(needed, demand) − delivered) over sessions with
    a departure time. Capping by the demand leaves out what the car could never have taken
    (its own maximum over its stay), which no controller can be blamed for."""
    short_wh = 0.0
    for s in sessions:
        if s.needed_wh is not None:
            short_wh += max(0.0, min(s.needed_wh, s.demand_wh) - s.delivered_wh)
    return round(short_wh / 1000, 4)
