"""The running rig: a simulated meter, the controller and simulated chargers, over loopback.

:class:`SimRig` starts an SDM630-like Modbus meter, an in-process
:class:`~controller.service.SiteController` and one simulated charger per
charger (an OCPP 1.6 charge point, or a 2.0.1 station where the scenario says
``ocpp: "2.0.1"``), and carries out the timeline's actions on them. It also keeps the
ground truth the KPIs need: each EV's stay (:class:`Plug`), its arrival and
the moment it could first draw.

Meter faults the Modbus server makes itself (``silent``, ``exception``,
``slow``) use :class:`~hil.meter.SimulatedMeter`'s fault switches; the ones
that need wrong numbers on the wire (``nan``, ``frozen``) come from
:class:`MeterFaults`, the source the meter reads.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from controller.clock import Clock, ScaledClock
from controller.config import AuditSettings, ChargerSettings, SiteLimits, StoreSettings
from controller.model import SessionNeeds
from controller.service import SiteController
from controller.snapshot import SiteSnapshot
from hil.charge_point import SimulatedChargePoint
from hil.charge_point_201 import SimulatedStation
from hil.devices import BaseLoad, base_load, build_ev
from hil.ev import EV
from hil.kpis import SiteLimit
from hil.meter import Fault, MeterValues, SimulatedMeter
from hil.real_devices import RealParts
from hil.scenario import Scenario, SimCharger
from hil.site import Phases3, SimulatedSite, WiredCharger
from hil.timeline import Action
from hil.timescale import loop_clock

# The faults the meter server plays itself; the others come from MeterFaults.
SERVER_FAULTS = frozenset(get_args(Fault))


def _charge_point(
    sim: SimCharger, url: str, voltage_v: float, clock: Clock | None = None
) -> SimulatedChargePoint:
    """The simulated charger of one scenario charger: a 1.6 charge point or a 2.0.1
    station, with its quirks, if it has any."""
    c = sim.settings
    extra: dict[str, Any] = {}
    if sim.quirks:
        from hil.quirks import Quirks

        extra["quirks"] = Quirks.from_mapping(dict(sim.quirks))
    kind = SimulatedStation if sim.ocpp == "2.0.1" else SimulatedChargePoint
    return kind(
        c.id,
        url,
        n_connectors=c.connectors,
        max_current_a=c.max_current_a,
        meter_interval_s=sim.meter_interval_s,
        voltage_v=voltage_v,
        clock=clock,
        **extra,
    )


async def _back_online(cp: SimulatedChargePoint, reboot: bool) -> None:
    """Reconnect a charger that went offline: as after a network blip, or after a reboot."""
    reconnect = getattr(cp, "reconnect", None)
    if reconnect is None:  # a simulator without reconnect(): connect and boot again
        await cp.start()
    else:
        await reconnect(reboot=reboot)


class MeterFaults:
    """The meter's source, with the faults that are wrong numbers: NaN, or frozen values."""

    def __init__(self, source: Callable[[], MeterValues]) -> None:
        self._source = source
        self.mode = "none"
        self._last: MeterValues | None = None

    def __call__(self) -> MeterValues:
        """What the meter reads now."""
        if self.mode == "nan":
            return MeterValues((math.nan, math.nan, math.nan), math.nan)
        if self.mode == "frozen" and self._last is not None:
            return self._last  # stuck at the last value it sent
        self._last = self._source()
        return self._last


@dataclass
class Plug:
    """One EV's stay on a connector: what the KPIs need to know about it."""

    charger_id: str
    connector_id: int
    ev: EV
    priority: float
    arrived_s: float
    ready_s: float  # the EV's own wake-up delay after arrival: from then it can draw
    soc_arrival: float
    target_soc: float
    departure_s: float | None
    demand_wh: float = 0.0
    departed_s: float | None = None


