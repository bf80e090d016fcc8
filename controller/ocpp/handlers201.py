"""The messages an OCPP 2.0.1 charging station sends, answered and turned into domain events.

:class:`StationMessages` holds the ``@on`` / ``@after`` handlers of
:class:`~controller.ocpp.v201.ChargingStationConnection` (a mixin: the
library finds handlers on the instance). Each handler answers at once and
never awaits a call (it runs inside the receive loop); what needs a
follow-up goes to the sink, and the dispatcher acts on it from its own task.

Transactions: ``TransactionEvent`` Started / Updated / Ended become
:class:`SessionStarted` (after the answer, so a TxProfile follows it),
:class:`ChargerMeasurement` and :class:`SessionStopped`; the charger's string
transaction id is mapped to ours by :class:`TransactionIds`. EVSE ids are our
connector ids. A TransactionEvent's ``cableMaxCurrent`` and ``numberOfPhasesUsed``
become :class:`SessionNeeds` (cable rating, phases) whenever they change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import structlog
from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from controller.clock import Clock
from controller.model import (
    ChargerBooted,
    ConnectorStatusChanged,
    EventSink,
    ExternalLimitChanged,
    SessionStarted,
    SessionStopped,
)
from controller.ocpp.measurands import measurement, parse_meter_values
from controller.ocpp.profiles import wire_time
from controller.ocpp.transactions import TransactionIds
from controller.ocpp.wire201 import limit_from_schedules, needs_from, session_limits_from

HEARTBEAT_INTERVAL_S = 30
"""Heartbeat interval we give stations at boot: a silent link shows within a minute."""

_F = TypeVar("_F", bound=Callable[..., Any])
_ACCEPTED = {"status": "Accepted"}


def on201(action: Action) -> Callable[[_F], _F]:
    """The library's untyped ``@on``, typed, for a 2.0.1 action."""
    return cast("Callable[[_F], _F]", on(action))


def after201(action: Action) -> Callable[[_F], _F]:
    """The library's untyped ``@after``, typed likewise."""
    return cast("Callable[[_F], _F]", after(action))


def _camel(data: Any) -> Any:
    """Nested payload keys back to the wire's camelCase (the library hands snake_case)."""
    return snake_to_camel_case(data) if data is not None else None


