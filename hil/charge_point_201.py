"""A simulated OCPP 2.0.1 charging station with EVs, over a real websocket.

:class:`SimulatedStation` is :class:`~hil.charge_point.SimulatedChargePoint`
speaking 2.0.1: it boots (BootNotification, a SecurityEventNotification as
real stations send at start-up, a StatusNotification per EVSE), runs its
transactions as TransactionEvent Started / Updated (the periodic meter
values) / Ended with its own string transaction ids, answers GetVariables
and SetVariables, and takes 2.0.1 SetChargingProfile requests, which it
applies with the same composite rule (:mod:`hil.smart_charging`, after
translating the profile to the 1.6 shape the store keeps). It can tell the
CSMS an EV's charging needs and a limit set by someone else, and says in each
TransactionEvent the phases its car uses and its cable's rating. The quirks of
:class:`~hil.quirks.Quirks` apply as for 1.6 (A-only/W-only by
``SmartChargingCtrlr.RateUnit``). One EVSE per connector.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v201 import call
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from controller.ocpp.profiles import wire_time
from hil.charge_point import SimulatedChargePoint, _Session
from hil.charger_side_201 import StationSide
from hil.ev import EV

_PURPOSES_16 = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}
_STATUS_201 = {"Preparing": "Occupied", "Charging": "Occupied", "Available": "Available"}


class SimulatedStation(SimulatedChargePoint):
    """An AC station with ``n_connectors`` EVSEs (one connector each), speaking OCPP 2.0.1."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        subprotocols: Sequence[str] = ("ocpp2.0.1",),
        cable_max_a: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(charger_id, url, **kw)
        self.cable_max_a = cable_max_a
        """The rating of the cable plugged in (told as ``cableMaxCurrent``; the offer never
        exceeds it); ``None``: a cable as strong as the station, not told."""
        self.subprotocols = [Subprotocol(p) for p in subprotocols]
        self.negotiated: str | None = None
        self.received_201: list[tuple[int, dict[str, Any]]] = []  # as on the wire
        self._tx_names: dict[int, str] = {}  # EVSE → the station's transaction id
        self._tx_counter = itertools.count(1)
        self._seq = itertools.count()

    @property
    def side(self) -> StationSide:
        """The station's protocol end (for tests: the variables the CSMS set)."""
        assert isinstance(self._cp, StationSide)
        return self._cp

    def transaction_name(self, evse_id: int) -> str | None:
        """The station's own id of the transaction on ``evse_id``."""
        return self._tx_names.get(evse_id)

    async def _open(self) -> None:
        """Open the websocket offering 2.0.1 (or what the test says) and start receiving."""
        headers = {}
        if self._password is not None:
            headers["Authorization"] = build_authorization_basic(self.charger_id, self._password)
        tls: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        self._ws = await connect(
            self.url, subprotocols=self.subprotocols, additional_headers=headers, **tls
        )
        self.negotiated = self._ws.subprotocol
        self._cp = StationSide(self, self._ws, self._call_timeout_s)
        self._receive_task = asyncio.create_task(self._receive(), name=f"{self.charger_id}-recv")

    async def _boot(self) -> None:
        """BootNotification, a start-up security event, then the status of each EVSE."""
        answer = await self._call(
            call.BootNotification(
                charging_station={"model": "SimAC201", "vendor_name": "Headroom"},
                reason="PowerUp",
            )
        )
        if not self._heartbeat_fixed:
            self._heartbeat_s = float(answer.interval)
        await self._call(
            call.SecurityEventNotification(
                type="StartupOfTheDevice", timestamp=wire_time(self._clock.now())
            )
        )
        for evse_id in range(1, self.n_connectors + 1):
            await self._status(evse_id, "Charging" if evse_id in self._sessions else "Available")

    async def _status(self, connector_id: int, status: str) -> None:
        """StatusNotification for one EVSE (2.0.1 has no EVSE 0 status)."""
        if connector_id == 0:
            return
        await self._call(
            call.StatusNotification(
                timestamp=wire_time(self._clock.now()),
                connector_status=_STATUS_201.get(status, status),
                evse_id=connector_id,
                connector_id=1,
            )
        )

    async def _heartbeat(self) -> None:
        """One Heartbeat; counted once answered."""
        await self._call(call.Heartbeat())
        self.heartbeats_answered += 1

    # --- transactions -----------------------------------------------------

    async def plug_in(self, connector_id: int, ev: EV) -> int:
        """Plug ``ev`` in: TransactionEvent(Started), Occupied. Returns the local sequence id."""
        if connector_id in self._sessions:
            raise ValueError(f"EVSE {connector_id} already has a session")
        number = next(self._tx_counter)
        name = f"{self.charger_id}-tx-{number}"
        self._tx_names[connector_id] = name
        now = self._clock.now()

        self._sessions[connector_id] = _Session(number, ev, now, self._register_wh[connector_id])
        await self._transaction_event(
            "Started",
            connector_id,
            "CablePluggedIn",
            {"transactionId": name, "chargingState": "EVConnected"},
            [self._energy_sample(connector_id)],
            id_token={"idToken": f"SIM-{self.charger_id}", "type": "ISO14443"},
        )
        ev.step(self._clock.monotonic(), self.offered_a(connector_id))
        await self._status(connector_id, "Charging")
        return number

    async def unplug(self, connector_id: int) -> None:
        """Unplug: TransactionEvent(Ended) with the energy register, then Available."""
        if connector_id not in self._sessions:
            raise ValueError(f"EVSE {connector_id} has no session")
        self._step(connector_id)
        session = self._sessions.pop(connector_id)
        self._register_wh[connector_id] += session.ev.charged_wh
        self._store.end_transaction(connector_id)
        name = self._tx_names.pop(connector_id)
        await self._transaction_event(
            "Ended",
            connector_id,
            "EVCommunicationLost",
            {"transactionId": name, "stoppedReason": "EVDisconnected"},
            [self._energy_sample(connector_id)],
        )
        await self._status(connector_id, "Available")

    async def _send_meter_values(self, connector_id: int) -> None:
        """TransactionEvent(Updated) with currents, power, offer, energy and SoC."""
        session = self._sessions.get(connector_id)
        name = self._tx_names.get(connector_id)
        if session is None or name is None:
            return
        draw = self._step(connector_id)
        sampled = [
            _sample("Current.Import", round(a, 1), "A", f"L{phase + 1}")
            for phase, a in enumerate(draw)
        ]
        sampled += [
            _sample("Power.Active.Import", round(sum(draw) * self.voltage_v / 1000, 3), "kW"),
            _sample("Current.Offered", round(self.offered_a(connector_id), 1), "A"),
            _sample("SoC", round(session.ev.soc * 100, 1), "Percent"),
            *self._energy_sample(connector_id)["sampledValue"],
        ]
        meter = [{"timestamp": wire_time(self._clock.now()), "sampledValue": sampled}]
        info = {"transactionId": name, "chargingState": "Charging"}
        await self._transaction_event("Updated", connector_id, "MeterValuePeriodic", info, meter)

    async def _transaction_event(
        self,
        event_type: str,
        evse_id: int,
        trigger: str,
        info: dict[str, Any],
        meter_value: list[dict[str, Any]],
        id_token: dict[str, Any] | None = None,
    ) -> None:
        session = self._sessions.get(evse_id)
        await self._call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=wire_time(self._clock.now()),
                trigger_reason=trigger,
                seq_no=next(self._seq),
                transaction_info=info,
                meter_value=meter_value,
                evse={"id": evse_id, "connectorId": 1},
                id_token=id_token,
                number_of_phases_used=len(session.ev.phases) if session else None,
                cable_max_current=self.cable_max_a if session else None,
            )
        )

    def _connector_limit_a(self, connector_id: int, at: datetime) -> float:
        """The profiles' limit, within the cable's rating."""
        limit_a = super()._connector_limit_a(connector_id, at)
        return limit_a if self.cable_max_a is None else min(limit_a, self.cable_max_a)

    def _energy_sample(self, evse_id: int) -> dict[str, Any]:
        """A meterValue entry with the EVSE's energy register in Wh."""
        session = self._sessions.get(evse_id)
        energy_wh = self._register_wh[evse_id] + (session.ev.charged_wh if session else 0.0)
        sample = _sample("Energy.Active.Import.Register", round(energy_wh), "Wh")
        return {"timestamp": wire_time(self._clock.now()), "sampledValue": [sample]}

    # --- what an EV and others tell the CSMS -------------------------------

    async def notify_ev_charging_needs(
        self,
        evse_id: int,
        departure: datetime,
        energy_wh: float,
        ev_min_a: float,
        ev_max_a: float,
    ) -> str:
        """NotifyEVChargingNeeds as ISO 15118 would bring it; the CSMS's status."""
        answer = await self._call(
            call.NotifyEVChargingNeeds(
                evse_id=evse_id,
                charging_needs={
                    "requestedEnergyTransfer": "AC_three_phase",
                    "departureTime": wire_time(departure),
                    "acChargingParameters": {
                        "energyAmount": round(energy_wh),
                        "evMinCurrent": round(ev_min_a),
                        "evMaxCurrent": round(ev_max_a),
                        "evMaxVoltage": round(self.voltage_v),
                    },
                },
            )
        )
        return str(answer.status)

    async def notify_charging_limit(
        self, evse_id: int | None, limit: float, unit: str = "A", source: str = "EMS"
    ) -> None:
        """NotifyChargingLimit: someone else (a local EMS, the grid operator) limits us."""
        await self._call(
            call.NotifyChargingLimit(
                charging_limit={"chargingLimitSource": source, "isGridCritical": False},
                charging_schedule=[
                    {
                        "id": 1,
                        "chargingRateUnit": unit,
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                    }
                ],
                evse_id=evse_id,
            )
        )

    async def cleared_charging_limit(self, evse_id: int | None, source: str = "EMS") -> None:
        """ClearedChargingLimit: the limit from ``source`` is gone."""
        await self._call(call.ClearedChargingLimit(charging_limit_source=source, evse_id=evse_id))

    # --- profiles and variables (called from the receive loop) ------------

    def set_profile_201(self, evse_id: int, profile: dict[str, Any]) -> str:
        """Translate a 2.0.1 profile to the stored (1.6) shape and apply the same rules."""
        schedules = profile["chargingSchedule"]
        if len(schedules) != 1:
            return "Rejected"  # one schedule per profile is what AC stations take
        purpose = profile["chargingProfilePurpose"]
        stored = {
            "chargingProfileId": profile["id"],
            "stackLevel": profile["stackLevel"],
            "chargingProfilePurpose": _PURPOSES_16.get(purpose, purpose),
            "chargingProfileKind": profile["chargingProfileKind"],
            "chargingSchedule": schedules[0],
        }
        for key in ("validFrom", "validTo"):
            if key in profile:
                stored[key] = profile[key]
        if "transactionId" in profile:
            session = self._sessions.get(evse_id)
            mine = self._tx_names.get(evse_id)
            stored["transactionId"] = (
                session.transaction_id if session and profile["transactionId"] == mine else -1
            )
        status = self.set_profile(evse_id, stored)
        if status == "Accepted":
            self.received_201.append((evse_id, profile))
        return status

    def variables(self) -> dict[str, str]:
        """The device-model variables this station reports."""
        units = {"Current": "A", "Power": "W", "Current,Power": "A,W"}[self.quirks.rate_units]
        return {
            "SmartChargingCtrlr.RateUnit": units,
            "SmartChargingCtrlr.ProfileStackLevel": "8",
            "SmartChargingCtrlr.Entries": "24",
            "SmartChargingCtrlr.PeriodsPerSchedule": "24",
            "SampledDataCtrlr.TxUpdatedInterval": str(round(self.meter_interval_s)),
        }


def _sample(measurand: str, value: float, unit: str, phase: str | None = None) -> dict[str, Any]:
    """One 2.0.1 sampledValue: a number with its unitOfMeasure."""
    sample: dict[str, Any] = {
        "value": value,
        "measurand": measurand,
        "unitOfMeasure": {"unit": unit},
    }
    if phase is not None:
        sample["phase"] = phase
    return sample
