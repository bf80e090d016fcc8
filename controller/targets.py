"""The limit each session should hold after a decision, and why. Pure.

:func:`controller.decide.decide` solves for the sessions in the problem; the others
are told here: a non-compliant session the fail-safe current (its rating is
reserved), a session below a group in fail-safe the fail-safe current, and a session
restored from the state store but not confirmed by its charger the setpoint it may
still hold (:mod:`controller.restored`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.restored import Restored
from controller.restored import target_a as restored_target_a
from controller.snapshot import SessionView
from policies import Allocation

OVERDRAWS = "draws more than its setpoint"
"""Why a session is non-compliant when no other reason is given."""


@dataclass(frozen=True, slots=True)
class Target:
    """The limit one session should hold, and where to send it."""

    charger_id: str
    connector_id: int
    transaction_id: int
    limit_a: float
    reason: str
    started_at: float = 0.0


def told(
    session: SessionView, limit_a: float, reason: str, started_at: float | None = None
) -> Target:
    """``session`` told ``limit_a`` for ``reason``."""
    start = session.started_at if started_at is None else started_at
    return Target(
        session.charger_id, session.connector_id, session.transaction_id, limit_a, reason, start
    )


def allocated(sessions: Iterable[SessionView], allocation: Allocation) -> dict[str, Target]:
    """The policy's answer for the sessions it was asked about."""
    by_key = {s.key: s for s in sessions}
    return {
        key: told(s, current_a, reason)
        for key, current_a, reason in allocation.rows()
        if (s := by_key.get(key)) is not None
    }


def noncompliant(
    ignored: Mapping[str, SessionView], why: Mapping[str, str], failsafe_a: float
) -> dict[str, Target]:
    """Sessions that do not follow their setpoints: the fail-safe current, with the reason
    each was flagged for."""
    return {
        key: told(
            s, failsafe_a, f"non-compliant: {why.get(key, OVERDRAWS)}; its rating is reserved"
        )
        for key, s in ignored.items()
    }


def below_failsafe(
    sessions: Mapping[str, SessionView], why: Mapping[str, str], failsafe_a: float
) -> dict[str, Target]:
    """Sessions below a group in fail-safe, left out of the problem."""
    return {key: told(s, failsafe_a, f"fail-safe: {why[key]}") for key, s in sessions.items()}


RESTORED = "restored from the state store, not yet confirmed by its charger"


def restored(
    sessions: Mapping[str, SessionView], failsafe: Mapping[str, bool], failsafe_a: float, now: float
) -> dict[str, Target]:
    """Sessions restored but not confirmed: the setpoint each may still hold (the fail-safe
    current where ``failsafe``). Started "now" for the profile ladder: a refusal of a TxProfile
    for a transaction the charger may not know (yet) says nothing about the charger
    (:mod:`controller.fallback`)."""
    return {
        key: told(
            s,
            restored_target_a(s.restored or Restored(), failsafe_a, now, failsafe[key]),
            RESTORED,
            now,
        )
        for key, s in sessions.items()
    }
