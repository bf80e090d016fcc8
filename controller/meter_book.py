"""The site's meters as the state sees them: one view per node of the limit tree.

:class:`MeterBook` takes each meter's readings and failures, judges them
(:mod:`controller.quality`: jumps, frozen values), orders them by their
source timestamp and says, per node, what the last good reading was and what
doubt there is now. It holds no clock: the caller passes the wall time at
arrival, which turns a reading's ``source_at`` into the controller-clock
instant it was measured at (``good_at``). Staleness is judged against that
instant, so a value that arrives fresh but was measured long ago is stale.

A reading whose source timestamp is older than the last good one never
replaces it (MQTT can deliver out of order after a reconnect).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from controller.meters.node_settings import MeterSpec
from controller.model import MeterFailed, MeterReading, PhaseValues, Quality
from controller.quality import MeterHistory, judge

log = structlog.get_logger(__name__)

REPORT_SKEW_S = 0.2
"""How far a report's and a reading's arrival times may misorder them: both are stamped on
arrival, after their own transport and event-loop delays. A report this close to a reading
may have been measured on either side of it."""

ANY_METER = "*"
"""The spec key that takes the readings of any meter id (a site with one meter)."""


@dataclass(frozen=True, slots=True)
class MeterView:
    """The last good reading of a node's meter and the current doubt, if any.

    ``good_at`` is the controller-clock instant the reading was measured at
    (its arrival, less its age by its source timestamp).
    """

    current_a: PhaseValues | None = None
    power_w: float | None = None
    good_at: float | None = None
    problem: str = ""
    problem_since: float | None = None
    meter_id: str = ""
    includes_chargers: bool = True
    source_at: float | None = None


@dataclass
class _Meter:
    spec: MeterSpec
    view: MeterView
    history: MeterHistory = field(default_factory=MeterHistory)
    out_of_order: int = 0
    recent: deque[MeterView] = field(default_factory=lambda: deque(maxlen=RECENT_READINGS))


RECENT_READINGS = 8
"""Good readings kept per meter for the base-load estimate: every poll between two decisions."""


def measured_at(at: float, source_at: float | None, wall_now: float | None) -> float:
    """The controller-clock instant a reading was measured: arrival less its source age."""
    if source_at is None or wall_now is None:
        return at
    return at - max(wall_now - source_at, 0.0)


class MeterBook:
    """Every meter's view, updated by events; :meth:`views` freezes them per node."""

    def __init__(self, specs: Mapping[str, MeterSpec], frozen_s: float = 60.0) -> None:
        self._frozen_s = frozen_s
        self._meters = {
            key: _Meter(
                spec, MeterView(meter_id=spec.meter_id, includes_chargers=spec.includes_chargers)
            )
            for key, spec in specs.items()
        }

    def spec(self, meter_id: str) -> MeterSpec | None:
        """The spec a meter's events are judged by, if the meter is known."""
        meter = self._meters.get(meter_id) or self._meters.get(ANY_METER)
        return meter.spec if meter else None

    def out_of_order(self, meter_id: str) -> int:
        """How many readings of this meter were older than the one already held."""
        meter = self._meters.get(meter_id) or self._meters.get(ANY_METER)
        return meter.out_of_order if meter else 0

    def apply(
        self,
        event: MeterReading | MeterFailed,
        chargers_draw_a: float,
        wall_now: float | None = None,
    ) -> bool:
        """Record one event; False when no meter of that id is configured.

        ``chargers_draw_a`` is the summed draw of the chargers this meter sees
        (for the frozen-meter check); ``wall_now`` the UNIX time at arrival.
        """
        meter = self._meters.get(event.meter_id) or self._meters.get(ANY_METER)
        if meter is None:
            return False
        if isinstance(event, MeterReading):
            self._read(meter, event, chargers_draw_a, wall_now)
        else:
            self._doubt(meter, event.meter_id, event.detail, event.at)
        return True

    def _read(
        self, meter: _Meter, event: MeterReading, draw_a: float, wall_now: float | None
    ) -> None:
        held = meter.view.source_at
        if event.source_at is not None and held is not None and event.source_at < held:
            meter.out_of_order += 1
            log.debug(
                "meter reading out of order", meter=event.meter_id, behind_s=held - event.source_at
            )
            return
        if event.quality is not Quality.GOOD:
            self._doubt(meter, event.meter_id, event.detail or event.quality.value, event.at)
            return
        at = measured_at(event.at, event.source_at, wall_now)
        spec = meter.spec
        problem, meter.history = judge(
            meter.history,
            event.current_a,
            event.power_w,
            at,
            draw_a,
            spec.max_step_a,
            self._frozen_s,
            spec.meter_values_interval_s,
        )
        if problem:
            self._doubt(meter, event.meter_id, problem, event.at)
            return
        if meter.view.problem:
            log.info(
                "meter recovered", meter=event.meter_id, node=spec.node, was=meter.view.problem
            )
        meter.view = MeterView(
            event.current_a,
            event.power_w,
            at,
            "",
            None,
            meter.view.meter_id or event.meter_id,
            spec.includes_chargers,
            event.source_at,
        )
        meter.recent.append(meter.view)

    def recent(self, node: str) -> tuple[MeterView, ...]:
        """The last good readings of the node's meter, oldest first."""
        meter = next((m for m in self._meters.values() if m.spec.node == node), None)
        return tuple(meter.recent) if meter else ()

    @staticmethod
    def _doubt(meter: _Meter, meter_id: str, detail: str, at: float) -> None:
        view = meter.view
        if not view.problem:
            log.warning(
                "meter reading rejected", meter=meter_id, node=meter.spec.node, reason=detail
            )
        since = view.problem_since if view.problem else at
        meter.view = MeterView(
            view.current_a,
            view.power_w,
            view.good_at,
            detail,
            since,
            view.meter_id,
            view.includes_chargers,
            view.source_at,
        )

    def views(self, at: float) -> dict[str, MeterView]:
        """Each node's meter view as of ``at``, marked stale past its meter's bound."""
        views = {}
        for meter in self._meters.values():
            view = meter.view
            if view.good_at is not None and not view.problem:
                stale_after = view.good_at + meter.spec.stale_s
                if at > stale_after:
                    view = MeterView(
                        view.current_a,
                        view.power_w,
                        view.good_at,
                        f"stale: no good reading for {at - view.good_at:.1f} s",
                        stale_after,
                        view.meter_id,
                        view.includes_chargers,
                        view.source_at,
                    )
            views[meter.spec.node] = view
        return views
