"""A simulated OCPP 1.6J charge point with EVs, over a real websocket.

:class:`SimulatedChargePoint` connects to a central system as a charger
would: it boots, reports its connectors, starts and stops transactions when
an :class:`~hil.ev.EV` is plugged in or out, applies the charging profiles it
receives with the composite rule of :mod:`hil.smart_charging`, and every
``meter_interval_s`` sends MeterValues with what its EVs draw. Tests use it
as the fake charger; the demo and HIL runner use it as the rig.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from controller.clock import Clock, SystemClock
from controller.ocpp.profiles import wire_time
from controller.ocpp.v16 import on_action
from hil.ev import EV, PhaseDraw
from hil.smart_charging import ProfileStore, best_limit_a, share_cap

ProfileHook = Callable[[int, dict[str, Any]], None]

_log = structlog.get_logger(__name__)


@dataclass
class _Session:
    """A running transaction on one connector."""

    transaction_id: int
    ev: EV
    started_at: datetime
    meter_start_wh: float


class _ChargerSide(ChargePoint):  # type: ignore[misc]  # the ocpp library is untyped
    """The library's ChargePoint, answering the central system's CALLs for its owner."""

    def __init__(self, owner: SimulatedChargePoint, connection: ClientConnection, timeout_s: float):
        super().__init__(owner.charger_id, connection, response_timeout=timeout_s)
        self._owner = owner

    @on_action(Action.set_charging_profile)
    def _on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        """Store the profile if the spec allows it on this connector."""
        # Nested keys arrive in snake_case and limits as Decimal: back to the wire's form.
        profile = json.loads(json.dumps(snake_to_camel_case(cs_charging_profiles), default=float))
        return call_result.SetChargingProfile(status=self._owner.set_profile(connector_id, profile))

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


class SimulatedChargePoint:
    """An AC charger with ``n_connectors`` connectors rated ``max_current_a`` per phase each."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        n_connectors: int = 1,
        max_current_a: float = 32.0,
        meter_interval_s: float = 1.0,
        voltage_v: float = 230.0,
        clock: Clock | None = None,
        on_profile: ProfileHook | None = None,
        call_timeout_s: float = 10.0,
    ) -> None:
        self.charger_id = charger_id
        self.url = f"{url.rstrip('/')}/{charger_id}"  # url: the central system's ``…/ocpp``
        self.n_connectors = n_connectors
        self.max_current_a = max_current_a
        self.meter_interval_s = meter_interval_s
        self.voltage_v = voltage_v
        self.on_profile = on_profile
        self.received_profiles: list[tuple[int, dict[str, Any]]] = []
        self._clock: Clock = clock or SystemClock()
        self._call_timeout_s = call_timeout_s
        self._store = ProfileStore(n_connectors)
        self._sessions: dict[int, _Session] = {}
        self._register_wh = dict.fromkeys(range(1, n_connectors + 1), 0.0)
        self._ws: ClientConnection | None = None
        self._cp: _ChargerSide | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._meter_task: asyncio.Task[None] | None = None
        self._metering = False
        self._log = _log.bind(charger_id=charger_id)

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Connect, boot, report every connector Available, and start metering."""
        self._ws = await connect(self.url, subprotocols=[Subprotocol("ocpp1.6")])
        self._cp = _ChargerSide(self, self._ws, self._call_timeout_s)
        self._receive_task = asyncio.create_task(self._receive(), name=f"{self.charger_id}-recv")
        try:
            await self._call(
                call.BootNotification(charge_point_model="SimAC", charge_point_vendor="Headroom")
            )
            for connector_id in range(self.n_connectors + 1):  # 0 = the charger itself
                await self._status(connector_id, "Available")
        except BaseException:
            await self.stop()
            raise
        self._metering = True
        self._meter_task = asyncio.create_task(self._meter_loop(), name=f"{self.charger_id}-meter")

    async def stop(self) -> None:
        """Stop metering, close the websocket cleanly and wait for every task to end."""
        # The flag as well as the cancel: Python 3.11's wait_for (inside the library's
        # call) can swallow a cancellation that races with an answer.
        self._metering = False
        if self._meter_task is not None:
            self._meter_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._meter_task
            self._meter_task = None
        if self._ws is not None:
            await self._ws.close()  # ends the receive loop
        if self._receive_task is not None:
            await self._receive_task
            self._receive_task = None

    async def _receive(self) -> None:
        """Run the library's receive loop until the connection closes."""
        assert self._cp is not None
        with contextlib.suppress(ConnectionClosed):
            await self._cp.start()

    # --- sessions ---------------------------------------------------------

    async def plug_in(self, connector_id: int, ev: EV) -> int:
        """Plug ``ev`` in: Preparing, StartTransaction, Charging. Returns the transaction id."""
        if connector_id in self._sessions:
            raise ValueError(f"connector {connector_id} already has a session")
        await self._status(connector_id, "Preparing")
        now = self._clock.now()
        answer = await self._call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=f"SIM-{self.charger_id}-{connector_id}"[:20],
                meter_start=int(self._register_wh[connector_id]),
                timestamp=wire_time(now),
            )
        )
        transaction_id = int(answer.transaction_id)
        self._sessions[connector_id] = _Session(
            transaction_id, ev, now, self._register_wh[connector_id]
        )
        ev.step(self._clock.monotonic(), self.offered_a(connector_id))  # the EV sees the offer
        await self._status(connector_id, "Charging")
        return transaction_id

    async def unplug(self, connector_id: int) -> None:
        """Unplug: StopTransaction with the meter reading, then Available."""
        if connector_id not in self._sessions:
            raise ValueError(f"connector {connector_id} has no session")
        self._step(connector_id)  # count the energy up to now
        session = self._sessions.pop(connector_id)
        self._register_wh[connector_id] += session.ev.charged_wh
        self._store.end_transaction(connector_id)
        await self._call(
            call.StopTransaction(
                meter_stop=int(self._register_wh[connector_id]),
                timestamp=wire_time(self._clock.now()),
                transaction_id=session.transaction_id,
                reason="EVDisconnected",
            )
        )
        await self._status(connector_id, "Available")

    # --- what the charger offers and draws --------------------------------

    def offered_a(self, connector_id: int) -> float:
        """The current per phase the connector offers now, per the composite rule."""
        return self._offers()[connector_id - 1]

    def draw_a(self) -> PhaseDraw:
        """The charger's total current per phase now (for a simulated site meter)."""
        totals = [0.0, 0.0, 0.0]
        for connector_id in list(self._sessions):
            for phase, current_a in enumerate(self._step(connector_id)):
                totals[phase] += current_a
        return (totals[0], totals[1], totals[2])

    def _offers(self) -> list[float]:
        """Offer per connector: TxProfile else TxDefault, within the rating, sharing the max."""
        at = self._clock.now()
        limits = [self._connector_limit_a(c, at) for c in range(1, self.n_connectors + 1)]
        caps = self._store.held("ChargePointMaxProfile", 0)
        cap_a = best_limit_a(caps, 0, at, None, self.voltage_v)
        active = [i for i in range(self.n_connectors) if i + 1 in self._sessions]
        idle = [i for i in range(self.n_connectors) if i + 1 not in self._sessions]
        offers = [0.0] * self.n_connectors
        for index, share in zip(active, share_cap([limits[i] for i in active], cap_a), strict=True):
            offers[index] = share
        for index in idle:  # what it would offer a newly plugged EV
            offers[index] = limits[index] if cap_a is None else min(limits[index], cap_a)
        return offers

    def _connector_limit_a(self, connector_id: int, at: datetime) -> float:
        """The connector's own limit: a valid TxProfile, else TxDefault, else the rating."""
        session = self._sessions.get(connector_id)
        started = session.started_at if session else None
        tx = self._store.held("TxProfile", connector_id)
        own = best_limit_a(tx, connector_id, at, started, self.voltage_v)
        if own is None:
            defaults = self._store.held("TxDefaultProfile", connector_id, 0)
            own = best_limit_a(defaults, connector_id, at, started, self.voltage_v)
        return self.max_current_a if own is None else min(own, self.max_current_a)

    def _step(self, connector_id: int) -> PhaseDraw:
        """Step the connector's EV to now under the current offer."""
        session = self._sessions.get(connector_id)
        if session is None:
            return (0.0, 0.0, 0.0)
        return session.ev.step(self._clock.monotonic(), self.offered_a(connector_id))

    # --- profiles (called from the receive loop) ---------------------------

    def set_profile(self, connector_id: int, profile: dict[str, Any]) -> str:
        """Store a profile; ``Rejected`` where OCPP 1.6 forbids it (a TxProfile without a tx)."""
        session = self._sessions.get(connector_id)
        running_tx = session.transaction_id if session else None
        status = self._store.install(connector_id, profile, running_tx)
        if status != "Accepted":
            purpose = profile["chargingProfilePurpose"]
            self._log.info("profile_rejected", connector_id=connector_id, purpose=purpose)
            return status
        self.received_profiles.append((connector_id, profile))
        if self.on_profile is not None:
            self.on_profile(connector_id, profile)
        return status

    def clear_profiles(self, **criteria: Any) -> str:
        """ClearChargingProfile with the request's (snake_case) criteria."""
        return self._store.clear(**criteria)

    def configuration(self) -> dict[str, str]:
        """The configuration keys this charger reports (GetConfiguration)."""
        return {
            "NumberOfConnectors": str(self.n_connectors),
            "ChargeProfileMaxStackLevel": "8",
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "ChargingScheduleMaxPeriods": "24",
            "MeterValueSampleInterval": str(round(self.meter_interval_s)),
            "MeterValuesSampledData": ",".join(_MEASURANDS),
        }

    # --- messages to the central system ------------------------------------

    async def _call(self, request: Any) -> Any:
        """One CALL; a CALLERROR raises (``suppress=False``)."""
        if self._cp is None:
            raise RuntimeError("the simulated charge point is not started")
        return await self._cp.call(request, suppress=False)

    async def _status(self, connector_id: int, status: str) -> None:
        """StatusNotification for one connector."""
        await self._call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code="NoError",
                status=status,
                timestamp=wire_time(self._clock.now()),
            )
        )

    async def _meter_loop(self) -> None:
        """Every ``meter_interval_s``, MeterValues for each connector with a session."""
        while self._metering:
            await asyncio.sleep(self.meter_interval_s)
            for connector_id in list(self._sessions):
                try:
                    await self._send_meter_values(connector_id)
                except ConnectionClosed:
                    return
                except (TimeoutError, OCPPError) as exc:
                    self._log.warning("meter_values_failed", error=str(exc))

    async def _send_meter_values(self, connector_id: int) -> None:
        """One MeterValues message with currents, power, offer, energy and SoC."""
        session = self._sessions.get(connector_id)
        if session is None:
            return  # unplugged meanwhile
        draw = self._step(connector_id)
        ev = session.ev
        sampled = [
            _sample("Current.Import", f"{current_a:.1f}", "A", f"L{phase + 1}")
            for phase, current_a in enumerate(draw)
        ]
        sampled += [
            _sample("Power.Active.Import", f"{sum(draw) * self.voltage_v:.0f}", "W"),
            _sample("Current.Offered", f"{self.offered_a(connector_id):.1f}", "A"),
            _sample("Energy.Active.Import.Register", f"{self._energy_wh(session):.0f}", "Wh"),
            _sample("SoC", f"{ev.soc * 100:.1f}", "Percent", location="EV"),
        ]
        await self._call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=session.transaction_id,
                meter_value=[{"timestamp": wire_time(self._clock.now()), "sampledValue": sampled}],
            )
        )

    def _energy_wh(self, session: _Session) -> float:
        """The connector's energy register: at session start plus what the EV took."""
        return session.meter_start_wh + session.ev.charged_wh


_MEASURANDS = (
    "Current.Import",
    "Power.Active.Import",
    "Current.Offered",
    "Energy.Active.Import.Register",
    "SoC",
)


def _sample(
    measurand: str, value: str, unit: str, phase: str | None = None, location: str = "Outlet"
) -> dict[str, str]:
    """One sampledValue entry (values are strings per the spec)."""
    sample = {"value": value, "measurand": measurand, "unit": unit, "location": location}
    if phase is not None:
        sample["phase"] = phase
    return sample
