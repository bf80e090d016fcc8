"""The control loop: freeze, decide, plan, dispatch — and measure each step.

A decision runs every ``control.interval_s`` and at once when an event
calls for it (:func:`controller.urgency.is_urgent`: an over-limit reading,
a session start or stop, a charger booting or leaving, doubtful meter
data). Wakes that arrive while a decision runs coalesce into one more
decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from controller.base_load import BaseLoadEstimate
from controller.clock import Clock
from controller.collector import held_until_frames_written
from controller.config import HeadroomConfig
from controller.decide import (
    Decision,
    Mode,
    decide,
)
from controller.demand import DemandWindow
from controller.dispatch import Held, plan_changes
from controller.dispatcher import Dispatcher
from controller.group_bases import GroupBases
from controller.noncompliance import NonCompliance
from controller.rejoin import rejoined
from controller.restored import resumed_a
from controller.room import fit_increases
from controller.rotation import next_run_state
from controller.schedule_checks import ScheduleChecks
from controller.setpoint_log import SetpointLog
from controller.settling import Settling
from controller.site_problem import RunState
from controller.snapshot import SiteSnapshot
from controller.state import SiteState
from policies import Policy

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StepTimes:
    """How long each step of one decision took, in seconds."""

    snapshot_s: float
    solve_s: float
    plan_s: float
    dispatch_s: float


class ControlLoop:
    """Runs decisions for one site."""

    def __init__(
        self,
        config: HeadroomConfig,
        state: SiteState,
        policy: Policy,
        dispatcher: Dispatcher,
        clock: Clock,
        on_decision: Callable[[Decision, StepTimes, SiteSnapshot], None] | None = None,
        demand: DemandWindow | None = None,
        checks: ScheduleChecks | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._policy = policy
        self._dispatcher = dispatcher
        self._clock = clock
        self._on_decision = on_decision
        self._demand = demand
        self._checks = checks
        self._flags = NonCompliance()
        self._run_state: dict[str, RunState] = {}
        self._wake = asyncio.Event()
        self._base = BaseLoadEstimate(config.control.base_load_window_s)
        self._setpoints = SetpointLog()
        self._rejoined: set[str] = set()  # chargers back without booting, not decided on yet
        self.settling = Settling(config.control)
        self._release_at = float("inf")
        self._group_bases = GroupBases()
        self._over_limit_at = float("-inf")
        self.last: Decision | None = None
        self.decisions = 0

    def reconfigure(self, config: HeadroomConfig) -> None:
        """Decide with ``config`` (a new limit, priorities) from the next decision on."""
        self._config = config
        self._base.window_s = config.control.base_load_window_s
        self._group_bases.reconfigure(config.control.base_load_window_s)
        self.settling.control = config.control

    def wake(self, over_limit: bool = False) -> None:
        """Ask for a decision now; ``over_limit`` when a reading showed the site over its limit."""
        if over_limit:
            self._over_limit_at = self._clock.monotonic()
        self._wake.set()

    async def run(self) -> None:
        """Decide every interval and on every wake, until cancelled."""
        interval_s = self._config.control.interval_s
        next_tick = self._clock.monotonic()
        while True:
            self.decide_once()
            now = self._clock.monotonic()
            if now >= next_tick:  # this was the tick; a wake in between does not move the next
                next_tick = now + interval_s
            # The next tick, or sooner when a held-back increase may go (its car's pace).
            due_s = min(next_tick, self._release_at) - now
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the wake, and the loop would outlive its service.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(due_s, 0.05)):
                    await self._wake.wait()

    def decide_once(self) -> Decision:
        """One full cycle; sending continues in the background."""
        with held_until_frames_written():
            return self._decide_once()

    def _decide_once(self) -> Decision:
        self._wake.clear()
        t0 = time.perf_counter()
        now = self._clock.monotonic()
        self._resume(now)
        snapshot = self._state.snapshot(now)
        if self._rejoined:
            held = self._dispatcher.held
            held |= rejoined(snapshot, self._rejoined, held, self._setpoints.ceiling, self._config)
            self._rejoined.clear()
        t1 = time.perf_counter()
        control = self._config.control
        for reading in snapshot.site_readings:  # every poll since the last decision
            self._base.add(reading)
        self._setpoints.accepted(
            {k: (h.acked_at, h.limit_a) for k, h in self._dispatcher.held.items()}
        )
        # Until a window passes without an over-limit reading, the estimate answers it at
        # once and older, lower readings cannot undo the decrease (controller/base_load.py).
        recent_over = now - self._over_limit_at <= control.base_load_window_s
        # A charger that is offline is not in the problem: its car is in the base load, at
        # the most its charger may let it draw until it has settled (controller/base_load.py).
        away = [s for s in snapshot.sessions if s.charger_id not in snapshot.booted]
        away = [s for s in away if s.restored is None]  # reserved apart (controller/reserve.py)
        away_settle_s = self.settling.settle_times({s.charger_id for s in away})
        base = self._base.estimate(
            [s for s in snapshot.sessions if s.charger_id in snapshot.booted],
            self._config,
            self._setpoints,
            self._over_limit_at if recent_over else None,
            away,
            away_settle_s,
        ) or (0.0, 0.0, 0.0)
        held_a = self._dispatcher.held_a()
        failsafe_a = self._config.site.failsafe_current_a
        # Not the restored sessions: their car's draw before a setpoint re-asserted for them
        # is unknown, so that setpoint would teach a response time of nothing.
        steered = [s for s in snapshot.sessions if s.restored is None]
        self.settling.observe(steered, self._dispatcher.held, failsafe_a, now)
        self._state.settle_s = self.settling.settle_times({s.charger_id for s in snapshot.sessions})
        group_base = self._group_bases.estimate(
            snapshot, self._config, self._setpoints, away, away_settle_s
        )
        self._check_compliance(snapshot, now)
        if self._checks is not None:
            self._checks.prune({s.key: s.transaction_id for s in snapshot.sessions})
        decision = decide(
            snapshot,
            self._config,
            self._policy,
            held_a,
            base,
            self._demand_cap_w(),
            self.noncompliant_why(),
            self._run_state,
            wall_now_s=self._clock.now().timestamp(),
            group_base_a=group_base,
            response_s=self.settling.learned(),
        )
        self._run_state = next_run_state(self._run_state, decision, now)
        self._setpoints.record(
            now, {k: t.limit_a for k, t in decision.targets.items()}, held_a, [s.key for s in away]
        )
        t2 = time.perf_counter()
        # An offline charger's sessions keep what it held: it holds it still when back.
        self._dispatcher.forget_ended(set(decision.targets) | {s.key for s in away})
        changes = plan_changes(
            decision.targets,
            self._dispatcher.held,
            now,
            failsafe_a,
            control.deadband_a,
            control.lease_s / 2,
            pace=self.settling.pace(),
        )
        if decision.mode is Mode.NORMAL:
            dispatcher = self._dispatcher
            committed = self.settling.committed(
                snapshot.sessions, dispatcher.held, dispatcher.in_flight, failsafe_a, now
            )
            changes = fit_increases(decision.problem, changes, committed, control.deadband_a)
        self._release_at = self.settling.next_release(
            decision.targets, self._dispatcher.held, {c.key for c in changes}, control.deadband_a
        )
        t3 = time.perf_counter()
        self._dispatcher.submit(changes)
        if self._checks is not None:
            self._checks.start_due()  # after the setpoints: a check never delays one
        t4 = time.perf_counter()
        self._log_changes(decision)
        self.last = decision
        self.decisions += 1
        if self._on_decision is not None:
            self._on_decision(decision, StepTimes(t1 - t0, t2 - t1, t3 - t2, t4 - t3), snapshot)
        return decision

    def rejoined(self, charger_id: str) -> None:
        """The charger is back without booting: from the next decision on, its sessions count
        as holding the most they may (:func:`controller.rejoin.rejoined_held`)."""
        self._rejoined.add(charger_id)

    def _resume(self, now: float) -> None:
        """Count each setpoint a charger still holds from before a restart as held, once its
        session is confirmed (:func:`controller.restored.resumed_a`): the car is not planned
        at its charger's rating while the fail-safe default is renewed, nor paced up from
        the fail-safe current. Not for a session flagged as not following (its charger's
        word is worth nothing)."""
        lease_s = self._config.control.lease_s
        for key, transaction_id, record in self._state.take_resumed():
            limit_a = resumed_a(record, now)
            if limit_a is None or self._flags.restored(key):
                continue
            renewed_from = (record.lease_until or now) - lease_s  # renewed by half its lease
            self._dispatcher.seed(key, Held(limit_a, renewed_from, transaction_id, now))
            self._setpoints.resumed(key, record.loaded_at, limit_a)
            log.info(
                "restored setpoint held",
                session=key,
                transaction_id=transaction_id,
                limit_a=limit_a,
                lease_left_s=round((record.lease_until or now) - now, 1),
            )

    @property
    def noncompliant(self) -> frozenset[str]:
        """Sessions whose chargers do not follow their setpoints."""
        return frozenset(self.noncompliant_why())

    def noncompliant_why(self) -> dict[str, str]:
        """Each non-compliant session and why: overdrawing, or a contradicting schedule."""
        why = self._flags.why()
        if self._checks is not None:
            why |= self._checks.flagged
        return why

    def restore_noncompliant(self, key: str, transaction_id: int, why: str) -> None:
        """A session flagged before a restart (from the state store) is flagged again."""
        self._flags.restore(key, transaction_id, why)

    def _check_compliance(self, snapshot: SiteSnapshot, now: float) -> None:
        timeout_s = self._config.control.compliance_timeout_s
        self._flags.check(snapshot, self._dispatcher.held, now, timeout_s)

    def _demand_cap_w(self) -> float | None:
        target_kw = self._config.site.demand_target_kw
        if self._demand is None or target_kw is None:
            return None
        return self._demand.allowed_power_w(self._clock.now().timestamp(), target_kw * 1000)

    def _log_changes(self, decision: Decision) -> None:
        previous = self.last
        if previous is None or previous.mode is not decision.mode:
            level = log.info if decision.mode is Mode.NORMAL else log.warning
            level("mode", mode=decision.mode.value, reason=decision.mode_reason)
        before = previous.node_modes if previous is not None else {}
        for node, (mode, reason) in decision.node_modes.items():
            if node not in before or before[node][0] is not mode:
                level = log.info if mode is Mode.NORMAL else log.warning
                level("node mode", node=node, mode=mode.value, reason=reason)
        if decision.rejected:
            log.error("policy answer rejected", violations=list(decision.rejected)[:5])
