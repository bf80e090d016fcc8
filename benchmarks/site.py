"""A benchmark site: the real SiteController, a simulated grid meter, and probes.

The meter's physics: the site draws a base load (set by the benchmark) plus
what every charger last reported drawing in its MeterValues, per phase. The
fleet's cars draw what they are offered, so the controller's own estimate of
the base load (meter − reported draws) is exact, and a step of the base load
is the only thing that moves the site over its limit.

The numbers: every charger is three-phase, 32 A, with a car that takes 32 A.
The site limit is ``BASE_LOW_A + chargers × SHARE_A`` plus the safety margin,
so at the low base load every session gets ``SHARE_A``; a step of
``chargers × STEP_A`` puts the site that many amperes over its limit and every
session must come down by ``STEP_A``.

Probes (instrumentation for the benchmark only; no controller file changes):
:class:`InstrumentedController` overrides ``sink`` (the time the controller
receives the first over-limit reading after a step, and each charger's
reported draw) and ``_commanded`` (every command result), and
:func:`time_profile_writes` wraps ``ChargePointConnection._send`` to time each
TxProfile frame handed to the websocket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.config import HeadroomConfig, parse_config
from controller.decide import Decision
from controller.loop import StepTimes
from controller.model import (
    ChargerMeasurement,
    CommandResult,
    Event,
    MeterReading,
    ProfilePurpose,
)
from controller.ocpp.v16 import ChargePointConnection
from controller.service import SiteController
from controller.snapshot import SiteSnapshot
from controller.urgency import over_limit
from hil.meter import MeterValues, SimulatedMeter

BASE_LOW_A = 40.0
SHARE_A = 8.0  # per session per phase at the low base load (1,000 × 8 A stays in meter bounds)
STEP_A = 1.0  # per session: the base load step is chargers × STEP_A
MARGIN_A = 1.0
VOLTAGE_V = 230.0


def bench_config(meter_port: int, chargers: int) -> HeadroomConfig:
    """The site: limits as above, service defaults except faster settling for short runs."""
    return parse_config(
        {
            "site": {
                "id": "bench",
                "max_current_a": BASE_LOW_A + chargers * SHARE_A + MARGIN_A,
                "safety_margin_a": MARGIN_A,
                "failsafe_current_a": 6,
                "voltage_v": VOLTAGE_V,
            },
            "control": {
                "interval_s": 1.0,
                "base_load_window_s": 0.5,
                "min_increase_interval_s": 1.0,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 10},
            "meter": {"host": "127.0.0.1", "port": meter_port, "poll_interval_s": 0.25},
            "chargers": [{"id": f"cp-{i}", "max_current_a": 32} for i in range(chargers)],
        }
    )


@dataclass
class Probe:
    """What the instrumented controller saw, on ``time.monotonic()``."""

    armed: bool = False
    reading_at: float | None = None  # sink entry of the first over-limit reading after arming
    reading_adapter_at: float | None = None  # the reading's own ``at`` (adapter receipt)
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    draws: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    accepted_tx: dict[str, float] = field(default_factory=dict)  # charger → last accepted at
    decisions: list[tuple[float, StepTimes, int]] = field(default_factory=list)
    writes: list[tuple[float, str]] = field(default_factory=list)  # TxProfile frames written

    def arm(self) -> None:
        """Wait for the next over-limit reading."""
        self.reading_at = self.reading_adapter_at = None
        self.reached.clear()
        self.armed = True


class InstrumentedController(SiteController):
    """The SiteController with probes on its sink and its command results."""

    def __init__(self, config: HeadroomConfig, probe: Probe) -> None:
        self.probe = probe
        super().__init__(config, on_decision=self._probe_decision)

    def sink(self, event: Event) -> None:
        """Time the over-limit reading and track draws, then the controller's own sink."""
        probe = self.probe
        if isinstance(event, ChargerMeasurement):
            a = event.current_a
            probe.draws[event.charger_id] = (a[0] or 0.0, a[1] or 0.0, a[2] or 0.0)
        elif probe.armed and isinstance(event, MeterReading) and over_limit(event, self.config):
            probe.reading_at = time.monotonic()
            probe.reading_adapter_at = event.at
            probe.armed = False
            probe.reached.set()
        super().sink(event)

    def _commanded(self, result: CommandResult) -> None:
        super()._commanded(result)
        if result.ok and result.command.purpose is ProfilePurpose.TX:
            self.probe.accepted_tx[result.command.charger_id] = time.monotonic()

    def _probe_decision(self, decision: Decision, times: StepTimes, _s: SiteSnapshot) -> None:
        self.probe.decisions.append((time.monotonic(), times, len(decision.targets)))


