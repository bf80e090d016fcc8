"""One OCPP 1.6J charger connection, central-system side: wire messages ↔ domain events.

:class:`ChargePointConnection` wraps the ``ocpp`` library's untyped
``ChargePoint`` (one instance per websocket). Its ``@on`` handlers answer the
charger and turn each message into a :mod:`controller.model` event for the
:data:`EventSink`; its :meth:`~ChargePointConnection.set_profile` is the
:class:`ChargerLink` the dispatcher commands the charger through.

A handler must never await a CALL of ours (handlers run inside the receive
loop, which would wait for its own answer): work that needs the charger's
answer runs from the dispatcher (:meth:`ChargePointConnection.prepare`).
Our CALLs go through :meth:`~controller.ocpp.router.GuardedChargePoint.request`,
never the library's ``call()`` (whose default ``suppress=True`` would hide a
charger's CALLERROR).

Bad input never ends the connection: the receive path is
:class:`~controller.ocpp.router.GuardedChargePoint`'s. MeterValues, the
message every charger sends every few seconds, skips the library: it is
checked against the OCPP 1.6 schema compiled once (:func:`fast_check`) and
read straight from the wire's camelCase payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import structlog
from fastjsonschema import JsonSchemaException
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, DataTransferStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from controller.clock import Clock
from controller.model import (
    ChargerBooted,
    CommandResult,
    CompositeLimit,
    ConnectorStatusChanged,
    EventSink,
    ProfileCommand,
    SessionStarted,
    SessionStopped,
)
from controller.ocpp.commands import recorded, send_profile
from controller.ocpp.composite import ask_composite
from controller.ocpp.measurands import measurement, parse_meter_values
from controller.ocpp.profiles import DEFAULT_SKEW_S, set_charging_profile_payload, wire_time
from controller.ocpp.router import GuardedChargePoint, LinkClosed
from controller.ocpp.rpc import ErrorCode, Frame, FrameFault, fast_check, payload_fault

HEARTBEAT_INTERVAL_S = 30
"""Heartbeat interval we give chargers at boot: a silent link shows within a minute."""

DEFAULT_CALL_TIMEOUT_S = 10.0
"""How long a charger has to answer a command before it counts as ignored."""

_F = TypeVar("_F", bound=Callable[..., Any])


def on_action(action: Action) -> Callable[[_F], _F]:
    """The library's untyped ``@on`` decorator, typed so handlers keep their signatures."""
    return cast("Callable[[_F], _F]", on(action))


def after_action(action: Action) -> Callable[[_F], _F]:
    """The library's untyped ``@after`` decorator, typed likewise."""
    return cast("Callable[[_F], _F]", after(action))


SAMPLED_DATA = "Current.Import,Current.Offered,Power.Active.Import,Energy.Active.Import.Register"
SAMPLED_DATA_MINIMAL = "Current.Import,Power.Active.Import"


def rate_unit(allowed: str | None) -> str:
    """The unit to send limits in, from ``ChargingScheduleAllowedChargingRateUnit``.

    A (``Current``) wherever the charger allows it or says nothing; W only when it
    allows ``Power`` alone.
    """
    units = {u.strip().lower() for u in (allowed or "").split(",") if u.strip()}
    return "W" if units == {"power"} else "A"


