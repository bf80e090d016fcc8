"""OCPP 1.6 ``SetChargingProfile`` payloads built from a :class:`ProfileCommand` (pure).

This module owns the wire shape of a limit: the flooring of the limit to the
0.1 A grid the schema demands, the lease (``validTo`` and ``duration``), and
the back-dating of ``startSchedule`` against charger clock skew. It returns
the camelCase dict that goes on the wire; no I/O, the time is an argument.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.model import ProfileCommand, ProfilePurpose

DEFAULT_SKEW_S = 5.0
"""How far a charger's clock may run behind ours: schedules start this much earlier."""


def floor_limit(limit: float) -> float:
    """Floor ``limit`` to a multiple of 0.1, never rounding up: a limit is a safety bound.

    The epsilon keeps a value such as 7.3 (stored as 7.29999…×10) from
    losing a step; ``round`` makes the float print as one decimal, which the
    ocpp library's ``multipleOf: 0.1`` check needs.
    """
    if not math.isfinite(limit) or limit < 0:
        raise ValueError(f"a limit must be a finite number >= 0, got {limit!r}")
    return round(math.floor(limit * 10 + 1e-9) / 10, 1)


def wire_time(at: datetime) -> str:
    """An aware datetime as OCPP wants it: UTC, milliseconds, ``Z`` suffix."""
    if at.tzinfo is None:
        raise ValueError("wire times must be timezone-aware")
    text = at.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def set_charging_profile_payload(
    command: ProfileCommand,
    now: datetime,
    skew_s: float = DEFAULT_SKEW_S,
    rate_unit: str = "A",
    voltage_v: float = 230.0,
) -> dict[str, Any]:
    """The camelCase ``SetChargingProfile`` request for ``command`` at wall time ``now``.

    The schedule is ``Absolute`` and starts ``skew_s`` before ``now``, so a
    charger whose clock runs behind still finds it in force. A leased command
    also gets ``validTo = now + lease_s`` and ``duration = lease_s + skew_s``
    (floored to whole seconds): the charger drops it by itself when the lease
    is not renewed. Without a lease the profile holds until replaced.
    """
    if command.purpose is ProfilePurpose.TX and command.transaction_id is None:
        raise ValueError("a TxProfile needs the transaction id it belongs to")
    profile: dict[str, Any] = {
        "chargingProfileId": command.profile_id,
        "stackLevel": command.stack_level,
        "chargingProfilePurpose": command.purpose.value,
        "chargingProfileKind": "Absolute",
    }
    if command.purpose is ProfilePurpose.TX:
        profile["transactionId"] = command.transaction_id
    schedule = charging_schedule(command, now, skew_s, rate_unit, voltage_v)
    if command.lease_s is not None:
        profile["validTo"] = wire_time(now + timedelta(seconds=command.lease_s))
    profile["chargingSchedule"] = schedule
    return {"connectorId": command.connector_id, "csChargingProfiles": profile}


def charging_schedule(
    command: ProfileCommand, now: datetime, skew_s: float, rate_unit: str, voltage_v: float
) -> dict[str, Any]:
    """One period from the start of the schedule: the limit in A per phase, or in W.

    A charger that takes only W gets the same current as power: A × nominal
    voltage × phases, with ``numberPhases`` stated so that the charger's own
    conversion back to current per phase gives the same amperes (three phases
    unless the command says otherwise).
    """
    if rate_unit == "W":
        phases = command.number_phases or 3
        limit = floor_limit(command.limit_a * voltage_v * phases)
        period: dict[str, Any] = {"startPeriod": 0, "limit": limit, "numberPhases": phases}
    else:
        period = {"startPeriod": 0, "limit": floor_limit(command.limit_a)}
        if command.number_phases is not None:
            period["numberPhases"] = command.number_phases
    schedule: dict[str, Any] = {"chargingRateUnit": rate_unit, "chargingSchedulePeriod": [period]}
    if command.lease_s is not None:
        if command.lease_s <= 0:
            raise ValueError(f"a lease must be positive, got {command.lease_s!r}")
        # The schema wants whole seconds; flooring ends the schedule no later than validTo.
        schedule["duration"] = max(1, math.floor(command.lease_s + skew_s))
    schedule["startSchedule"] = wire_time(now - timedelta(seconds=skew_s))
    return schedule
