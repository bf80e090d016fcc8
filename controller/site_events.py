"""What one site does with each event from its adapters and each command result.

:class:`SiteEvents` is the part of :class:`~controller.service.SiteController`
the adapters call. :meth:`SiteEvents.sink` records each event in the site
state, reacts to the few that need a command at once (a booted charger gets its
fail-safe profile; one that reconnects without booting is treated as booted
after ``BOOT_WAIT_S``) and wakes the loop when an event is urgent or a report
shows a car followed. Command results come back through the dispatcher's
``on_result``; an accepted fail-safe profile wakes the loop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from controller.audit import AuditLog
from controller.clock import Clock
from controller.config import HeadroomConfig
from controller.demand import DemandWindow
from controller.dispatcher import Dispatcher
from controller.live import LiveView
from controller.loop import ControlLoop
from controller.meters.node_settings import OcppNodeMeter
from controller.metrics import SiteMetrics
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerMeasurement,
    CommandResult,
    CommandStatus,
    Event,
    MeterReading,
    Quality,
    connector_key,
)
from controller.schedule_checks import ScheduleChecks, is_failsafe
from controller.site_adapters import charger_meter_readings
from controller.state import SiteState
from controller.telemetry import TelemetryPublisher
from controller.urgency import is_urgent, over_limit

log = structlog.get_logger(__name__)

BOOT_WAIT_S = 2.0
"""How long a newly connected charger has to send BootNotification before we command it anyway."""


class SiteEvents:
    """The event and command-result handlers of a site controller, on its parts."""

    config: HeadroomConfig
    clock: Clock
    state: SiteState
    metrics: SiteMetrics
    live: LiveView
    audit: AuditLog | None
    telemetry: TelemetryPublisher | None
    demand: DemandWindow
    dispatcher: Dispatcher
    checks: ScheduleChecks | None
    loop: ControlLoop
    _site_meter_id: str
    _charger_meters: list[OcppNodeMeter]
    _helpers: set[asyncio.Task[None]]

    def sink(self, event: Event) -> None:
        """Where every adapter puts its events."""
        self.state.apply(event)
        site_reading = isinstance(event, MeterReading) and event.meter_id == self._site_meter_id
        if site_reading or not isinstance(event, MeterReading):  # the live view shows the grid
            self.live.on_event(event, self.clock.now())
        if isinstance(event, MeterReading) and site_reading:
            self.metrics.observe_reading(event)
            if event.quality is Quality.GOOD and event.power_w is not None:
                self.demand.add(self.clock.now().timestamp(), event.power_w)
        if isinstance(event, ChargerMeasurement):
            for reading in charger_meter_readings(
                event, self._charger_meters, self.config, self.clock
            ):
                self.sink(reading)
            key = connector_key(event.charger_id, event.connector_id)
            held = self.dispatcher.held.get(key)
            if self.loop.settling.shows_follow(key, event.current_a, held):
                self.loop.wake()  # the next ramp step, or room a decrease freed, can go now
        if self.telemetry is not None:
            self.telemetry.publish_event(event, self.clock.now())
        if isinstance(event, ChargerConnected):
            self._spawn(self._adopt_if_no_boot(event.charger_id), f"boot-wait:{event.charger_id}")
        if isinstance(event, ChargerBooted):
            # Back without booting, it kept its profiles (controller/rejoin.py).
            self.dispatcher.install_failsafe(event.charger_id, forget=not event.reconnected)
            self.state.failsafe_sent(event.charger_id)
            if event.reconnected:
                self.loop.rejoined(event.charger_id)
        if is_urgent(event, self.config):
            self.loop.wake(
                over_limit=isinstance(event, MeterReading) and over_limit(event, self.config)
            )

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _adopt_if_no_boot(self, charger_id: str) -> None:
        """A charger that reconnects (after a network drop, or our restart) need not boot again.

        If no BootNotification follows the connection within ``BOOT_WAIT_S``, the
        charger is treated as booted: it gets its fail-safe profile and its sessions
        are managed again, as OCPP expects of a central system on reconnect.
        """
        await asyncio.sleep(BOOT_WAIT_S)
        snapshot = self.state.snapshot(self.clock.monotonic())
        if charger_id in snapshot.connected and charger_id not in snapshot.booted:
            log.info("charger reconnected without boot", charger_id=charger_id)
            self.sink(
                ChargerBooted(
                    charger_id, self.clock.monotonic(), model="(reconnected)", reconnected=True
                )
            )

    def _commanded(self, result: CommandResult) -> None:
        command = result.command
        if result.ok and is_failsafe(command):
            self.state.failsafe_sent(command.charger_id, accepted=True)
            if self.checks is not None:  # does it apply it? (controller/untrusted.py)
                self.checks.failsafe_installed(command.charger_id, command.limit_a)
            self.loop.wake()  # its new sessions need not be planned at its rating any more
        if result.status is CommandStatus.REJECTED and command.transaction_id is not None:
            self.state.refused(command.charger_id, command.connector_id, command.transaction_id)
        self.metrics.observe_command(result)
        self.live.on_command(result, self.clock.now())
        if self.audit is not None:
            self.audit.record_command(result, self.clock.now())

    def _failsafe_judged(self, charger_id: str, untrusted: str | None) -> None:
        self.state.judged(charger_id, untrusted)
        self.loop.wake()