class ChargePointConnection(GuardedChargePoint):
    """The central system's side of one live OCPP 1.6J connection."""

    charger_id: str

    def __init__(
        self,
        charger_id: str,
        connection: ServerConnection,
        *,
        sink: EventSink,
        clock: Clock,
        next_transaction_id: Callable[[], int],
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        skew_s: float = DEFAULT_SKEW_S,
        voltage_v: float = 230.0,
        meter_values_interval_s: int = 0,
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=call_timeout_s)
        self.charger_id = charger_id
        self._ws = connection
        self._sink = sink
        self._clock = clock
        self._next_transaction_id = next_transaction_id
        self._call_timeout_s = call_timeout_s
        self._skew_s = skew_s
        self._voltage_v = voltage_v
        self._meter_values_interval_s = meter_values_interval_s
        self.rate_unit = "A"  # until GetConfiguration says the charger takes only W
        self._started: dict[str, SessionStarted] = {}  # by CALL id, until the answer is out
        self._log = structlog.get_logger(__name__).bind(charger_id=charger_id)

    async def run(self) -> None:
        """Receive and answer messages until the connection closes (raises ConnectionClosed)."""
        await self.serve()

    async def close(self, reason: str) -> None:
        """Close the websocket (normal closure) and wait for the close handshake."""
        await self._ws.close(reason=reason)

    # --- the ChargerLink port ---------------------------------------------

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        """Send one SetChargingProfile and record the answer; never raises for the answer."""
        started_s = self._clock.monotonic()
        payload = set_charging_profile_payload(
            command, self._clock.now(), self._skew_s, self.rate_unit, self._voltage_v
        )
        status, detail = await send_profile(self, payload, self._call_timeout_s)
        return recorded(self._log, command, status, detail, self._clock.monotonic() - started_s)

    async def composite_limit(self, connector_id: int, duration_s: int) -> CompositeLimit:
        """GetCompositeSchedule of one connector, in the charger's rate unit; never raises."""
        return await ask_composite(
            self,
            "1.6",
            connector_id,
            duration_s,
            self.rate_unit,
            self._voltage_v,
            self._call_timeout_s,
        )

    async def prepare(self) -> None:
        """Learn what the charger takes and ask for the meter values the loop needs.

        Never raises: a charger that does not answer keeps the defaults (A, its own
        sampling), which is logged.
        """
        keys = await self._get_configuration(
            ["ChargingScheduleAllowedChargingRateUnit", "MeterValueSampleInterval"]
        )
        if keys is None:
            return  # silent or gone: waiting on more questions would only delay the fail-safe
        self.rate_unit = rate_unit(keys.get("ChargingScheduleAllowedChargingRateUnit"))
        self._log.info("charger capabilities", rate_unit=self.rate_unit, keys=keys)
        if self._meter_values_interval_s > 0:
            await self._change_configuration(
                "MeterValueSampleInterval", str(self._meter_values_interval_s)
            )
            if not await self._change_configuration("MeterValuesSampledData", SAMPLED_DATA):
                await self._change_configuration("MeterValuesSampledData", SAMPLED_DATA_MINIMAL)

    async def _get_configuration(self, keys: list[str]) -> dict[str, str] | None:
        """The keys the charger reports; ``{}`` if it refuses, ``None`` if it does not answer."""
        try:
            response = await self.request("GetConfiguration", {"key": keys}, self._call_timeout_s)
        except (OCPPError, UnknownCallErrorCodeError) as exc:
            self._log.warning("GetConfiguration refused", error=repr(exc))
            return {}
        except (TimeoutError, ConnectionClosed, LinkClosed) as exc:
            self._log.warning("GetConfiguration unanswered", error=repr(exc))
            return None
        entries = response.get("configurationKey") or []
        if not isinstance(entries, list):
            self._log.warning("GetConfiguration answer unreadable", answer=repr(response)[:200])
            return {}
        return {str(e.get("key")): str(e.get("value", "")) for e in entries if isinstance(e, dict)}

    async def _change_configuration(self, key: str, value: str) -> bool:
        try:
            response = await self.request(
                "ChangeConfiguration", {"key": key, "value": value}, self._call_timeout_s
            )
        except (
            TimeoutError,
            ConnectionClosed,
            LinkClosed,
            OCPPError,
            UnknownCallErrorCodeError,
        ) as exc:
            self._log.warning("ChangeConfiguration failed", key=key, error=repr(exc))
            return False
        status = str(response.get("status"))
        if status not in ("Accepted", "RebootRequired"):
            self._log.info("ChangeConfiguration refused", key=key, value=value, status=status)
        return status in ("Accepted", "RebootRequired")

    async def _route_call(self, frame: Frame, raw: str | bytes) -> None:
        """MeterValues on the fast path; every other CALL through the library's handlers."""
        if frame.action != "MeterValues":
            await super()._route_call(frame, raw)
            return
        payload = frame.payload
        try:
            fast_check("MeterValues")(payload)
        except JsonSchemaException as exc:
            # The schema rules name the fault precisely; the compiled check only says "no".
            fault = payload_fault(frame) or FrameFault(
                ErrorCode.FORMATION_VIOLATION, f"MeterValues: {exc}", frame.unique_id
            )
            await self._refuse(fault, raw)
            return
        self._take_meter_values(
            payload["connectorId"], payload["meterValue"], payload.get("transactionId")
        )
        await self._send(f"[3,{json.dumps(frame.unique_id)},{{}}]")

    # --- handlers: each answers at once and hands an event to the sink -------

    @on_action(Action.boot_notification)
    def _on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        """Accept every boot of an admitted charger; the heartbeat keeps the link visible."""
        return call_result.BootNotification(
            current_time=wire_time(self._clock.now()),
            interval=HEARTBEAT_INTERVAL_S,
            status=RegistrationStatus.accepted,
        )

    @after_action(Action.boot_notification)
    def _after_boot_notification(
        self,
        charge_point_vendor: str,
        charge_point_model: str,
        firmware_version: str = "",
        **_: Any,
    ) -> None:
        """Announce the boot once the charger has its answer, so commands come after it."""
        self._log.info("charger_booted", vendor=charge_point_vendor, model=charge_point_model)
        self._sink(
            ChargerBooted(
                self.charger_id,
                self._clock.monotonic(),
                vendor=charge_point_vendor,
                model=charge_point_model,
                firmware=firmware_version,
            )
        )

    @on_action(Action.heartbeat)
    def _on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        """Give the charger our time."""
        return call_result.Heartbeat(current_time=wire_time(self._clock.now()))

    @on_action(Action.authorize)
    def _on_authorize(self, **_: Any) -> call_result.Authorize:
        """Accept every id tag: Headroom manages load, not access."""
        return call_result.Authorize(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))

    @on_action(Action.status_notification)
    def _on_status_notification(
        self,
        connector_id: int,
        error_code: str,
        status: str,
        info: str = "",
        vendor_error_code: str = "",
        **_: Any,
    ) -> call_result.StatusNotification:
        """Report the connector's new status."""
        self._sink(
            ConnectorStatusChanged(
                self.charger_id,
                connector_id,
                self._clock.monotonic(),
                status=str(status),
                error_code=str(error_code),
                vendor_error_code=vendor_error_code,
                info=info,
            )
        )
        return call_result.StatusNotification()

    @on_action(Action.start_transaction)
    def _on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, call_unique_id: str, **_: Any
    ) -> call_result.StartTransaction:
        """Give the transaction our site-wide id; the event follows the answer."""
        transaction_id = self._next_transaction_id()
        self._started[call_unique_id] = SessionStarted(
            self.charger_id,
            connector_id,
            transaction_id,
            self._clock.monotonic(),
            id_tag=id_tag,
            meter_start_wh=float(meter_start),
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id,
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted),
        )

    @after_action(Action.start_transaction)
    def _after_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        """Announce the session once the charger knows its id (a TxProfile needs it)."""
        event = self._started.pop(call_unique_id, None)
        if event is not None:
            self._log.info("session_started", **_session_fields(event))
            self._sink(event)

    @on_action(Action.stop_transaction)
    def _on_stop_transaction(
        self, meter_stop: int, transaction_id: int, reason: str = "", **_: Any
    ) -> call_result.StopTransaction:
        """Report the end of a transaction."""
        self._log.info("session_stopped", transaction_id=transaction_id, reason=str(reason))
        self._sink(
            SessionStopped(
                self.charger_id,
                transaction_id,
                self._clock.monotonic(),
                meter_stop_wh=float(meter_stop),
                reason=str(reason),
            )
        )
        return call_result.StopTransaction(
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )

    @on_action(Action.data_transfer)
    def _on_data_transfer(
        self, vendor_id: str, message_id: str = "", **_: Any
    ) -> call_result.DataTransfer:
        """No vendor extensions here: the spec's answer for a vendor we do not know."""
        self._log.info("data_transfer_ignored", vendor_id=vendor_id, message_id=message_id)
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on_action(Action.firmware_status_notification)
    def _on_firmware_status(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        """Acknowledge; a firmware update is the operator's business, logged for them."""
        self._log.info("firmware_status", status=str(status))
        return call_result.FirmwareStatusNotification()

    @on_action(Action.diagnostics_status_notification)
    def _on_diagnostics_status(
        self, status: str, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        """Acknowledge; logged for the operator."""
        self._log.info("diagnostics_status", status=str(status))
        return call_result.DiagnosticsStatusNotification()

    def _take_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], transaction_id: int | None
    ) -> None:
        """Convert the latest sample set to A, W and Wh; log what could not be read."""
        fields = parse_meter_values(meter_value)
        if fields.problems:
            self._log.warning("meter_values_unreadable", problems=list(fields.problems))
        self._sink(
            measurement(
                self.charger_id, connector_id, self._clock.monotonic(), fields, transaction_id
            )
        )


def _session_fields(event: SessionStarted) -> dict[str, Any]:
    """Log fields of a session start."""
    return {
        "connector_id": event.connector_id,
        "transaction_id": event.transaction_id,
        "meter_start_wh": event.meter_start_wh,
    }
