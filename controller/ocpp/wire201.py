"""OCPP 2.0.1 payloads built and read (pure): profiles out; needs, limits, capabilities in.

This module owns what differs on the wire from 1.6: the 2.0.1
``SetChargingProfile`` shape (``evseId``, ``chargingProfile`` with ``id``, the
``chargingSchedule`` as a list whose entries carry their own ``id``, the
transaction id as the charger's string, ``ChargingStationMaxProfile`` for the
whole station), the device-model variables asked and set on connect, and
the reading of ``NotifyEVChargingNeeds`` and ``NotifyChargingLimit`` into
domain terms. The limit, lease and back-dated start follow
:mod:`controller.ocpp.profiles` exactly. Payloads are camelCase as on the
wire; no I/O, the time is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from controller.model import ProfileCommand, ProfilePurpose, SessionNeeds
from controller.ocpp.profiles import DEFAULT_SKEW_S, charging_schedule, wire_time

PURPOSES = {
    ProfilePurpose.CHARGE_POINT_MAX: "ChargingStationMaxProfile",
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.TX: "TxProfile",
}
"""Our purposes as 2.0.1 names them; ``ChargingStationExternalConstraints`` is never ours."""

SMART_CHARGING = "SmartChargingCtrlr"
SAMPLED_DATA = "SampledDataCtrlr"
CAPABILITY_VARIABLES: tuple[tuple[str, str, str | None], ...] = (
    (SMART_CHARGING, "RateUnit", None),
    (SMART_CHARGING, "ProfileStackLevel", None),
    (SMART_CHARGING, "Entries", "ChargingProfiles"),
    (SMART_CHARGING, "PeriodsPerSchedule", None),
)
"""(component, variable, instance) asked with GetVariables on connect."""

TX_MEASURANDS = "Current.Import,Current.Offered,Power.Active.Import,Energy.Active.Import.Register"
"""What the loop needs in every TransactionEvent(Updated): per-phase current above all."""


def set_charging_profile_payload_201(
    command: ProfileCommand,
    now: datetime,
    transaction_id: str | None,
    skew_s: float = DEFAULT_SKEW_S,
    rate_unit: str = "A",
    voltage_v: float = 230.0,
) -> dict[str, Any]:
    """The camelCase 2.0.1 ``SetChargingProfile`` request for ``command`` at wall time ``now``.

    ``transaction_id`` is the charger's own id of the transaction (a TxProfile
    needs it). The schedule, limit and lease are those of 1.6: ``Absolute``,
    started ``skew_s`` early, ``validTo`` and ``duration`` bounding a lease.
    """
    if command.purpose is ProfilePurpose.TX and transaction_id is None:
        raise ValueError("a TxProfile needs the charger's transaction id")
    schedule = charging_schedule(command, now, skew_s, rate_unit, voltage_v)
    periods = schedule["chargingSchedulePeriod"]
    for period in periods:  # 2.0.1 assumes 3 phases when absent; say it for A too
        period.setdefault("numberPhases", command.number_phases or 3)
    profile: dict[str, Any] = {
        "id": command.profile_id,
        "stackLevel": command.stack_level,
        "chargingProfilePurpose": PURPOSES[command.purpose],
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": command.profile_id, **schedule}],
    }
    if command.purpose is ProfilePurpose.TX:
        profile["transactionId"] = transaction_id
    if command.lease_s is not None:
        profile["validTo"] = wire_time(now + timedelta(seconds=command.lease_s))
    return {"evseId": command.connector_id, "chargingProfile": profile}


def rate_unit_201(value: str | None) -> str:
    """The unit to send limits in, from ``SmartChargingCtrlr.RateUnit`` (a member list).

    A wherever the charger takes it or says nothing; W only when it takes W alone.
    """
    units = {u.strip().upper() for u in (value or "").split(",") if u.strip()}
    return "W" if units == {"W"} else "A"


def get_variable_data(variables: Iterable[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    """GetVariables ``getVariableData`` for (component, variable, instance) triples."""
    data = []
    for component, variable, instance in variables:
        entry: dict[str, Any] = {"component": {"name": component}, "variable": {"name": variable}}
        if instance is not None:
            entry["variable"]["instance"] = instance
        data.append(entry)
    return data


def read_variables(results: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``component.variable`` → value for each accepted GetVariables result (camelCase)."""
    values = {}
    for result in results:
        if result.get("attributeStatus") != "Accepted" or "attributeValue" not in result:
            continue
        name = f"{result['component']['name']}.{result['variable']['name']}"
        values[name] = str(result["attributeValue"])
    return values


