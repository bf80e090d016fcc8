"""Real devices a scenario names instead of simulating them: a grid meter, chargers.

A scenario's ``devices.meter`` points at a meter by address (Modbus TCP with a
register map, or MQTT topics: the controller's own meter keys); the
controller polls it, and the rig reads it too (:class:`MeterWatch`), with
its own reader, for the ground truth of its KPIs. A charger with
``real: true`` gets no simulator: the rig waits for it to connect to the
controller's OCPP endpoint (``devices.ocpp``), and takes its draw from what
it reports (MeterValues, as the controller sees them), since no simulator
knows its car.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.clock import Clock
from controller.config import ChargerSettings
from controller.meters.modbus_settings import MeterSettings
from controller.meters.mqtt_settings import MqttMeterSettings
from controller.meters.node_settings import legacy_site_meter
from controller.model import Event, MeterReading, Quality
from controller.snapshot import SessionView, SiteSnapshot
from hil.kpis import EvDemand
from hil.site import Phases3, to_site_phases

POLL_S = 0.2  # how often the rig looks whether a real device has shown up


class RealDeviceMissing(RuntimeError):
    """A real device the scenario names did not show up in time."""


class RealMeter(BaseModel):
    """The grid meter, real: exactly one of ``modbus`` and ``mqtt`` (the controller's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modbus: MeterSettings | None = None
    mqtt: MqttMeterSettings | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.modbus is None) == (self.mqtt is None):
            raise ValueError("set exactly one of modbus (host, port, unit_id, map) and mqtt")
        return self

    def address(self) -> str:
        """Where the meter is, for messages."""
        if self.modbus is not None:
            m = self.modbus
            return f"Modbus TCP {m.host}:{m.port} unit {m.unit_id} ({m.map_file or m.map})"
        assert self.mqtt is not None
        return f"MQTT {self.mqtt.host}:{self.mqtt.port}"


class OcppEndpoint(BaseModel):
    """Where the controller listens for chargers; real ones need a fixed port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0  # 0: any free port (simulated chargers)


class MeterWatch:
    """The rig's own reader of a real meter: the last good reading, for the KPIs."""

    def __init__(self, meter: RealMeter, site_id: str, clock: Clock) -> None:
        from controller.site_adapters import meter_adapter

        self.meter = meter
        self.last: MeterReading | None = None
        self.last_error = "no answer yet"
        node = legacy_site_meter(site_id, meter.modbus, meter.mqtt)
        reader = meter_adapter(node, self._sink, clock)
        assert reader is not None  # a Modbus or MQTT meter, never a charger's own
        self._reader = reader
        self._task: asyncio.Task[None] | None = None

    def _sink(self, event: Event) -> None:
        if isinstance(event, MeterReading) and event.quality is Quality.GOOD:
            self.last = event
        else:
            self.last_error = getattr(event, "detail", "") or type(event).__name__

    def current_a(self) -> Phases3:
        """The last good reading per site phase (0 where the meter gives no phase current)."""
        if self.last is None:
            return (0.0, 0.0, 0.0)
        a = self.last.current_a
        return (a[0] or 0.0, a[1] or 0.0, a[2] or 0.0)

    async def start(self, timeout_s: float) -> None:
        """Read until the first good reading; :class:`RealDeviceMissing` after ``timeout_s``."""
        self._task = asyncio.create_task(self._reader.run(), name="hil:real-meter")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.last is None:
            if loop.time() >= deadline:
                await self.stop()
                raise RealDeviceMissing(
                    f"devices.meter: the real meter at {self.meter.address()} gave no good "
                    f"reading within {timeout_s:g} s (last: {self.last_error})"
                )
            await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def wait_connected(
    snapshot: Callable[[], SiteSnapshot], charger_ids: Iterable[str], url: str, timeout_s: float
) -> None:
    """Wait until every real charger is connected; :class:`RealDeviceMissing` after
    ``timeout_s``, naming the ones still missing and where they should connect."""
    wanted = set(charger_ids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while missing := sorted(wanted - snapshot().connected):
        if loop.time() >= deadline:
            raise RealDeviceMissing(
                f"devices.chargers: real charger(s) {', '.join(missing)} did not connect to "
                f"{url}/<charger id> within {timeout_s:g} s"
            )
        await asyncio.sleep(POLL_S)


@dataclass(frozen=True, slots=True)
class RealSession:
    """A session on a real charger as the controller sees it from the charger's reports."""

    charger_id: str
    connector_id: int
    draw_a: Phases3
    """The reported draw on site phases."""
    offered_a: float | None
    demand: EvDemand
    """What the rig assumes the car could take: the phases it was seen on (all the
    charger's while unknown), at the charger's rating: no simulator knows the car."""


def real_sessions(
    snapshot: SiteSnapshot, settings: Mapping[str, ChargerSettings]
) -> list[RealSession]:
    """The sessions of the real chargers (those in ``settings``) in ``snapshot``."""
    return [_real(s, settings[s.charger_id]) for s in snapshot.sessions if s.charger_id in settings]


def _real(session: SessionView, charger: ChargerSettings) -> RealSession:
    wiring = charger.site_phases()
    measured = [a or 0.0 for a in (session.measured_a or (0.0, 0.0, 0.0))]
    draw = to_site_phases([*measured, 0.0, 0.0, 0.0][: len(wiring)], wiring)
    phases = session.belief.phases or tuple(range(len(wiring)))
    site_phases = tuple(sorted({wiring[p] for p in phases if p < len(wiring)}))
    return RealSession(
        session.charger_id,
        session.connector_id,
        draw,
        session.offered_a,
        EvDemand(site_phases, charger.max_current_a, session.charger_id),
    )


class RealParts:
    """The real devices of one run: the rig's watch on the real meter, the real chargers."""

    def __init__(
        self,
        meter: RealMeter | None,
        chargers: Mapping[str, ChargerSettings],
        site_id: str,
        clock: Clock,
        timeout_s: float,
    ) -> None:
        self.settings = dict(chargers)
        self.watch = MeterWatch(meter, site_id, clock) if meter is not None else None
        self.timeout_s = timeout_s
        self._snapshot: Callable[[], SiteSnapshot] | None = None

    async def start(self, snapshot: Callable[[], SiteSnapshot], url: str) -> None:
        """Read the real meter and wait for the real chargers (``url``: the OCPP endpoint)."""
        self._snapshot = snapshot
        if self.watch is not None:
            await self.watch.start(self.timeout_s)
        if self.settings:
            await wait_connected(snapshot, self.settings, url, self.timeout_s)

    async def stop(self) -> None:
        """Stop reading the real meter."""
        if self.watch is not None:
            await self.watch.stop()

    def sessions(self) -> list[RealSession]:
        """The real chargers' sessions now, as the controller sees them."""
        if self._snapshot is None or not self.settings:
            return []
        return real_sessions(self._snapshot(), self.settings)

    def draw_a(self) -> Phases3:
        """What the real chargers report drawing now, on site phases."""
        total = [0.0, 0.0, 0.0]
        for session in self.sessions():
            for phase in range(3):
                total[phase] += session.draw_a[phase]
        return (total[0], total[1], total[2])

    def base_a(self, chargers_a: Phases3) -> Phases3:
        """The building's load: the real meter less every charger's draw."""
        assert self.watch is not None
        site = self.watch.current_a()
        return (site[0] - chargers_a[0], site[1] - chargers_a[1], site[2] - chargers_a[2])
