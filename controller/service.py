"""One site's controller: the OCPP server, the meter, the state and the loop, wired.

:class:`SiteController` is what ``headroom run`` and ``headroom demo`` start.
Adapters feed :meth:`SiteController.sink`; it records each event in the site
state, reacts to the few that need a command at once (a booted charger gets
its fail-safe profile) and wakes the loop when an event is urgent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import start_http_server

from controller.audit import AuditLog
from controller.clock import Clock, SystemClock
from controller.compliance import ScheduleCheck
from controller.config import HeadroomConfig
from controller.decide import Decision
from controller.demand import DemandWindow
from controller.dispatcher import Dispatcher
from controller.live import LiveView
from controller.loop import ControlLoop, StepTimes
from controller.meters import ModbusMeter
from controller.meters.mqtt import MqttMeter
from controller.meters.node_settings import MqttNodeMeter, NodeMeter, OcppNodeMeter
from controller.meters.ocpp_meter import as_meter_reading
from controller.metrics import SiteMetrics
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerMeasurement,
    CommandResult,
    CommandStatus,
    CompositeLimit,
    Event,
    MeterReading,
    Quality,
    connector_key,
)
from controller.ocpp import OcppServer
from controller.ocpp.server import tls_context
from controller.operator import OperatorControl
from controller.response import learned_before
from controller.restart import StateWriter, resume
from controller.schedule_checks import ScheduleChecks, is_failsafe
from controller.snapshot import SiteSnapshot
from controller.state import SiteState
from controller.store import StateStore
from controller.telemetry import TelemetryPublisher
from controller.urgency import is_urgent, over_limit
from policies import get_policy

log = structlog.get_logger(__name__)

BOOT_WAIT_S = 2.0
"""How long a newly connected charger has to send BootNotification before we command it anyway."""


TRANSACTION_ID_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z


def first_transaction_id(clock: Clock) -> int:
    """Where transaction ids start: seconds since 2026, so they keep rising across restarts.

    A restarted controller must not hand out an id a charger may still hold for a
    running transaction; unless a site averages more than one new transaction per
    second, ids from this seed never repeat (and fit OCPP's 32-bit integer until 2094).
    """
    return max(int(clock.now().timestamp()) - TRANSACTION_ID_EPOCH_S, 1)


def meter_adapter(
    m: NodeMeter, sink: Callable[[Event], None], clock: Clock
) -> ModbusMeter | MqttMeter | None:
    """The reader of one configured meter (the HIL rig reads a real meter with it too);
    None for a charger's own meter (fed by OCPP)."""
    if isinstance(m, MqttNodeMeter):
        return MqttMeter(m, sink, clock)
    if isinstance(m, OcppNodeMeter):
        return None
    return ModbusMeter(
        meter_id=m.id,
        host=m.host,
        port=m.port,
        unit_id=m.unit_id,
        register_map=m.register_map(),
        sink=sink,
        clock=clock,
        poll_interval_s=m.poll_interval_s,
        timeout_s=m.timeout_s,
    )


class SiteController:
    """Everything that runs for one site, started and stopped together."""

    def __init__(
        self,
        config: HeadroomConfig,
        clock: Clock | None = None,
        on_decision: Callable[[Decision, StepTimes, SiteSnapshot], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.state = SiteState.for_site(config, lambda: self.clock.now().timestamp())
        self.metrics = SiteMetrics(config)
        self.audit = (
            AuditLog(config.audit.path, config.site.id, config.audit.fsync)
            if config.audit
            else None
        )
        self.store = StateStore(config.store.path, config.store.fsync) if config.store else None
        """What must survive a restart; ``None`` when the config names no store."""
        self.telemetry = (
            TelemetryPublisher(config.telemetry, config.site.id) if config.telemetry else None
        )
        self._on_decision = on_decision
        known = {c.id for c in config.chargers}
        hashes = {c.id: c.password_hash for c in config.chargers if c.password_hash}
        tls = config.ocpp
        self.ocpp = OcppServer(
            sink=self.sink,
            clock=self.clock,
            admit=lambda cid: cid in known or config.ocpp.admit_unknown,
            host=config.ocpp.host,
            port=config.ocpp.port,
            call_timeout_s=config.ocpp.call_timeout_s,
            first_transaction_id=first_transaction_id(self.clock),
            credentials=hashes.get if hashes else None,
            voltage_v=config.site.voltage_v,
            meter_values_interval_s=config.ocpp.meter_values_interval_s,
            ssl=tls_context(tls.tls_cert_file, tls.tls_key_file) if tls.tls_cert_file else None,
        )
        self.dispatcher = Dispatcher(
            links=self.ocpp.link,
            clock=self.clock,
            failsafe_a=config.site.failsafe_current_a,
            lease_s=config.control.lease_s,
            wake=self._wake_loop,
            on_result=self._commanded,
        )
        self.meters = [m for node_meter in config.node_meters() if (m := self._meter(node_meter))]
        """Every polled or subscribed meter, the site's first; each runs in its own task."""
        self.meter = self.meters[0] if self.meters else None
        self._site_meter_id = next(
            m.id for m in config.node_meters() if (m.node or config.site.id) == config.site.id
        )
        self.demand = DemandWindow(window_s=config.site.demand_window_min * 60.0)
        self.checks = (
            ScheduleChecks(
                self.dispatcher,
                self.ocpp.link,
                self.clock,
                config.ocpp,
                self._checked,
                self._failsafe_judged,
            )
            if config.ocpp.composite_check
            else None
        )
        """GetCompositeSchedule checks of accepted setpoints; ``None`` when turned off."""
        self.loop = ControlLoop(
            config,
            self.state,
            get_policy(config.control.policy),
            self.dispatcher,
            self.clock,
            self._decided,
            self.demand if config.site.demand_target_kw is not None else None,
            self.checks,
        )
        self._charger_meters = _charger_meters(config)
        self.live = LiveView(config.site.id)
        """The latest picture and recent timeline, for the API and dashboard."""
        self.writer = (
            StateWriter(
                self.store,
                config.site.id,
                self.clock,
                config.control.lease_s,
                self.ocpp.their_transaction_id,
            )
            if self.store
            else None
        )
        """Writes sessions, setpoints and beliefs after each decision (controller/restart.py)."""
        self.operator = OperatorControl(
            config, self.clock, self.reconfigure, self.store, self.audit
        )
        """Operator settings over the YAML config (limits, schedules, priorities)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._helpers: set[asyncio.Task[None]] = set()
        self._metrics_server: WSGIServer | None = None

    def _meter(self, m: NodeMeter) -> ModbusMeter | MqttMeter | None:
        """The adapter of one meter; None for a charger's own meter (fed by OCPP)."""
        return meter_adapter(m, self.sink, self.clock)

    def _charger_meter_readings(self, event: ChargerMeasurement) -> list[MeterReading]:
        """The readings a charger's MeterValues give the meters that stand on them."""
        if not self._charger_meters:  # the common case, on every MeterValues: nothing to do
            return []
        specs = self.config.meter_specs()
        return [
            reading
            for m in self._charger_meters
            if (
                reading := as_meter_reading(
                    event, m, specs[m.id].phase_map, self.clock.now().timestamp()
                )
            )
            is not None
        ]

    def reconfigure(self, config: HeadroomConfig) -> None:
        """Apply a changed configuration (a limit, priorities) at the next decision, now."""
        self.config = config
        self._charger_meters = _charger_meters(config)
        self.metrics.reconfigure(config)
        self.loop.reconfigure(config)
        self.loop.wake()

    def _wake_loop(self) -> None:
        self.loop.wake()

    def _decided(self, decision: Decision, times: StepTimes, snapshot: SiteSnapshot) -> None:
        self.metrics.observe_decision(decision, times, snapshot)
        self.metrics.observe_response_times(self.loop.settling.learned())
        self.live.on_decision(decision, self.clock.now())
        if self.audit is not None:
            self.audit.record_decision(decision, self.clock.now())
        if self.writer is not None:
            held, routes = self.dispatcher.held, self.dispatcher.routes
            flags = self.loop.noncompliant_why()
            observed = self.loop.settling.book.observed_s
            self.writer.after_decision(
                snapshot.sessions, decision.targets, held, routes, flags, observed
            )
        if self.telemetry is not None:
            self.telemetry.publish_state(decision, snapshot, self.clock.now())
        if self._on_decision is not None:
            self._on_decision(decision, times, snapshot)

    def _learned_before(self, observed_s: Mapping[str, tuple[float, ...]]) -> None:
        """Response times learned before a restart: pacing uses them from the first decision."""
        settling = self.loop.settling
        settling.book = learned_before(settling.book, observed_s)

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

    def _checked(self, check: ScheduleCheck, result: CompositeLimit, why: str | None) -> None:
        self.metrics.observe_schedule_check(result, why)
        self.live.on_schedule_check(check, result, why, self.clock.now())

    @property
    def metrics_port(self) -> int | None:
        """The port /metrics is served on, if it is."""
        return self._metrics_server.server_port if self._metrics_server else None

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
            for reading in self._charger_meter_readings(event):
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

    async def start(self) -> None:
        """Listen for chargers, start polling the meter and deciding."""
        self.operator.load()
        if self.store is not None and self.writer is not None:  # before any charger connects
            config = self.config
            resume(
                self.store,
                config.site.id,
                self.state,
                self.dispatcher.routes,
                self.writer,
                self.clock,
                lambda cid: config.charger(cid) is not None or config.ocpp.admit_unknown,
                lambda cid, theirs, ours, evse: self.ocpp.transactions_201(cid).adopt(
                    theirs, ours, evse
                ),
                self.loop.restore_noncompliant,
                self._learned_before,
            )
        await self.ocpp.start()
        if self.config.metrics is not None:
            m = self.config.metrics
            self._metrics_server, _ = start_http_server(m.port, m.host, self.metrics.registry)
        log.info(
            "site controller started",
            site=self.config.site.id,
            ocpp_port=self.ocpp.port,
            metrics_port=self.metrics_port,
            policy=self.config.control.policy,
        )
        self._tasks = [
            *(asyncio.create_task(m.run(), name=f"meter:{m.meter_id}") for m in self.meters),
            asyncio.create_task(self.loop.run(), name="loop"),
            asyncio.create_task(self.operator.run(), name="operator"),
        ]
        if self.telemetry is not None:
            self._tasks.append(asyncio.create_task(self.telemetry.run(), name="telemetry"))

    async def stop(self) -> None:
        """Stop deciding, polling and serving; leaves no task behind."""
        tasks = [*self._tasks, *self._helpers]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._helpers = [], set()
        await self.dispatcher.close()
        for meter in self.meters:
            if isinstance(meter, ModbusMeter):
                await meter.close()
        await self.ocpp.stop()
        if self._metrics_server is not None:
            server, self._metrics_server = self._metrics_server, None
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if self.audit is not None:
            self.audit.close()
        if self.store is not None:
            self.store.close()

    async def run_forever(self) -> None:
        """Start and run until cancelled (SIGINT/SIGTERM in the CLI)."""
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()


def _charger_meters(config: HeadroomConfig) -> list[OcppNodeMeter]:
    """The meters fed by a charger's own MeterValues (none on most sites)."""
    return [m for m in config.node_meters() if isinstance(m, OcppNodeMeter)]
