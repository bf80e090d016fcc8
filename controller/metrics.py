"""Prometheus metrics of one site: what it draws, what it may draw, how the loop fares.

Names follow the Prometheus conventions: one ``headroom_`` prefix, base units
(amperes, watts, seconds, joules), counters ending in ``_total``, and only
low-cardinality labels (site, phase, step, result, mode). The registry is
per controller, so several sites in one process, or several tests, never
share a metric by accident.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controller.config import HeadroomConfig
from controller.decide import Decision, Mode
from controller.loop import StepTimes
from controller.model import (
    CommandResult,
    CompositeLimit,
    MeterReading,
    Quality,
    ScheduleStatus,
)
from controller.snapshot import SiteSnapshot
from controller.urgency import over_limit

PHASE_NAMES = ("L1", "L2", "L3")
STEP_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)


class SiteMetrics:
    """The metrics of one site, fed by the controller."""

    def __init__(self, config: HeadroomConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or CollectorRegistry()
        site = config.site.id
        r = self.registry
        self._current = Gauge(
            "headroom_site_current_amperes",
            "Grid meter current per phase",
            ["site", "phase"],
            registry=r,
        )
        self._power = Gauge(
            "headroom_site_power_watts", "Grid meter total active power", ["site"], registry=r
        )
        self._limit_a = Gauge(
            "headroom_site_limit_amperes", "Site current limit per phase", ["site"], registry=r
        )
        self._limit_w = Gauge("headroom_site_limit_watts", "Site power limit", ["site"], registry=r)
        self._headroom = Gauge(
            "headroom_site_headroom_amperes",
            "Limit less margin less measured current, per phase",
            ["site", "phase"],
            registry=r,
        )
        self._base = Gauge(
            "headroom_base_load_amperes",
            "Estimated non-controllable load per phase",
            ["site", "phase"],
            registry=r,
        )
        self._allocated = Gauge(
            "headroom_allocated_amperes",
            "Current allocated to sessions, summed per site phase",
            ["site", "phase"],
            registry=r,
        )
        self._mode = Gauge(
            "headroom_mode", "1 for the loop's current mode", ["site", "mode"], registry=r
        )
        self._node_mode = Gauge(
            "headroom_node_mode",
            "1 for the current mode of each group with a meter of its own",
            ["site", "node", "mode"],
            registry=r,
        )
        self._sessions = Gauge("headroom_sessions", "Running sessions", ["site"], registry=r)
        self._chargers = Gauge(
            "headroom_chargers_connected", "Chargers with a live connection", ["site"], registry=r
        )
        self._meter_age = Gauge(
            "headroom_meter_age_seconds", "Age of the last good meter reading", ["site"], registry=r
        )
        self._steps = Histogram(
            "headroom_decision_step_seconds",
            "Time per step of a decision",
            ["site", "step"],
            buckets=STEP_BUCKETS_S,
            registry=r,
        )
        self._decisions = Counter(
            "headroom_decisions_total", "Decisions made", ["site"], registry=r
        )
        self._commands = Counter(
            "headroom_commands_total",
            "Charging profile commands by result",
            ["site", "result"],
            registry=r,
        )
        self._schedule_checks = Counter(
            "headroom_composite_checks_total",
            "GetCompositeSchedule checks of accepted setpoints by result",
            ["site", "result"],
            registry=r,
        )
        self._noncompliant = Gauge(
            "headroom_noncompliant_sessions",
            "Sessions whose charger does not follow its setpoint (its rating is reserved)",
            ["site"],
            registry=r,
        )
        self._response = Gauge(
            "headroom_charger_response_seconds",
            "Each charger's learned response time: how long its cars take to follow a change",
            ["site", "charger"],
            registry=r,
        )
        self._response_published: dict[str, float] = {}  # by charger: the value last set
        self._over_s = Counter(
            "headroom_over_limit_seconds_total",
            "Time the meter showed the site over its limit",
            ["site"],
            registry=r,
        )
        self._over_j = Counter(
            "headroom_over_limit_energy_joules_total",
            "Energy drawn above the power limit",
            ["site"],
            registry=r,
        )
        self._site = site
        self._last_reading_at: float | None = None
        self.reconfigure(config)

    def reconfigure(self, config: HeadroomConfig) -> None:
        """Publish the limits of a changed configuration."""
        self.config = config
        site = self._site
        if config.site.max_current_a is not None:
            self._limit_a.labels(site).set(config.site.max_current_a)
        if config.site.max_power_w is not None:
            self._limit_w.labels(site).set(config.site.max_power_w)

    def observe_reading(self, reading: MeterReading) -> None:
        """A meter reading: publish it and count time and energy over the limit."""
        if reading.quality is not Quality.GOOD:
            return
        site, limits = self._site, self.config.site
        for name, value in zip(PHASE_NAMES, reading.current_a, strict=True):
            if value is not None:
                self._current.labels(site, name).set(value)
                if limits.max_current_a is not None:
                    free_a = limits.max_current_a - limits.safety_margin_a - value
                    self._headroom.labels(site, name).set(free_a)
        if reading.power_w is not None:
            self._power.labels(site).set(reading.power_w)
        previous, self._last_reading_at = self._last_reading_at, reading.at
        if previous is None or not over_limit(reading, self.config, margin=False):
            return
        dt_s = reading.at - previous
        self._over_s.labels(site).inc(dt_s)
        max_w = limits.max_power_w
        if max_w is not None and reading.power_w is not None and reading.power_w > max_w:
            self._over_j.labels(site).inc((reading.power_w - max_w) * dt_s)

    def observe_decision(
        self, decision: Decision, times: StepTimes, snapshot: SiteSnapshot | None = None
    ) -> None:
        """One decision of the loop."""
        site = self._site
        self._decisions.labels(site).inc()
        for step, seconds in (
            ("snapshot", times.snapshot_s),
            ("solve", times.solve_s),
            ("plan", times.plan_s),
            ("dispatch", times.dispatch_s),
        ):
            self._steps.labels(site, step).observe(seconds)
        for mode in Mode:
            self._mode.labels(site, mode.value).set(1 if mode is decision.mode else 0)
            for node, (node_mode, _) in decision.node_modes.items():
                self._node_mode.labels(site, node, mode.value).set(1 if mode is node_mode else 0)
        allocated = [0.0, 0.0, 0.0]
        currents = decision.allocation.currents_a()  # one look-up per session, no entries built
        for demand in decision.problem.sessions:
            current_a = currents.get(demand.connector_id, 0.0)
            for phase in demand.phases:
                allocated[phase] += current_a
        for i, name in enumerate(PHASE_NAMES):
            self._base.labels(site, name).set(decision.base_load_a[i])
            self._allocated.labels(site, name).set(allocated[i])
        self._sessions.labels(site).set(len(decision.targets))
        self._noncompliant.labels(site).set(
            sum(1 for t in decision.targets.values() if t.reason.startswith("non-compliant"))
        )
        if snapshot is not None:
            self._chargers.labels(site).set(len(snapshot.connected))
            if snapshot.meter.good_at is not None:
                self._meter_age.labels(site).set(snapshot.at - snapshot.meter.good_at)

    def observe_response_times(self, learned: Mapping[str, float]) -> None:
        """The response time of every charger that has shown one (controller/response.py)."""
        # Called after every decision with every charger: only a changed value is set (a
        # labelled gauge costs a few µs, 1,000 of them a few ms before the frames go out).
        published = self._response_published
        for charger_id, seconds in learned.items():
            if published.get(charger_id) != seconds:
                self._response.labels(self._site, charger_id).set(seconds)
                published[charger_id] = seconds

    def observe_command(self, result: CommandResult) -> None:
        """One command's outcome."""
        self._commands.labels(self._site, result.status.value).inc()

    def observe_schedule_check(self, result: CompositeLimit, why: str | None) -> None:
        """One composite-schedule check: agrees, contradicts, unsupported or failed."""
        outcome = result.status.value if result.status is not ScheduleStatus.READ else "agrees"
        self._schedule_checks.labels(self._site, "contradicts" if why else outcome).inc()
