"""One OCPP 2.0.1 charging station connection, central-system side: the :class:`ChargerLink`.

:class:`ChargingStationConnection` is the 2.0.1 twin of
:class:`~controller.ocpp.v16.ChargePointConnection`: the same port
(:meth:`~ChargingStationConnection.set_profile`,
:meth:`~ChargingStationConnection.prepare`), so the dispatcher, the fail-safe,
leases, the fallback ladder and the compliance check work on it unchanged.
The messages the station sends are handled in
:mod:`controller.ocpp.handlers201`; the payloads are built and read in
:mod:`controller.ocpp.wire201`; bad frames are refused by
:class:`~controller.ocpp.router.GuardedChargePoint` with the 2.0.1 codes.

Every call goes through :meth:`~controller.ocpp.router.GuardedChargePoint.request`
(a timeout, a recorded result, given up at once when the connection closes),
never the library's ``call()``; none is awaited inside a handler.
"""

from __future__ import annotations

from typing import Any

import structlog
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.v201 import call, call_result
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from controller.clock import Clock
from controller.model import (
    CommandResult,
    CommandStatus,
    CompositeLimit,
    EventSink,
    ProfileCommand,
    ProfilePurpose,
    SessionStarted,
)
from controller.ocpp.commands import recorded, send_profile
from controller.ocpp.composite import ask_composite
from controller.ocpp.handlers201 import StationMessages
from controller.ocpp.notices201 import StationNotices
from controller.ocpp.profiles import DEFAULT_SKEW_S
from controller.ocpp.router import GuardedChargePoint, LinkClosed
from controller.ocpp.transactions import TransactionIds
from controller.ocpp.wire201 import (
    CAPABILITY_VARIABLES,
    get_variable_data,
    rate_unit_201,
    read_variables,
    set_charging_profile_payload_201,
    set_variable_data,
)

DEFAULT_CALL_TIMEOUT_S = 10.0
"""How long a station has to answer a command before it counts as ignored."""

_CALL_FAILURES = (TimeoutError, ConnectionClosed, OCPPError, UnknownCallErrorCodeError)


class ChargingStationConnection(StationMessages, StationNotices, GuardedChargePoint):
    """The central system's side of one live OCPP 2.0.1 connection."""

    _call = call
    _call_result = call_result
    _ocpp_version = "2.0.1"

    def __init__(
        self,
        charger_id: str,
        connection: ServerConnection,
        *,
        sink: EventSink,
        clock: Clock,
        transactions: TransactionIds,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        skew_s: float = DEFAULT_SKEW_S,
        voltage_v: float = 230.0,
        meter_values_interval_s: int = 0,
    ) -> None:
        self._log = structlog.get_logger(__name__).bind(charger_id=charger_id, ocpp="2.0.1")
        super().__init__(charger_id, connection, response_timeout=call_timeout_s)
        self.charger_id = charger_id
        self._ws = connection
        self._sink = sink
        self._clock = clock
        self._tx = transactions
        self._call_timeout_s = call_timeout_s
        self._skew_s = skew_s
        self._voltage_v = voltage_v
        self._meter_values_interval_s = meter_values_interval_s
        self._started: dict[str, SessionStarted] = {}
        self._session_limits: dict[str, tuple[int | None, int | None]] = {}  # by their tx id
        self.rate_unit = "A"  # until SmartChargingCtrlr.RateUnit says the station takes only W
        self.capabilities: dict[str, str] = {}

    async def run(self) -> None:
        """Receive and answer messages until the connection closes (raises ConnectionClosed)."""
        await self.serve()

    async def close(self, reason: str) -> None:
        """Close the websocket (normal closure) and wait for the close handshake."""
        await self._ws.close(reason=reason)

    # --- the ChargerLink port ---------------------------------------------

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        """Send one 2.0.1 SetChargingProfile and record the answer; never raises for it."""
        started_s = self._clock.monotonic()
        theirs = None
        if command.transaction_id is not None:
            theirs = self._tx.theirs(command.transaction_id)
        if command.purpose is ProfilePurpose.TX and theirs is None:
            status = CommandStatus.REJECTED
            detail = f"transaction {command.transaction_id} is not open on this station"
        else:
            payload = set_charging_profile_payload_201(
                command, self._clock.now(), theirs, self._skew_s, self.rate_unit, self._voltage_v
            )
            status, detail = await send_profile(self, payload, self._call_timeout_s)
        return recorded(self._log, command, status, detail, self._clock.monotonic() - started_s)

    async def composite_limit(self, connector_id: int, duration_s: int) -> CompositeLimit:
        """GetCompositeSchedule of one connector, in the charger's rate unit; never raises."""
        return await ask_composite(
            self,
            "2.0.1",
            connector_id,
            duration_s,
            self.rate_unit,
            self._voltage_v,
            self._call_timeout_s,
        )

    async def prepare(self) -> None:
        """Learn the station's smart-charging variables; ask for the meter values we need.

        Never raises: a station that does not answer keeps the defaults (A, its
        own sampling), which is logged.
        """
        request = {"getVariableData": get_variable_data(CAPABILITY_VARIABLES)}
        try:
            response = await self.request("GetVariables", request, self._call_timeout_s)
        except (*_CALL_FAILURES, LinkClosed) as exc:
            self._log.warning("GetVariables failed", error=repr(exc))
            if isinstance(exc, TimeoutError | ConnectionClosed | LinkClosed):
                return  # silent or gone: more questions would only delay the fail-safe
        else:
            self.capabilities = read_variables(_dicts(response.get("getVariableResult")))
            self.rate_unit = rate_unit_201(self.capabilities.get("SmartChargingCtrlr.RateUnit"))
            self._log.info("charger capabilities", rate_unit=self.rate_unit, **self.capabilities)
        data = set_variable_data(self._meter_values_interval_s)
        try:
            answer = await self.request(
                "SetVariables", {"setVariableData": data}, self._call_timeout_s
            )
        except (*_CALL_FAILURES, LinkClosed) as exc:
            self._log.warning("SetVariables failed", error=repr(exc))
            return
        refused = [
            r
            for r in _dicts(answer.get("setVariableResult"))
            if r.get("attributeStatus")
            not in (
                "Accepted",
                "RebootRequired",
            )
        ]
        if refused:
            self._log.info("SetVariables refused", results=refused)


def _dicts(items: Any) -> list[dict[str, Any]]:
    """The dicts of an answer's result list; anything else a station sends is skipped."""
    return (
        [item for item in items or [] if isinstance(item, dict)] if isinstance(items, list) else []
    )