class StationMessages:
    """Handlers for what a 2.0.1 station sends; the connection class supplies the state."""

    charger_id: str
    _sink: EventSink
    _clock: Clock
    _log: structlog.typing.FilteringBoundLogger
    _tx: TransactionIds
    _voltage_v: float
    _started: dict[str, SessionStarted]
    _session_limits: dict[str, tuple[int | None, int | None]]

    # --- boot, heartbeat, status, authorization ----------------------------

    @on201(Action.boot_notification)
    def _on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        """Accept every boot of an admitted station; the heartbeat keeps the link visible."""
        return call_result.BootNotification(
            current_time=wire_time(self._clock.now()),
            interval=HEARTBEAT_INTERVAL_S,
            status="Accepted",
        )

    @after201(Action.boot_notification)
    def _after_boot_notification(
        self, charging_station: dict[str, Any], reason: str = "", **_: Any
    ) -> None:
        """Announce the boot once the station has its answer, so commands come after it."""
        station = _camel(charging_station)
        vendor, model = str(station.get("vendorName", "")), str(station.get("model", ""))
        self._log.info("charger_booted", vendor=vendor, model=model, reason=str(reason))
        self._sink(
            ChargerBooted(
                self.charger_id,
                self._clock.monotonic(),
                vendor=vendor,
                model=model,
                firmware=str(station.get("firmwareVersion", "")),
            )
        )

    @on201(Action.heartbeat)
    def _on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        """Give the station our time."""
        return call_result.Heartbeat(current_time=wire_time(self._clock.now()))

    @on201(Action.authorize)
    def _on_authorize(self, **_: Any) -> call_result.Authorize:
        """Accept every token: Headroom manages load, not access."""
        return call_result.Authorize(id_token_info=_ACCEPTED)

    @on201(Action.status_notification)
    def _on_status_notification(
        self, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> call_result.StatusNotification:
        """Report the EVSE's new status (2.0.1: Available, Occupied, Faulted...)."""
        self._sink(
            ConnectorStatusChanged(
                self.charger_id,
                evse_id,
                self._clock.monotonic(),
                status=str(connector_status),
                info=f"connector {connector_id}",
            )
        )
        return call_result.StatusNotification()

    # --- transactions and meter values -----------------------------------

    @on201(Action.transaction_event)
    def _on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        call_unique_id: str,
        meter_value: list[dict[str, Any]] | None = None,
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.TransactionEvent:
        """Map the transaction to our id; report its meter values and its end at once."""
        info = _camel(transaction_info)
        theirs = str(info["transactionId"])
        evse_id = int(evse["id"]) if evse else self._tx.evse_of(theirs)
        values = _camel(meter_value) or []
        ours = self._tx.ours(theirs, evse_id)
        now = self._clock.monotonic()
        if event_type == "Started":
            fields = parse_meter_values(values) if values else None
            energy = fields.energy_wh if fields else None
            self._started[call_unique_id] = SessionStarted(
                self.charger_id,
                evse_id or 0,
                ours,
                now,
                id_tag=str((_camel(id_token) or {}).get("idToken", "")),
                meter_start_wh=energy or 0.0,
            )
        elif evse_id is None:
            self._log.warning("transaction_without_evse", transaction_id=theirs)
        elif event_type == "Ended":
            self._measure(evse_id, values, ours)
            energy = parse_meter_values(values).energy_wh if values else None
            reason = str(info.get("stoppedReason", ""))
            self._log.info("session_stopped", transaction_id=ours, theirs=theirs, reason=reason)
            self._tx.end(theirs)
            self._sink(SessionStopped(self.charger_id, ours, now, energy or 0.0, reason))
        else:
            self._measure(evse_id, values, ours)
        return call_result.TransactionEvent(id_token_info=_ACCEPTED if id_token else None)

    @after201(Action.transaction_event)
    def _after_transaction_event(
        self,
        call_unique_id: str,
        event_type: str,
        transaction_info: dict[str, Any],
        meter_value: list[dict[str, Any]] | None = None,
        evse: dict[str, Any] | None = None,
        cable_max_current: int | None = None,
        number_of_phases_used: int | None = None,
        **_: Any,
    ) -> None:
        """Announce a start once the station has its answer, then its first meter values;
        then the cable's rating and the phases used, when the station says them anew."""
        event = self._started.pop(call_unique_id, None)
        if event is not None:
            self._log.info(
                "session_started",
                connector_id=event.connector_id,
                transaction_id=event.transaction_id,
            )
            self._sink(event)
            self._measure(event.connector_id, _camel(meter_value) or [], event.transaction_id)
        theirs = str(_camel(transaction_info)["transactionId"])
        if event_type == "Ended":
            self._session_limits.pop(theirs, None)
            return
        told = (cable_max_current, number_of_phases_used)
        evse_id = int(evse["id"]) if evse else self._tx.evse_of(theirs)
        if evse_id is None or self._session_limits.get(theirs) == told:
            return  # said before: every Updated repeats them
        self._session_limits[theirs] = told
        limits = session_limits_from(self.charger_id, evse_id, self._clock.monotonic(), *told)
        if limits is not None:
            cable_a, phases = limits.cable_max_a, limits.phases
            self._log.info("session_limits", evse_id=evse_id, cable_max_a=cable_a, phases=phases)
            self._sink(limits)

    @on201(Action.meter_values)
    def _on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> call_result.MeterValues:
        """Meter values outside a TransactionEvent; EVSE 0 (the station's main meter) unused."""
        if evse_id > 0:
            self._measure(evse_id, _camel(meter_value), self._tx.on_evse(evse_id))
        return call_result.MeterValues()

    def _measure(
        self, evse_id: int, meter_value: list[dict[str, Any]], transaction_id: int | None
    ) -> None:
        """One ChargerMeasurement from a meterValue list, if it holds anything we read."""
        if not meter_value:
            return
        fields = parse_meter_values(meter_value)
        if fields.problems:
            self._log.warning("meter_values_unreadable", problems=list(fields.problems))
        read = (*fields.current_a, fields.power_w, fields.offered_a, fields.soc_percent)
        if all(v is None for v in read) and fields.energy_wh is None:
            return
        self._sink(
            measurement(self.charger_id, evse_id, self._clock.monotonic(), fields, transaction_id)
        )

    # --- smart charging: the EV's needs, limits set by others --------------

    @on201(Action.notify_ev_charging_needs)
    def _on_notify_ev_charging_needs(
        self, charging_needs: dict[str, Any], evse_id: int, **_: Any
    ) -> call_result.NotifyEVChargingNeeds:
        """The car's departure, energy and current limits into the session; a schedule follows."""
        needs = needs_from(
            self.charger_id, evse_id, self._clock.monotonic(), _camel(charging_needs)
        )
        self._log.info(
            "ev_charging_needs",
            evse_id=evse_id,
            departure_at=needs.departure_at,
            energy_wh=needs.energy_wh,
            ev_min_a=needs.ev_min_a,
            ev_max_a=needs.ev_max_a,
        )
        self._sink(needs)
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on201(Action.notify_charging_limit)
    def _on_notify_charging_limit(
        self,
        charging_limit: dict[str, Any],
        charging_schedule: list[dict[str, Any]] | None = None,
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.NotifyChargingLimit:
        """Record a limit someone else set; the allocation keeps under it from the next decision."""
        source = str(_camel(charging_limit).get("chargingLimitSource", "Other"))
        limit_a = limit_from_schedules(_camel(charging_schedule) or [], self._voltage_v)
        evse = evse_id or 0
        self._log.warning("external_charging_limit", evse_id=evse, source=source, limit_a=limit_a)
        if limit_a is not None:
            self._sink(
                ExternalLimitChanged(
                    self.charger_id, evse, self._clock.monotonic(), limit_a, source
                )
            )
        return call_result.NotifyChargingLimit()

    @on201(Action.cleared_charging_limit)
    def _on_cleared_charging_limit(
        self, charging_limit_source: str, evse_id: int | None = None, **_: Any
    ) -> call_result.ClearedChargingLimit:
        """The limit from that source no longer holds."""
        evse, source = evse_id or 0, str(charging_limit_source)
        self._log.info("external_charging_limit_cleared", evse_id=evse, source=source)
        self._sink(
            ExternalLimitChanged(self.charger_id, evse, self._clock.monotonic(), None, source)
        )
        return call_result.ClearedChargingLimit()
