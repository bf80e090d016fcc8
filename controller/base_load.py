"""The non-controllable load of a metered node, from its readings and the chargers' reports. Pure.

The meter reads the building plus every car at its own instant; each charger
reports its draw at others. Each car's draw at each reading is bounded from
below (:func:`~controller.car_floors.draw_floor`), so a reading's base load
(meter − Σ floors) can be high when a car moved around it but never low, and
this module plans with the lowest reading of the window
(:class:`BaseLoadEstimate`): a car's movement pushes single readings up, never
the estimate. The reasoning, the guarantee and what it does not cover:
docs/architecture.md, "The base-load estimate".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from controller.away_cars import AwayCars
from controller.car_floors import (
    Phases,
    SettledFloors,
    car_floors,
    draw_floor,
)
from controller.config import HeadroomConfig
from controller.meter_book import REPORT_SKEW_S, MeterView
from controller.node_modes import node_load_a, reading_a
from controller.over_limit import over_limit_bases
from controller.setpoint_log import SetpointLog
from controller.snapshot import SessionView

READINGS_KEPT = 64
"""Readings kept per node at most (a 15 s window at one decision every 0.25 s)."""

SETTLED_WITHIN_S = 10.0
"""How far back the window reaches for a settled reading: OCPP's default MeterValues
interval, the slowest report this estimate waits for."""


def reading_base_a(
    view: MeterView,
    sessions: Sequence[SessionView],
    config: HeadroomConfig,
    setpoints: SetpointLog | None,
    skew_s: float = REPORT_SKEW_S,
) -> Phases:
    """One reading's base load: meter − each session's :func:`draw_floor` at its instant
    (without ``setpoints``, the floors of the reports alone)."""
    at = view.good_at if view.good_at is not None else float("-inf")
    return node_load_a(
        view,
        sessions,
        config,
        lambda s: draw_floor(
            s.reports, at, setpoints.floor_of(s.key) if setpoints else None, skew_s
        ),
    )


class BaseLoadEstimate:
    """One metered node's base load: the lowest of its readings' estimates in the window.

    Readings are added as the loop sees them; every estimate recomputes each reading
    with the reports known now, so readings settle as later reports arrive. The window
    reaches back to the newest settled reading (one every car has reported after) when
    it holds none: a reading the cars have not reported after yet is high by every
    decrease they were told and may not have followed, and a short window, or a charger
    that follows late, would otherwise plan with such readings alone.
    """

    def __init__(self, window_s: float, skew_s: float = REPORT_SKEW_S) -> None:
        self.window_s = window_s
        self.skew_s = skew_s
        self._readings: deque[MeterView] = deque(maxlen=READINGS_KEPT)
        self._settled = SettledFloors()
        self._horizon = float("-inf")

    def add(self, view: MeterView) -> None:
        """Keep a good reading (a reading already kept is not added twice)."""
        if view.good_at is None or view.problem:
            return
        last_at = self._readings[-1].good_at if self._readings else None
        if last_at is not None and view.good_at <= last_at:
            return
        self._readings.append(view)
        keep_s = max(self.window_s, SETTLED_WITHIN_S)
        while view.good_at - (self._readings[0].good_at or 0.0) > keep_s:
            self._readings.popleft()
        self._settled.keep(self._readings[0].good_at or 0.0)

    def planned_since(self, sessions: Sequence[SessionView]) -> float | None:
        """The time of the oldest reading of the window (``None``: no reading yet); when
        none of the window's readings has settled, of the newest one that has."""
        if not self._readings:
            return None
        settled_before = self._settled_before(sessions)
        times = [v.good_at or 0.0 for v in self._readings]
        in_window = [t for t in times if t >= times[-1] - self.window_s]
        if in_window[0] < settled_before:
            return in_window[0]
        settled = [t for t in times if t < settled_before]
        return settled[-1] if settled else in_window[0]

    def _settled_before(self, sessions: Sequence[SessionView]) -> float:
        """Readings before this time have settled: every car has reported after them."""
        last = (s.reports[-1][0] for s in sessions if s.reports)
        return min(last, default=float("inf")) - self.skew_s

    def estimate(
        self,
        sessions: Sequence[SessionView],
        config: HeadroomConfig,
        setpoints: SetpointLog,
        over_limit_at: float | None = None,
        away: Sequence[SessionView] = (),
        settle_s: Mapping[str, float] | None = None,
    ) -> Phases | None:
        """The base load to plan with, per site phase; ``None`` before the first reading.

        ``over_limit_at``: the latest reading that showed the node over its limit, within a
        window. Then also, if higher, the lowest of: that reading less the cars' reports
        from before it (:func:`~controller.over_limit.over_limit_bases`: a rise shows at
        once), and each settled reading after it (older, lower readings cannot undo the
        decrease once the cars follow it before they report; settled, a newer reading
        tells what the building draws since). Neither the cars' answer to that reading nor
        our own increases since read as building load (:mod:`controller.over_limit`).

        ``away``: sessions whose charger is offline (not steered, so in the base load), each
        counted once in every reading (:class:`AwayCars`); ``settle_s``: by charger, the time
        its car takes to settle on a new limit (none: never taken as settled).
        """
        since = self.planned_since(sessions)
        if since is None:
            return None
        window = _thinned([v for v in self._readings if (v.good_at or 0.0) >= since])
        horizon = self._horizon = max(
            self._horizon, _seen_until(self._readings[-1], sessions, away)
        )
        over: list[MeterView] = []  # the latest over-limit reading
        run: list[MeterView] = []  # the settled readings after it
        if over_limit_at is not None:
            settled_before = self._settled_before(sessions)
            times = [v.good_at or 0.0 for v in self._readings]
            over_at = max((t for t in times if t <= over_limit_at), default=times[0])
            over = [v for v, t in zip(self._readings, times, strict=True) if t == over_at]
            run = _thinned(
                [
                    v
                    for v, t in zip(self._readings, times, strict=True)
                    if over_at < t < settled_before
                ]
            )
        needed = sorted(
            {id(v): v for v in [*window, *run]}.values(), key=lambda v: v.good_at or 0.0
        )
        cars = AwayCars(away, config, setpoints, settle_s or {}, self.skew_s)
        bases = dict(
            zip(
                (id(v) for v in needed),
                _reading_bases(
                    needed, sessions, config, setpoints, self.skew_s, self._settled, horizon, cars
                ),
                strict=True,
            )
        )
        terms = [_lowest_of([bases[id(v)] for v in window])]
        if over:
            over_bases = over_limit_bases(over, sessions, config, self.skew_s)
            terms.append(_lowest_of([*over_bases, *(bases[id(v)] for v in run)]))
        return (max(t[0] for t in terms), max(t[1] for t in terms), max(t[2] for t in terms))