def set_variable_data(interval_s: int) -> list[dict[str, Any]]:
    """SetVariables ``setVariableData``: the measurands the loop needs, the interval if > 0."""
    settings = [("TxUpdatedMeasurands", TX_MEASURANDS)]
    if interval_s > 0:
        settings.append(("TxUpdatedInterval", str(interval_s)))
    return [
        {
            "attributeValue": value,
            "component": {"name": SAMPLED_DATA},
            "variable": {"name": name},
        }
        for name, value in settings
    ]


PHASES_OF_TRANSFER = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}
"""NotifyEVChargingNeeds ``requestedEnergyTransfer``: the phases an AC car will charge on."""


def needs_from(
    charger_id: str, evse_id: int, at: float, charging_needs: dict[str, Any]
) -> SessionNeeds:
    """NotifyEVChargingNeeds' ``chargingNeeds`` (camelCase) as the session's needs from the EV.

    AC parameters give energy, min and max current; DC parameters give energy
    and max current; the requested transfer gives an AC car's phases. A departure
    time that does not parse is left out.
    """
    ac = charging_needs.get("acChargingParameters") or {}
    dc = charging_needs.get("dcChargingParameters") or {}
    departure = _unix_time(charging_needs.get("departureTime"))
    return SessionNeeds(
        charger_id,
        evse_id,
        at,
        departure_at=departure,
        energy_wh=_finite(ac.get("energyAmount", dc.get("energyAmount"))),
        ev_min_a=_finite(ac.get("evMinCurrent")),
        ev_max_a=_finite(ac.get("evMaxCurrent", dc.get("evMaxCurrent"))),
        source="ev",
        phases=PHASES_OF_TRANSFER.get(str(charging_needs.get("requestedEnergyTransfer"))),
    )


def session_limits_from(
    charger_id: str, evse_id: int, at: float, cable_max_current: object, phases_used: object
) -> SessionNeeds | None:
    """TransactionEvent's ``cableMaxCurrent`` (A) and ``numberOfPhasesUsed`` as needs from
    the EV; ``None`` when it carries neither. A cable of 0 A or less, or a phase count
    other than 1 to 3, is not believed."""
    cable_a = _finite(cable_max_current)
    cable_a = cable_a if cable_a is not None and cable_a > 0 else None
    phases = phases_used if isinstance(phases_used, int) and 1 <= phases_used <= 3 else None
    if cable_a is None and phases is None:
        return None
    return SessionNeeds(charger_id, evse_id, at, cable_max_a=cable_a, phases=phases, source="ev")


def limit_from_schedules(
    schedules: Iterable[dict[str, Any]], voltage_v: float, phases: int = 3
) -> float | None:
    """The lowest limit any period of ``schedules`` sets, in A per phase; ``None`` if none.

    Conservative on purpose: the state holds one number, not a timetable, so a
    lower limit later in the schedule applies from now on. A limit in W becomes
    A per phase with the period's ``numberPhases`` (default ``phases``).
    """
    limits = []
    for schedule in schedules:
        unit = schedule.get("chargingRateUnit", "A")
        for period in schedule.get("chargingSchedulePeriod", []):
            limit = _finite(period.get("limit"))
            if limit is None:
                continue
            if unit == "W":
                limit /= voltage_v * int(period.get("numberPhases") or phases)
            limits.append(max(limit, 0.0))
    return min(limits) if limits else None


def _finite(raw: object) -> float | None:
    """A finite float, or ``None``."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]  # numbers, Decimal, numeric strings
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _unix_time(raw: object) -> float | None:
    """An ISO 8601 time with a zone as UNIX seconds; ``None`` if absent or unreadable."""
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None
