"""SetChargingProfile as a command with a recorded result, the same for both OCPP versions.

Each version builds its own payload (:mod:`controller.ocpp.profiles`,
:mod:`controller.ocpp.wire201`); sending it, turning every outcome into a
:class:`CommandStatus` with a readable detail, and the log line are shared.
"""

from __future__ import annotations

from typing import Any

import structlog
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from websockets.exceptions import ConnectionClosed

from controller.collector import held_until_answered
from controller.model import CommandResult, CommandStatus, ProfileCommand
from controller.ocpp.router import GuardedChargePoint, LinkClosed


async def send_profile(
    link: GuardedChargePoint, payload: dict[str, Any], timeout_s: float
) -> tuple[CommandStatus, str]:
    """Send one SetChargingProfile; its outcome as a status and a detail. Never raises."""
    try:
        # A fan-out to every charger is a thousand of these at once: the collector waits
        # until they are answered (controller/collector.py).
        with held_until_answered():
            response = await link.request("SetChargingProfile", payload, timeout_s)
    except TimeoutError:
        return CommandStatus.TIMEOUT, f"no answer within {timeout_s} s"
    except (ConnectionClosed, LinkClosed):
        return CommandStatus.NOT_CONNECTED, "connection closed"
    except OCPPError as exc:
        return CommandStatus.CALL_ERROR, f"{exc.code}: {exc.description}"
    except UnknownCallErrorCodeError as exc:  # a CALLERROR with a code OCPP does not define
        return CommandStatus.CALL_ERROR, str(exc)
    status = str(response.get("status"))
    if status == "Accepted":
        return CommandStatus.ACCEPTED, ""
    info = response.get("statusInfo")  # 2.0.1 may say why
    reason = info.get("reasonCode") if isinstance(info, dict) else None
    return CommandStatus.REJECTED, f"{status}: {reason}" if reason else status


def recorded(
    log: structlog.typing.FilteringBoundLogger,
    command: ProfileCommand,
    status: CommandStatus,
    detail: str,
    latency_s: float,
) -> CommandResult:
    """The command's result, logged: a warning unless accepted, else at debug (the
    dispatcher logs every setpoint and fail-safe with its result at info; a second line per
    command cost a fan-out to 1,000 chargers ~12 ms)."""
    result = CommandResult(command, status, latency_s, detail)
    (log.debug if result.ok else log.warning)(
        "set_charging_profile",
        connector_id=command.connector_id,
        purpose=command.purpose.value,
        limit_a=command.limit_a,
        status=status.value,
        detail=detail,
        latency_s=round(latency_s, 3),
    )
    return result
