"""GetCompositeSchedule for both OCPP versions: the request, the answer read, the outcome.

A charger that accepted a profile should enforce it: its composite schedule
(what it will allow a connector, all its profiles combined) says what it
holds. The request asks in the charger's own rate unit for a short duration;
the answer's first period is the limit in force now (the composite starts
when the charger computes it, so the charger's clock does not matter).

The payloads are the wire's camelCase dicts, sent through
:meth:`~controller.ocpp.router.GuardedChargePoint.request` (never the
library's ``call()``, whose ``suppress=True`` would turn a CALLERROR into
``None``). 1.6 answers ``{status, connectorId, scheduleStart, chargingSchedule}``,
2.0.1 ``{status, statusInfo, schedule}`` with a ``CompositeScheduleType``;
both schedules carry ``chargingRateUnit`` and ``chargingSchedulePeriod``.
Reading the answer is pure; :func:`ask_composite` adds the I/O and never raises.
"""

from __future__ import annotations

from typing import Any, Literal

from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError, OCPPError, UnknownCallErrorCodeError
from websockets.exceptions import ConnectionClosed

from controller.model import CompositeLimit, ScheduleStatus
from controller.ocpp.router import GuardedChargePoint, LinkClosed

Version = Literal["1.6", "2.0.1"]

COMPOSITE_DURATION_S = 60
"""How far ahead we ask: only the limit in force now is compared, so a minute is plenty."""


def composite_request(
    version: Version, connector_id: int, duration_s: int, rate_unit: str
) -> dict[str, Any]:
    """The camelCase GetCompositeSchedule request (1.6 ``connectorId``, 2.0.1 ``evseId``)."""
    key = "connectorId" if version == "1.6" else "evseId"
    return {key: connector_id, "duration": duration_s, "chargingRateUnit": rate_unit}


def read_composite(version: Version, answer: Any, voltage_v: float) -> CompositeLimit:
    """The limit in force now from a GetCompositeSchedule answer; every shape checked."""
    if not isinstance(answer, dict):
        return CompositeLimit(ScheduleStatus.FAILED, detail="answer is not an object")
    status = answer.get("status")
    if status != "Accepted":
        info = answer.get("statusInfo")
        reason = info.get("reasonCode") if isinstance(info, dict) else None
        detail = f"{status}: {reason}" if reason else str(status)
        return CompositeLimit(ScheduleStatus.UNSUPPORTED, detail=detail)
    schedule = answer.get("chargingSchedule" if version == "1.6" else "schedule")
    if not isinstance(schedule, dict):
        # 1.6 lets an Accepted answer omit the schedule: no profile limits the connector.
        return CompositeLimit(ScheduleStatus.READ, None, "no schedule: no limit")
    periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(periods, list) or not periods:
        return CompositeLimit(ScheduleStatus.READ, None, "no period: no limit")
    try:
        first = min(periods, key=lambda p: int(p["startPeriod"]))
        limit = float(first["limit"])
        phases = int(first.get("numberPhases", 3))
    except (TypeError, KeyError, ValueError) as exc:
        return CompositeLimit(ScheduleStatus.FAILED, detail=f"unreadable period: {exc!r}")
    unit = schedule.get("chargingRateUnit")
    if unit == "W":
        if phases < 1:
            return CompositeLimit(ScheduleStatus.FAILED, detail=f"numberPhases {phases}")
        return CompositeLimit(ScheduleStatus.READ, limit / (voltage_v * phases), f"{limit} W")
    if unit != "A":
        return CompositeLimit(ScheduleStatus.FAILED, detail=f"unknown chargingRateUnit {unit!r}")
    return CompositeLimit(ScheduleStatus.READ, limit, f"{limit} A")


async def ask_composite(
    link: GuardedChargePoint,
    version: Version,
    connector_id: int,
    duration_s: int,
    rate_unit: str,
    voltage_v: float,
    timeout_s: float,
) -> CompositeLimit:
    """Send one GetCompositeSchedule and read its answer. Never raises."""
    payload = composite_request(version, connector_id, duration_s, rate_unit)
    try:
        answer = await link.request("GetCompositeSchedule", payload, timeout_s)
    except TimeoutError:
        return CompositeLimit(ScheduleStatus.FAILED, detail=f"no answer within {timeout_s} s")
    except (ConnectionClosed, LinkClosed):
        return CompositeLimit(ScheduleStatus.FAILED, detail="connection closed")
    except (OcppNotImplemented, NotSupportedError) as exc:
        return CompositeLimit(ScheduleStatus.UNSUPPORTED, detail=f"{exc.code}: {exc.description}")
    except OCPPError as exc:
        return CompositeLimit(ScheduleStatus.FAILED, detail=f"{exc.code}: {exc.description}")
    except UnknownCallErrorCodeError as exc:
        return CompositeLimit(ScheduleStatus.FAILED, detail=str(exc))
    return read_composite(version, answer, voltage_v)