class SimRig:
    """Meter, controller and chargers of one scenario run, started and stopped together."""

    def __init__(
        self, scenario: Scenario, policy: str | None = None, state_dir: Path | None = None
    ) -> None:
        self.scenario = scenario
        self.policy = policy
        self.state_dir = state_dir
        """Where the controller keeps its audit log and state store (none when not given)."""
        self.clock = loop_clock()
        """Scenario time: the running loop's clock, which ``time_scale`` may speed up."""
        self.rng = random.Random(scenario.seed)
        self.base: BaseLoad = base_load(scenario.devices.base_load, scenario.base_dir)
        self._started_at: float | None = None  # scenario time runs from the end of start()
        self.sims: dict[str, SimCharger] = {c.settings.id: c for c in scenario.chargers()}
        self.settings: dict[str, ChargerSettings] = {k: c.settings for k, c in self.sims.items()}
        devices = scenario.devices
        real = {k: c.settings for k, c in self.sims.items() if c.real}
        self.real = RealParts(
            devices.meter, real, scenario.site.id, self.clock, devices.connect_timeout_s
        )
        """The real devices the scenario names; their draw is what they report."""
        self.site = SimulatedSite(
            self.base if devices.meter is None else self._measured_base,
            [],
            self._clock_s,
            scenario.site.voltage_v,
            self.real.draw_a if real else None,
        )
        self.faults = MeterFaults(self.site.meter_values)
        self.meter = SimulatedMeter(source=self.faults)
        self.charge_points: dict[str, SimulatedChargePoint] = {}
        self.plugs: dict[tuple[str, int], Plug] = {}
        self.finished: list[Plug] = []
        self._controller: SiteController | None = None
        self._state_dir: tempfile.TemporaryDirectory[str] | None = None
        self._locks = {cid: asyncio.Lock() for cid in self.settings}

    @property
    def controller(self) -> SiteController:
        """The running controller."""
        if self._controller is None:
            raise RuntimeError("the rig is not started")
        return self._controller

    async def start(self) -> None:
        """Meter first (the controller polls it), then the controller, then the chargers."""
        self._check_scale()
        if self.real.watch is None:
            await self.meter.start()
        config = self.scenario.controller_config(self.meter.port or 1, self.policy)
        if self.state_dir is not None:
            config = config.model_copy(
                update={
                    "audit": AuditSettings(path=str(self.state_dir / "audit.db")),
                    "store": StoreSettings(path=str(self.state_dir / "state.db")),
                }
            )
        else:
            # A state store, as on a site: every run writes its restart state, and a
            # controller_restart resumes from it.
            self._state_dir = tempfile.TemporaryDirectory(prefix="headroom-hil-")
            store = StoreSettings(path=str(Path(self._state_dir.name) / "state.db"))
            config = config.model_copy(update={"store": store})
        self._controller = SiteController(config, clock=self.clock)
        await self._controller.start()
        url = f"ws://127.0.0.1:{self._controller.ocpp.port}/ocpp"
        for c in config.chargers:
            if c.id in self.real.settings:
                continue  # a real charger connects by itself
            cp = _charge_point(self.sims[c.id], url, config.site.voltage_v, self.clock)
            self.charge_points[c.id] = cp
            self.site.chargers.append(WiredCharger(cp, c.site_phases()))
        await asyncio.gather(*(cp.start() for cp in self.charge_points.values()))
        endpoint = f"ws://{config.ocpp.host}:{self._controller.ocpp.port}/ocpp"
        await self.real.start(self._snapshot, endpoint)
        self._started_at = self.clock.monotonic()

    def _snapshot(self) -> SiteSnapshot:
        """The running controller's picture of the site now."""
        return self.controller.state.snapshot(self.clock.monotonic())

    def _measured_base(self, _t_s: float) -> Phases3:
        """The building's load under a real meter: its reading less every charger's draw."""
        return self.real.base_a(self.site.chargers_a())

    def _check_scale(self) -> None:
        """The loop must run at the scenario's time scale, or sleeps and clocks disagree."""
        scale = self.clock.scale if isinstance(self.clock, ScaledClock) else 1.0
        if scale != self.scenario.time_scale:
            raise RuntimeError(
                f"scenario {self.scenario.name} has time_scale {self.scenario.time_scale:g} but "
                f"the running event loop goes {scale:g}x: run it with hil.runner.run_scenario, "
                "which starts a loop at the scenario's scale"
            )

    @property
    def started_at(self) -> float:
        """The monotonic time the scenario clock counts from."""
        return self._started_at or 0.0

    def _clock_s(self) -> float:
        """Seconds since the rig was up (0 while starting): the site's scenario clock."""
        return 0.0 if self._started_at is None else self.clock.monotonic() - self._started_at

    async def stop(self) -> None:
        """Stop everything that started; leaves no task behind."""
        await asyncio.gather(
            *(cp.stop() for cp in self.charge_points.values()), return_exceptions=True
        )
        await self.real.stop()
        if self._controller is not None:
            await self._controller.stop()
        await self.meter.stop()
        if self._state_dir is not None:
            self._state_dir.cleanup()

    def elapsed_s(self) -> float:
        """Scenario time."""
        return self.site.elapsed_s()

    async def run(self, action: Action) -> None:
        """Carry out one action; one charger's actions run one after the other."""
        if action.kind == "controller_restart":
            await self.restart_controller(action.delay_s)
            return
        if not action.charger_id:
            self._site_action(action)
            return
        async with self._locks[action.charger_id]:
            cp = self.charge_points[action.charger_id]
            if action.kind == "arrive":
                await self._arrive(cp, action)
            elif action.kind == "depart":
                await self._depart(cp, action.connector_id)
            elif action.kind == "charger_offline":
                await cp.stop()
            elif action.kind == "charger_online":
                await _back_online(cp, action.reboot)

    async def _arrive(self, cp: SimulatedChargePoint, action: Action) -> None:
        key = (cp.charger_id, action.connector_id)
        if key in self.plugs:
            await self._depart(cp, action.connector_id)  # the next car takes the bay
        spec = self.scenario.devices.evs[action.ev_model]
        ev = build_ev(spec, self.rng, action.soc, self.scenario.site.voltage_v)
        t = self.elapsed_s()
        self.plugs[key] = Plug(
            cp.charger_id,
            action.connector_id,
            ev,
            self.settings[cp.charger_id].priority,
            t,
            t + ev.response_delay_s,
            ev.soc,
            action.target_soc,
            action.departure_s,
        )
        await cp.plug_in(action.connector_id, ev)
        if action.departure_s is not None:
            self._say_needs(self.plugs[key])

    def _say_needs(self, plug: Plug) -> None:
        """Tell the controller when the car leaves and the energy it needs by then, as a
        driver's app or the EV would (SessionNeeds from the scenario)."""
        if plug.departure_s is None:
            return
        controller = self.controller
        leave_in_s = plug.departure_s - self.elapsed_s()
        need_wh = max(0.0, plug.target_soc - plug.soc_arrival) * plug.ev.battery_kwh * 1000.0
        controller.sink(
            SessionNeeds(
                plug.charger_id,
                plug.connector_id,
                controller.clock.monotonic(),
                departure_at=controller.clock.now().timestamp() + leave_in_s,
                energy_wh=need_wh,
                source="scenario",
            )
        )

    async def _depart(self, cp: SimulatedChargePoint, connector_id: int) -> None:
        plug = self.plugs.pop((cp.charger_id, connector_id), None)
        if plug is None:
            return  # nobody there: a departure after a bay was already freed
        await cp.unplug(connector_id)
        plug.departed_s = self.elapsed_s()
        self.finished.append(plug)

    async def restart_controller(self, down_s: float) -> None:
        """Stop the controller, wait ``down_s``, start a new one on the same port and store.

        Each charger's connection drops with it; once the new controller listens,
        every charger reconnects (without booting: it did not restart), retrying
        as a real charger does.
        """
        old = self.controller
        config = old.config.model_copy(
            update={"ocpp": old.config.ocpp.model_copy(update={"port": old.ocpp.port})}
        )
        await old.stop()
        await asyncio.sleep(down_s)
        self._controller = SiteController(config, clock=self.clock)
        await self._controller.start()
        await asyncio.gather(*(self._reconnect(cid) for cid in self.charge_points))

    async def _reconnect(self, charger_id: str, attempts: int = 20) -> None:
        async with self._locks[charger_id]:
            for attempt in range(attempts):
                try:
                    await _back_online(self.charge_points[charger_id], reboot=False)
                    return
                except OSError:  # not listening yet: try again, as a charger would
                    await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            raise RuntimeError(f"{charger_id} could not reconnect after the restart")

    def change_limit(self, max_current_a: float | None, max_power_kw: float | None) -> SiteLimit:
        """Set the site limit the running controller works to; the limit to judge it by.

        What the facility manager does through the API, applied in-process: the
        values given replace the config's, the others stay.
        """
        config = self.controller.config
        given = {"max_current_a": max_current_a, "max_power_kw": max_power_kw}
        site = SiteLimits.model_validate(
            {**config.site.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        )
        self.controller.reconfigure(config.model_copy(update={"site": site}))
        return SiteLimit(site.max_current_a, site.max_power_w, site.safety_margin_a, site.voltage_v)

    def _site_action(self, action: Action) -> None:
        if action.kind == "base_load":
            if action.scale is not None:
                self.base.scale = action.scale
            else:
                self.base.pinned_a = action.current_a
        elif action.kind == "meter_fault":
            served = action.mode in SERVER_FAULTS
            self.meter.fault = cast(Fault, action.mode) if served else None
            self.meter.delay_s = action.delay_s if action.mode == "slow" else 0.0
            self.faults.mode = "none" if served else action.mode
