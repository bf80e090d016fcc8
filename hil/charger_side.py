"""The charger's end of a simulated OCPP 1.6J connection: it answers the central system's CALLs.

:class:`ChargerSide` is the ``ocpp`` library's ChargePoint on the charger's
side of the websocket. Its handlers hand each command to the owner (the
:class:`~hil.charge_point.SimulatedChargePoint`); its receive path plays out
two quirks that concern the link itself: answering commands late
(``slow_ack_s``) and not answering them at all (``silent_to_commands``).
Answers to the charger's own CALLs always get through, so a silent charger
keeps heartbeating and metering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol

import structlog
from ocpp.charge_point import snake_to_camel_case
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

from controller.ocpp.v16 import on_action
from hil.quirks import Quirks


class ChargerOwner(Protocol):
    """What the charger side needs from the simulated charger it serves."""

    charger_id: str
    quirks: Quirks

    async def transaction_known(self, connector_id: int) -> None:
        """Return once a StartTransaction answer already received on the connector is taken in."""
        ...

    def set_profile(self, connector_id: int, profile: dict[str, Any]) -> str:
        """SetChargingProfile: the status to answer."""
        ...

    def clear_profiles(self, **criteria: Any) -> str:
        """ClearChargingProfile: the status to answer."""
        ...

    def configuration(self) -> dict[str, str]:
        """The configuration keys the charger reports."""
        ...

    def composite_schedule(
        self, connector_id: int, duration_s: int, unit: str | None
    ) -> tuple[str, str, list[dict[str, Any]]] | None:
        """GetCompositeSchedule: (start, unit, camelCase periods), or None to refuse."""
        ...


class QuirkyReceiver:
    """The receive path of a simulated charger of either version: holds back or drops commands.

    Mixed in before the library's ChargePoint; the owner has ``quirks``.
    """

    _owner: Any
    _late: set[asyncio.Task[None]]
    _log: Any

    def _init_quirks(self, owner: Any) -> None:
        self._owner = owner
        self._late = set()
        self._log = structlog.get_logger(__name__).bind(charger_id=owner.charger_id)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route a frame, holding back or dropping commands as the owner's quirks say."""
        quirks = self._owner.quirks
        if not _is_call(raw_msg) or not (quirks.silent_to_commands or quirks.slow_ack_s > 0):
            await super().route_message(raw_msg)  # type: ignore[misc]  # the library's
        elif quirks.silent_to_commands:
            self._log.info("sim_command_ignored", quirk="silent_to_commands")
        else:  # answer later, without holding up the answers to our own CALLs meanwhile
            task = asyncio.create_task(self._answer_late(raw_msg, quirks.slow_ack_s))
            self._late.add(task)
            task.add_done_callback(self._late.discard)

    async def cancel_late_answers(self) -> None:
        """Drop the answers still held back (the connection is closing)."""
        for task in list(self._late):
            task.cancel()
        for task in list(self._late):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _answer_late(self, raw_msg: str | bytes, delay_s: float) -> None:
        """Route a command after ``delay_s``."""
        await asyncio.sleep(delay_s)
        await super().route_message(raw_msg)  # type: ignore[misc]  # the library's


class ChargerSide(QuirkyReceiver, ChargePoint):  # type: ignore[misc]  # the library is untyped
    """The library's ChargePoint, answering the central system's CALLs for its owner."""

    def __init__(self, owner: ChargerOwner, connection: ClientConnection, timeout_s: float):
        super().__init__(owner.charger_id, connection, response_timeout=timeout_s)
        self._init_quirks(owner)

    @on_action(Action.set_charging_profile)
    async def _on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        """Store the profile if the spec (and the quirks) allow it on this connector,
        once the answer to a StartTransaction read just before it is taken in."""
        await self._owner.transaction_known(connector_id)
        # Nested keys arrive in snake_case and limits as Decimal: back to the wire's form.
        profile = json.loads(json.dumps(snake_to_camel_case(cs_charging_profiles), default=float))
        return call_result.SetChargingProfile(status=self._owner.set_profile(connector_id, profile))

    @on_action(Action.get_composite_schedule)
    def _on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        """The composite schedule of the profiles the charger holds, or Rejected."""
        answer = self._owner.composite_schedule(connector_id, duration, charging_rate_unit)
        if answer is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        start, unit, periods = answer
        # Nested keys in the wire's camelCase: the library converts only snake_case ones.
        schedule = {
            "duration": duration,
            "startSchedule": start,
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        }
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=start,
            charging_schedule=schedule,
        )

    @on_action(Action.clear_charging_profile)
    def _on_clear_charging_profile(self, **criteria: Any) -> call_result.ClearChargingProfile:
        """Remove the matching profiles."""
        return call_result.ClearChargingProfile(status=self._owner.clear_profiles(**criteria))

    @on_action(Action.get_configuration)
    def _on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        """Report the smart-charging keys a central system asks for."""
        known = self._owner.configuration()
        wanted = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": True, "value": known[k]} for k in wanted if k in known
            ],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on_action(Action.change_configuration)
    def _on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        """Keep the sample interval the test set (Rejected); take the measurands it sends anyway."""
        if key == "MeterValuesSampledData":
            return call_result.ChangeConfiguration(status="Accepted")
        if key in self._owner.configuration():
            return call_result.ChangeConfiguration(status="Rejected")
        return call_result.ChangeConfiguration(status="NotSupported")


def _is_call(raw_msg: str | bytes) -> bool:
    """True when the frame is a CALL (a command), not an answer to one of ours."""
    try:
        message = json.loads(raw_msg)
    except ValueError:
        return False
    return isinstance(message, list) and bool(message) and message[0] == 2
