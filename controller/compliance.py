"""Chargers that do not follow their setpoint. Pure.

Some chargers accept a profile and ignore it (firmware bugs), or follow it
only at the next session. A session that keeps drawing more than the
setpoint it acknowledged, longer than a car needs to follow
(``control.compliance_timeout_s``), is flagged non-compliant. Until it
draws within its setpoint again, the loop reserves the charger's full rating
for it (invariant 1 cannot rely on a charger that does not listen) and
keeps sending it its setpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.dispatch import Held
from controller.state import SessionView

OVERSHOOT_TOLERANCE_A = 1.0
"""Drawing up to this much above the setpoint is measurement noise, not disobedience."""


@dataclass(frozen=True, slots=True)
class Compliance:
    """Since when each session has been over its setpoint, and which are flagged."""

    over_since: Mapping[str, float]
    flagged: frozenset[str]


def check(
    sessions: tuple[SessionView, ...],
    held: Mapping[str, Held],
    previous: Compliance,
    now: float,
    timeout_s: float,
) -> Compliance:
    """The compliance of every session after the latest measurements."""
    over_since: dict[str, float] = {}
    for session in sessions:
        setpoint = held.get(session.key)
        if setpoint is None or session.measured_a is None or session.measured_at is None:
            continue
        if session.measured_at < setpoint.acked_at:
            # Measured before the latest setpoint was in force: it says nothing new, and a
            # charger over its setpoints stays over while the loop adjusts them.
            if session.key in previous.over_since:
                over_since[session.key] = previous.over_since[session.key]
            continue
        drawn_a = max(value or 0.0 for value in session.measured_a)
        if drawn_a > setpoint.limit_a + OVERSHOOT_TOLERANCE_A:
            over_since[session.key] = previous.over_since.get(session.key, session.measured_at)
    flagged = frozenset(k for k, since in over_since.items() if now - since >= timeout_s)
    return Compliance(over_since, flagged)
