"""One site's controller: the OCPP server, the meter, the state and the loop, wired.

:class:`SiteController` is what ``headroom run`` and ``headroom demo`` start:
it builds the site's adapters (:mod:`controller.site_adapters`), state, loop and
side outputs, feeds each decision to the side outputs, and starts and stops
their tasks together. Adapters feed :meth:`SiteController.sink`; what it does
with each event is in :mod:`controller.site_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
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
from controller.metrics import SiteMetrics
from controller.model import CompositeLimit
from controller.operator import OperatorControl
from controller.response import learned_before
from controller.resume import resume
from controller.schedule_checks import ScheduleChecks
from controller.site_adapters import charger_meters, meter_adapter, ocpp_server
from controller.site_events import SiteEvents
from controller.snapshot import SiteSnapshot
from controller.state import SiteState
from controller.state_writer import StateWriter
from controller.store import StateStore
from controller.telemetry import TelemetryPublisher
from policies import get_policy

log = structlog.get_logger(__name__)


class SiteController(SiteEvents):
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
        self.ocpp = ocpp_server(config, self.sink, self.clock)
        self.dispatcher = Dispatcher(
            links=self.ocpp.link,
            clock=self.clock,
            failsafe_a=config.site.failsafe_current_a,
            lease_s=config.control.lease_s,
            wake=self._wake_loop,
            on_result=self._commanded,
        )
        self.meters = [
            m
            for node_meter in config.node_meters()
            if (m := meter_adapter(node_meter, self.sink, self.clock))
        ]
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
        self._charger_meters = charger_meters(config)
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
        """Writes sessions, setpoints and beliefs after each decision (controller.state_writer)."""
        self.operator = OperatorControl(
            config, self.clock, self.reconfigure, self.store, self.audit
        )
        """Operator settings over the YAML config (limits, schedules, priorities)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._helpers: set[asyncio.Task[None]] = set()
        self._metrics_server: WSGIServer | None = None

    def reconfigure(self, config: HeadroomConfig) -> None:
        """Apply a changed configuration (a limit, priorities) at the next decision, now."""
        self.config = config
        self._charger_meters = charger_meters(config)
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

    def _checked(self, check: ScheduleCheck, result: CompositeLimit, why: str | None) -> None:
        self.metrics.observe_schedule_check(result, why)
        self.live.on_schedule_check(check, result, why, self.clock.now())

    @property
    def metrics_port(self) -> int | None:
        """The port /metrics is served on, if it is."""
        return self._metrics_server.server_port if self._metrics_server else None

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
