"""Sessions restored from the state store that their charger has not confirmed yet. Pure.

After a restart (:mod:`controller.resume`) the sessions stored before it are back
in the site state, each marked :class:`Restored` until its charger reports it:

* **confirmed** by a measurement that names its transaction (or names none while
  the connector reports that a transaction runs): from then on it is an ordinary
  session, steered by the policy;
* **dropped**, with a log line, when the charger contradicts it: a measurement or
  a StartTransaction with another transaction, or the connector reporting
  ``Available``;
* **meanwhile** it stays out of the policy's problem. What its charger draws is
  unknown, so the larger of its last setpoint (or of an increase sent after it)
  and the fail-safe current is reserved on every node above it, on top of the
  measured base load, which already holds its real draw: counted twice at
  worst, the safe side. Its last setpoint is re-asserted while its lease runs
  (no change for the charger); once the lease has run out the charger is on its
  fail-safe, and the session gets no more than that until it is confirmed. A
  measurement confirms it only once its charger is booted (or adopted on
  reconnect): before, nothing can be sent to it, and it stays reserved as above.

**Resumed.** Once confirmed, a session whose charger still holds a setpoint known
for certain (:func:`resumed_a`) counts as holding it, as if this controller had
sent it: it is not a session with "no limit acknowledged yet" (whose charger's
rating is reserved, :mod:`controller.untrusted`) and it is paced from that
setpoint, not from the fail-safe current (:mod:`controller.pacing`). The charger
holds it whatever its fail-safe default does: a TxProfile (or a setpoint at a
stack level above the fail-safe) overrules the TxDefaultProfile. Nothing is
counted as held when it may not be: the lease has run out (the charger is on its
fail-safe), the charger booted since the restart (it may have lost its profiles),
or a change was on its way to the charger when the store last wrote (it holds one
of two limits, not one known).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

CHARGING = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
"""Connector statuses that say a transaction runs."""


@dataclass(frozen=True, slots=True)
class Restored:
    """What the store said of a session's setpoint, kept until the charger confirms it.

    ``setpoint_a`` is the last setpoint the charger accepted (``None``: none known),
    ``lease_until`` (monotonic s) when its lease runs out, ``ceiling_a`` the most the
    charger may hold (an increase may have gone out after that acceptance was stored),
    ``floor_a`` the least (a decrease may have; ``None``: not stored, unknown).
    ``loaded_at`` (monotonic s) is when the record was read back: no controller has
    sent the charger anything for this session since.
    """

    setpoint_a: float | None = None
    ceiling_a: float | None = None
    lease_until: float | None = None
    floor_a: float | None = None
    loaded_at: float = float("-inf")


class Verdict(enum.Enum):
    """What a measurement means for a restored session."""

    CONFIRM = "confirm"
    DROP = "drop"
    IGNORE = "ignore"


def judge_measurement(transaction_id: int, status: str, reported_tx: int | None) -> Verdict:
    """A measurement that names ``reported_tx`` on a connector restored with
    ``transaction_id`` and last reported ``status`` (since the restore)."""
    if reported_tx is not None:
        return Verdict.CONFIRM if reported_tx == transaction_id else Verdict.DROP
    # A charger may leave the transaction out of MeterValues: only a connector that says
    # it charges confirms the session then; otherwise the report says nothing about it.
    return Verdict.CONFIRM if status in CHARGING else Verdict.IGNORE


def reserve_a(restored: Restored, failsafe_a: float) -> float:
    """The current per phase reserved for the session until it is confirmed."""
    return max(restored.setpoint_a or 0.0, restored.ceiling_a or 0.0, failsafe_a)


def target_a(restored: Restored, failsafe_a: float, at: float, failsafe_mode: bool) -> float:
    """The setpoint to (re-)assert now, never above :func:`reserve_a`.

    ``failsafe_mode``: the site (or a group above the session) is in fail-safe.
    """
    if failsafe_mode or restored.setpoint_a is None:
        return failsafe_a
    if restored.lease_until is not None and at < restored.lease_until:
        return restored.setpoint_a  # what the charger holds: asserting it changes nothing
    return min(restored.setpoint_a, failsafe_a)  # on its fail-safe now: no increase


def resumed_a(restored: Restored, at: float) -> float | None:
    """The setpoint the charger of a session confirmed after the restart holds for certain
    at ``at`` (monotonic s), or ``None`` when that is not known.

    Known: a setpoint was accepted, its lease runs at ``at``, and nothing else was on its
    way (the stored floor and ceiling are that setpoint). The caller makes sure the
    charger has not booted since the restart (:meth:`controller.state.SiteState.restore`).
    """
    setpoint_a = restored.setpoint_a
    if setpoint_a is None or restored.lease_until is None or at >= restored.lease_until:
        return None
    if restored.ceiling_a != setpoint_a or restored.floor_a != setpoint_a:
        return None
    return setpoint_a
