"""A simulated OCPP 1.6J charge point with EVs, over a real websocket.

:class:`SimulatedChargePoint` connects to a central system as a charger
would: it boots, reports its connectors, starts and stops transactions when
an :class:`~hil.ev.EV` is plugged in or out, applies the charging profiles it
receives with the composite rule of :mod:`hil.smart_charging`, and every
``meter_interval_s`` sends MeterValues with what its EVs draw, and
heartbeats at the interval the central system gives at boot. It can drop its
connection and come back (:meth:`~SimulatedChargePoint.reconnect`), reboot,
authenticate with HTTP Basic auth over ``ws://`` or ``wss://`` (OCPP
security profiles 1 and 2), and play out the field quirks of
:class:`~hil.quirks.Quirks`. Tests use it as the fake charger; the demo and
HIL runner use it as the rig.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from ssl import SSLContext
from typing import Any

import structlog
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from controller.clock import Clock, SystemClock
from controller.ocpp.profiles import floor_limit, wire_time
from hil.charger_side import ChargerSide
from hil.ev import EV, PhaseDraw
from hil.quirks import Quirks
from hil.smart_charging import ProfileStore, best_limit_a, composite_periods, share_cap

ProfileHook = Callable[[int, dict[str, Any]], None]

START_ANSWER_WAIT_S = 1.0
"""How long a SetChargingProfile waits for a StartTransaction answer still on its way."""

_log = structlog.get_logger(__name__)


@dataclass
class _Session:
    """A running transaction on one connector."""

    transaction_id: int
    ev: EV
    started_at: datetime
    meter_start_wh: float


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
        quirks: Quirks | None = None,
        password: str | None = None,
        ssl: SSLContext | None = None,
        heartbeat_interval_s: float | None = None,
        main_meter: Callable[[], tuple[float, float, float]] | None = None,
    ) -> None:
        self.charger_id = charger_id
        self.main_meter = main_meter
        """What the charger's own main meter reads (A per its phase), sent on connector 0
        with every meter round; ``None``: no main meter (set it to ``None`` to silence it)."""
        self.url = f"{url.rstrip('/')}/{charger_id}"  # url: the central system's ``…/ocpp``
        self.n_connectors = n_connectors
        self.max_current_a = max_current_a
        self.meter_interval_s = meter_interval_s
        self.voltage_v = voltage_v
        self.on_profile = on_profile
        self.quirks = quirks or Quirks()
        self.received_profiles: list[tuple[int, dict[str, Any]]] = []
        self.offers: list[tuple[float, int, float]] = []
        """(monotonic time, connector, offered A) after each accepted profile (hil/pace.py)."""
        self.heartbeats_answered = 0
        self._clock: Clock = clock or SystemClock()
        self._call_timeout_s = call_timeout_s
        self._password = password  # HTTP Basic auth (security profiles 1 and 2)
        self._ssl = ssl
        self._heartbeat_s = heartbeat_interval_s  # None: the interval the boot answer gives
        self._heartbeat_fixed = heartbeat_interval_s is not None
        self._store = ProfileStore(n_connectors)
        self._sessions: dict[int, _Session] = {}
        self._starting: dict[int, asyncio.Event] = {}  # a StartTransaction awaiting its answer
        self._register_wh = dict.fromkeys(range(1, n_connectors + 1), 0.0)
        self._ws: ClientConnection | None = None
        self._cp: ChargerSide | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._running = False
        self._log = _log.bind(charger_id=charger_id)

    @property
    def heartbeat_interval_s(self) -> float | None:
        """Seconds between heartbeats (0 = none); ``None`` until the boot answer sets it."""
        return self._heartbeat_s

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Connect, boot, report each connector's status, then meter and heartbeat."""
        await self._open()
        await self._boot_or_stop()

    async def stop(self) -> None:
        """Stop metering and heartbeats, close the websocket cleanly, wait for every task."""
        # The flag as well as the cancel: Python 3.11's wait_for (inside the library's
        # call) can swallow a cancellation that races with an answer.
        self._running = False
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops = []
        if self._cp is not None:
            await self._cp.cancel_late_answers()
        if self._ws is not None:
            await self._ws.close()  # ends the receive loop
        if self._receive_task is not None:
            await self._receive_task
            self._receive_task = None

    async def reconnect(self, *, reboot: bool = False) -> None:
        """Close the connection and connect again as the same charger; sessions run on.

        Without ``reboot`` this is a network blip: no BootNotification (a
        charger boots only after a restart). With ``reboot`` the charger has
        restarted: it boots and reports its connectors again, and with the
        ``drops_profiles_on_reboot`` quirk it has forgotten every profile.
        Transactions keep their ids either way (the EVs stay plugged in).
        """
        await self.stop()
        if reboot and self.quirks.drops_profiles_on_reboot:
            self._store.clear()
            self._log.info("sim_profiles_dropped", quirk="drops_profiles_on_reboot")
        await self._open()
        if reboot:
            await self._boot_or_stop()
        else:
            self._start_loops()

    async def _open(self) -> None:
        """Open the websocket (with Basic auth and TLS when configured) and start receiving."""
        headers = {}
        if self._password is not None:
            headers["Authorization"] = build_authorization_basic(self.charger_id, self._password)
        tls: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        self._ws = await connect(
            self.url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers, **tls
        )
        self._cp = ChargerSide(self, self._ws, self._call_timeout_s)
        self._receive_task = asyncio.create_task(self._receive(), name=f"{self.charger_id}-recv")

    async def _boot_or_stop(self) -> None:
        """Boot and start the loops; on failure leave nothing running."""
        try:
            await self._boot()
        except BaseException:
            await self.stop()
            raise
        self._start_loops()

    async def _boot(self) -> None:
        """BootNotification, then the status of the charger and each connector."""
        answer = await self._call(
            call.BootNotification(charge_point_model="SimAC", charge_point_vendor="Headroom")
        )
        if not self._heartbeat_fixed:
            self._heartbeat_s = float(answer.interval)
        for connector_id in range(self.n_connectors + 1):  # 0 = the charger itself
            status = "Charging" if connector_id in self._sessions else "Available"
            await self._status(connector_id, status)

    def _start_loops(self) -> None:
        """Meter values every ``meter_interval_s``; heartbeats every heartbeat interval (if > 0)."""
        self._running = True
        self._loops = [self._every(self.meter_interval_s, self._meter_round, "meter_values")]
        if self._heartbeat_s:
            self._loops.append(self._every(self._heartbeat_s, self._heartbeat, "heartbeat"))

    def _every(
        self, interval_s: float, action: Callable[[], Awaitable[None]], name: str
    ) -> asyncio.Task[None]:
        """A task running ``action`` every ``interval_s`` until stopped; failures are logged."""

        async def loop() -> None:
            while self._running:
                await asyncio.sleep(interval_s)
                try:
                    await action()
                except ConnectionClosed:
                    return
                except (TimeoutError, OCPPError) as exc:
                    self._log.warning(f"{name}_failed", error=str(exc) or type(exc).__name__)

        return asyncio.create_task(loop(), name=f"{self.charger_id}-{name}")

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
        answered = self._starting[connector_id] = asyncio.Event()
        try:
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
        finally:
            del self._starting[connector_id]
            answered.set()
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
        defaults = self._store.held("TxDefaultProfile", connector_id, 0)
        default = best_limit_a(defaults, connector_id, at, started, self.voltage_v)
        if own is None:
            own = default
        elif default is not None and self.quirks.stacks_wrongly:
            own = min(own, default)  # the quirk: the default is not overruled
        return self.max_current_a if own is None else min(own, self.max_current_a)

    def composite_schedule(
        self, connector_id: int, duration_s: int, unit: str | None
    ) -> tuple[str, str, list[dict[str, Any]]] | None:
        """GetCompositeSchedule from the profiles held: (start, unit, periods); None refuses.

        The limit of a connector is its own (TxProfile, else TxDefault, else the
        rating) under the charger-wide ChargePointMaxProfile; in W it is stated for
        three phases at the nominal voltage. Limits are floored to 0.1 (the schema's
        multipleOf).
        """
        if self.quirks.no_composite_schedule or not 0 <= connector_id <= self.n_connectors:
            return None
        if self.quirks.w_only or self.quirks.a_only:  # its one unit, whatever was asked
            unit = "W" if self.quirks.w_only else "A"
        unit = unit or "A"
        start = self._clock.now()
        periods = composite_periods(
            lambda at: self._composite_limit_a(connector_id, at),
            self._store.all(),
            start,
            duration_s,
        )
        factor = self.voltage_v * 3 if unit == "W" else 1.0
        out: list[dict[str, Any]] = []
        for start_s, limit_a in periods:
            limit = floor_limit(limit_a * factor)
            period: dict[str, Any] = {"startPeriod": start_s, "limit": limit}
            if unit == "W":
                period["numberPhases"] = 3
            out.append(period)
        return wire_time(start), unit, out

    def _composite_limit_a(self, connector_id: int, at: datetime) -> float:
        """What the charger allows a connector at ``at`` (0: the charger as a whole)."""
        own = self._connector_limit_a(connector_id, at) if connector_id else self.max_current_a
        caps = self._store.held("ChargePointMaxProfile", 0)
        cap_a = best_limit_a(caps, 0, at, None, self.voltage_v)
        return own if cap_a is None else min(own, cap_a)

    def _step(self, connector_id: int) -> PhaseDraw:
        """Step the connector's EV to now under the current offer."""
        session = self._sessions.get(connector_id)
        if session is None:
            return (0.0, 0.0, 0.0)
        return session.ev.step(self._clock.monotonic(), self.offered_a(connector_id))

    # --- profiles (called from the receive loop) ---------------------------

    async def transaction_known(self, connector_id: int) -> None:
        """Wait (at most ``START_ANSWER_WAIT_S``) for a StartTransaction answer on its way.

        A charger reads the answer, and so its transaction id, before the frame
        behind it; the library hands that frame to its handler before the plug-in
        waiting for the answer resumes. Bounded: a frame sent before the answer
        would hold the receive loop, and the answer behind it, until the wait ends.
        """
        answered = self._starting.get(connector_id)
        if answered is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), START_ANSWER_WAIT_S)

    def set_profile(self, connector_id: int, profile: dict[str, Any]) -> str:
        """Store a profile; ``Rejected`` where OCPP 1.6 (or a quirk) forbids it."""
        status = self.quirks.refusal(profile) or self._install(connector_id, profile)
        if status != "Accepted":
            purpose = profile["chargingProfilePurpose"]
            self._log.info("profile_rejected", connector_id=connector_id, purpose=purpose)
            return status
        self.received_profiles.append((connector_id, profile))
        for connector in range(1, self.n_connectors + 1) if connector_id == 0 else [connector_id]:
            self.offers.append((self._clock.monotonic(), connector, self.offered_a(connector)))
        if self.on_profile is not None:
            self.on_profile(connector_id, profile)
        return status

    def _install(self, connector_id: int, profile: dict[str, Any]) -> str:
        """Install per the 1.6 rules, or (quirk) accept and forget."""
        if self.quirks.ignores_profiles:
            self._log.info("sim_profile_ignored", quirk="ignores_profiles")
            return "Accepted"
        session = self._sessions.get(connector_id)
        running_tx = session.transaction_id if session else None
        return self._store.install(connector_id, profile, running_tx)

    def clear_profiles(self, **criteria: Any) -> str:
        """ClearChargingProfile with the request's (snake_case) criteria."""
        return self._store.clear(**criteria)

    def configuration(self) -> dict[str, str]:
        """The configuration keys this charger reports (GetConfiguration)."""
        return {
            "NumberOfConnectors": str(self.n_connectors),
            "ChargeProfileMaxStackLevel": "8",
            "ChargingScheduleAllowedChargingRateUnit": self.quirks.rate_units,
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

    async def _meter_round(self) -> None:
        """MeterValues for each connector with a session, and the main meter if any."""
        for connector_id in list(self._sessions):
            await self._send_meter_values(connector_id)
        if self.main_meter is not None:
            await self._send_main_meter(self.main_meter())

    async def _send_main_meter(self, current_a: tuple[float, float, float]) -> None:
        """Connector 0 MeterValues: the charger's main meter, at its grid inlet."""
        sampled = [
            _sample("Current.Import", f"{a:.1f}", "A", f"L{phase + 1}", location="Inlet")
            for phase, a in enumerate(current_a)
        ]
        power = f"{sum(current_a) * self.voltage_v:.0f}"
        sampled.append(_sample("Power.Active.Import", power, "W", location="Inlet"))
        stamp = wire_time(self._clock.now())
        await self._call(
            call.MeterValues(
                connector_id=0, meter_value=[{"timestamp": stamp, "sampledValue": sampled}]
            )
        )

    async def _heartbeat(self) -> None:
        """One Heartbeat; counted once answered."""
        await self._call(call.Heartbeat())
        self.heartbeats_answered += 1

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