def _seen_until(
    newest: MeterView, sessions: Sequence[SessionView], away: Sequence[SessionView]
) -> float:
    """The latest instant the loop has seen: its newest reading or report. Every limit the
    setpoint log gains from now on is logged later (a decision logs after it estimates;
    acceptances up to now are logged before), so a floor whose report after is older has
    settled. Not the newest reading alone: while the meter is held (frozen or silent) no
    reading comes, and the cars' reports since would never settle one."""
    seen = newest.good_at or 0.0
    for session in (*sessions, *away):
        if session.reports and session.reports[-1][0] > seen:
            seen = session.reports[-1][0]
    return seen


def _lowest_of(bases: Sequence[Phases]) -> Phases:
    return (min(b[0] for b in bases), min(b[1] for b in bases), min(b[2] for b in bases))


READINGS_PLANNED = 8
"""Readings estimated per decision at most (the first, the newest and evenly between): the
cost is per session, and the lowest of fewer readings is no lower."""


def _thinned(readings: list[MeterView]) -> list[MeterView]:
    if len(readings) <= READINGS_PLANNED:
        return readings
    step = (len(readings) - 1) / (READINGS_PLANNED - 1)
    return [readings[round(i * step)] for i in range(READINGS_PLANNED)]


def _reading_bases(
    readings: Sequence[MeterView],
    sessions: Sequence[SessionView],
    config: HeadroomConfig,
    setpoints: SetpointLog | None,
    skew_s: float,
    settled: SettledFloors | None = None,
    horizon: float = float("-inf"),
    away: AwayCars | None = None,
) -> list[Phases]:
    """:func:`reading_base_a` of each reading, one session at a time, with the ``away``
    cars counted in; the floors that have settled by ``horizon`` (see
    :func:`~controller.car_floors.car_floors`) are taken from (and kept in) ``settled``."""
    if settled is None:
        settled = SettledFloors()
    times = [v.good_at if v.good_at is not None else float("-inf") for v in readings]
    settled.use(config)
    kept = [settled.reading(t) for t in times]
    drawn = [[0.0, 0.0, 0.0] for _ in readings]
    for session in sessions:
        wiring = settled.wiring(session.charger_id)
        floors = car_floors(session, times, kept, wiring, setpoints, skew_s, horizon)
        for sums, floor in zip(drawn, floors, strict=True):
            if floor is not None:
                sums[0] += floor[0]
                sums[1] += floor[1]
                sums[2] += floor[2]
    on_top = [[0.0, 0.0, 0.0] for _ in readings]
    if away is not None:
        for i, session in enumerate(away.sessions):
            wiring = settled.wiring(session.charger_id)
            floors = car_floors(session, times, kept, wiring, setpoints, skew_s, horizon)
            for at, floor, sub, add in zip(times, floors, drawn, on_top, strict=True):
                away.count(i, at, floor, sub, add)
    bases = []
    for view, sub, add in zip(readings, drawn, on_top, strict=True):
        load = reading_a(view, config.site.voltage_v)
        if view.includes_chargers:
            load = [load[p] - sub[p] for p in range(3)]
        bases.append(
            (max(load[0], 0.0) + add[0], max(load[1], 0.0) + add[1], max(load[2], 0.0) + add[2])
        )
    return bases