def time_profile_writes(probe: Probe) -> Callable[[], None]:
    """Record when each TxProfile frame is handed to its websocket; returns the undo."""
    original: Any = ChargePointConnection._send

    async def timed_send(self: ChargePointConnection, message: str) -> None:
        await original(self, message)
        if '"TxProfile"' in message:
            probe.writes.append((time.monotonic(), self.charger_id))

    ChargePointConnection._send = timed_send

    def undo() -> None:
        ChargePointConnection._send = original

    return undo


class BenchSite:
    """Meter, controller and probes for ``chargers`` chargers."""

    def __init__(self, chargers: int) -> None:
        self.chargers = chargers
        self.base_a = BASE_LOW_A
        self.probe = Probe()
        self.meter = SimulatedMeter(source=self.meter_values)
        self.controller: InstrumentedController
        self._undo: Callable[[], None] = lambda: None

    def meter_values(self) -> MeterValues:
        """Base load plus every charger's last reported draw, per phase."""
        total = [self.base_a] * 3
        for draw in self.probe.draws.values():
            total[0] += draw[0]
            total[1] += draw[1]
            total[2] += draw[2]
        return MeterValues((total[0], total[1], total[2]), sum(total) * VOLTAGE_V)

    async def start(self) -> None:
        """Start the meter, then the controller."""
        await self.meter.start()
        self.controller = InstrumentedController(
            bench_config(self.meter.port, self.chargers), self.probe
        )
        self._undo = time_profile_writes(self.probe)
        await self.controller.start()

    async def stop(self) -> None:
        """Stop the controller, then the meter."""
        await self.controller.stop()
        await self.meter.stop()
        self._undo()

    def _draws_follow(self) -> bool:
        """True when every charger has reported drawing the setpoint it holds.

        Until then the meter does not show the site as it will be: a step taken
        earlier might never show as over the limit (the loop's regular tick could
        answer it first), and the step would measure nothing.
        """
        held = self.controller.dispatcher.held
        draws = self.probe.draws
        return all(
            abs(draws.get(key.split("/")[0], (-1.0,))[0] - h.limit_a) < 0.05
            for key, h in held.items()
        )

    async def wait_steady(self, quiet_s: float = 1.5, timeout_s: float = 120.0) -> None:
        """Until every session holds a setpoint and draws it, and commands have gone quiet."""
        dispatcher = self.controller.dispatcher
        deadline = time.monotonic() + timeout_s
        last_sent, quiet_since = dispatcher.sent, time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if dispatcher.sent != last_sent or dispatcher.busy:
                last_sent, quiet_since = dispatcher.sent, now
            elif (
                len(dispatcher.held) >= self.chargers
                and now - quiet_since >= quiet_s
                and self._draws_follow()
            ):
                return
            if now > deadline:
                raise TimeoutError(
                    f"not steady within {timeout_s} s: {len(dispatcher.held)} held, "
                    f"busy={dispatcher.busy}"
                )

    def held_limits(self) -> dict[str, float]:
        """The setpoint each connector holds now."""
        return {key: h.limit_a for key, h in self.controller.dispatcher.held.items()}

    async def wait_restored(self, before: dict[str, float], timeout_s: float = 120.0) -> None:
        """Until every connector holds about what it held in ``before``, and is steady.

        After the base load steps down the setpoints come back only once the meter
        is trusted again (a doubtful meter holds them where they are): the next
        step must start from about the same place, or it would not put the site
        over. "About": within the deadband (the 0.1 A flooring may take a step).
        """
        deadline = time.monotonic() + timeout_s
        slack_a = self.controller.config.control.deadband_a
        while True:
            held = self.held_limits()
            if all(held.get(key, 0.0) >= limit_a - slack_a for key, limit_a in before.items()):
                await self.wait_steady(timeout_s=max(1.0, deadline - time.monotonic()))
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"setpoints not restored within {timeout_s} s")
            await asyncio.sleep(0.05)

    async def wait_all_accepted_since(self, since: float, timeout_s: float = 60.0) -> float:
        """Until every charger accepted a TxProfile after ``since``; when the last did."""
        deadline = time.monotonic() + timeout_s
        while True:
            times = self.probe.accepted_tx
            done = [t for t in times.values() if t >= since]
            if len(done) >= self.chargers:
                return max(done)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(done)} of {self.chargers} accepted within {timeout_s} s")
            await asyncio.sleep(0.01)
