"""The non-controllable load of a metered node, from its readings and the chargers' reports. Pure.

The meter reads the building plus every car at its own instant; each charger
reports its draw at others. This module bounds what each car drew at each
reading from below (:func:`draw_floor`), so a reading's base load
(meter − Σ floors) can be high when a car moved around it but never low, and
plans with the lowest reading of the window (:class:`BaseLoadEstimate`): a
car's movement pushes single readings up, never the estimate. The reasoning,
the guarantee and what it does not cover: docs/architecture.md, "The
base-load estimate".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise

from controller.config import HeadroomConfig
from controller.meter_book import MeterView
from controller.model import PhaseValues
from controller.node_modes import node_load_a, reading_a
from controller.state import SessionView

Phases = tuple[float, float, float]
Report = tuple[float, PhaseValues]
"""A charger's report: (controller-clock arrival time, draw per charger phase)."""

REPORT_SKEW_S = 0.2
"""How far a report's and a reading's arrival times may misorder them: both are stamped on
arrival, after their own transport and event-loop delays. A report this close to a reading
may have been measured on either side of it."""

SETPOINTS_KEPT = 16
"""Setpoint changes kept per session: far more than fit between two reports."""

READINGS_KEPT = 64
"""Readings kept per node at most (a 15 s window at one decision every 0.25 s)."""

SETTLED_WITHIN_S = 10.0
"""How far back the window reaches for a settled reading: OCPP's default MeterValues
interval, the slowest report this estimate waits for."""

UNKNOWN_LIMIT_A = 0.0
"""The lowest limit a session may have been offered before this log's first decision on it
(just started, restored after a restart, its charger back after a disconnect, or its
history run out): a limit no decision of this controller set, a previous controller's
lease running out onto the fail-safe, may have cut it, down to nothing."""

SetpointFloor = Callable[[float, float, float | None], float | None]
"""(since, at, after) → the lowest limit a session was allowed from ``since`` to ``at`` that
may still show in its draw at ``at``, given its first report after arrived at ``after``
(``None``: none yet); ``None``: no such limit (:meth:`SetpointLog.cap`)."""


def draw_floor(
    reports: Sequence[Report],
    at: float,
    setpoint_low: SetpointFloor | None = None,
    skew_s: float = REPORT_SKEW_S,
) -> PhaseValues | None:
    """The least a charger can have drawn at ``at``, per charger phase.

    The lowest of: its last report from before ``at − skew_s``, every report within
    ``skew_s`` of ``at``, and the first report after ``at + skew_s`` (a car moves
    monotonically between two reports). Until that report after has arrived, also no
    more than the lowest setpoint in force since the last report before (a car told to
    go down may already have); after it too if the limit rose again before it (the car
    may have dipped and come back; :class:`SetpointLog` knows no limit before its first
    decision on the session). ``None`` without a report from before: the car had not
    started then, or its history ran out; either way it stays inside the base load.
    """
    start, end = -1, len(reports)  # the last report before; the first after (if any)
    for i, (r_at, _) in enumerate(reports):
        if r_at <= at - skew_s:
            start = i
        elif r_at > at + skew_s:
            end = i
            break
    if start < 0:
        return None
    cap = None
    if setpoint_low is not None:
        after = reports[end][0] + skew_s if end < len(reports) else None
        cap = setpoint_low(reports[start][0] - skew_s, at, after)
    return _lowest((values for _, values in reports[start : end + 1]), cap)


def _lowest(candidates: Iterable[PhaseValues], cap: float | None) -> Phases:
    """Per phase, the lowest value (a phase not reported counts as 0), no higher than ``cap``."""
    floor = [float("inf")] * 3
    for values in candidates:
        for phase, value in enumerate(values[:3]):
            floor[phase] = min(floor[phase], value or 0.0)
    if cap is not None:
        floor = [min(v, max(cap, 0.0)) for v in floor]
    return (floor[0], floor[1], floor[2])


def draw_floors(
    reports: Sequence[Report],
    times: Sequence[float],
    setpoint_low: SetpointFloor | None = None,
    skew_s: float = REPORT_SKEW_S,
) -> list[PhaseValues | None]:
    """:func:`draw_floor` at each of ``times`` (ascending), in one step for a car whose
    reports over those times are all alike and that was offered no less (most cars, most
    of the time)."""
    if not reports or not times:
        return [None] * len(times)
    start = max((i for i, r in enumerate(reports) if r[0] <= times[0] - skew_s), default=0)
    values = reports[start][1]
    if all(r[1] == values for r in reports[start:]):
        cap = setpoint_low(reports[start][0] - skew_s, times[-1], None) if setpoint_low else None
        if cap is None or cap >= max(v or 0.0 for v in values):
            floor = _lowest([values], None)
            first_at = reports[0][0]
            return [floor if first_at <= t - skew_s else None for t in times]
    return [draw_floor(reports, t, setpoint_low, skew_s) for t in times]


class SetpointLog:
    """The lowest limit each session's charger may offer, from each decision on (pure).

    A decision's target may be offered from the moment it is sent; until the charger
    accepts an increase, the lower limit it holds may still be offered. Before the first
    decision logged for a session its charger may have offered anything: the span counts
    as :data:`UNKNOWN_LIMIT_A`, so readings from then stay high until the car reports after
    them (a restarted controller widens only from settled readings).
    """

    def __init__(self) -> None:
        self._log: dict[str, deque[tuple[float, float]]] = {}
        self._targets: dict[str, float] = {}

    def record(
        self, at: float, targets_a: Mapping[str, float], held_a: Mapping[str, float] | None = None
    ) -> None:
        """From ``at`` on, each session may be offered as little as the lower of its new
        target and what its charger holds (``held_a``); ended sessions are forgotten."""
        held_a = held_a or {}
        for key in set(self._log) - set(targets_a):
            del self._log[key]
        self._targets = dict(targets_a)
        for key, target_a in targets_a.items():
            self._append(key, at, min(target_a, held_a.get(key, target_a)))

    def accepted(self, held: Mapping[str, tuple[float, float]]) -> None:
        """``held``: by session, (when, limit) its charger last accepted. A charger that
        accepted the latest target offers no less from then on (the increase it waited for)."""
        for key, (at, limit_a) in held.items():
            entries = self._log.get(key)
            if entries and self._targets.get(key) == limit_a and at > entries[-1][0]:
                self._append(key, at, limit_a)

    def _append(self, key: str, at: float, limit_a: float) -> None:
        entries = self._log.setdefault(key, deque(maxlen=SETPOINTS_KEPT))
        if not entries or entries[-1][1] != limit_a:
            entries.append((at, limit_a))

    def lowest(self, key: str, start: float, end: float) -> float:
        """The lowest limit in force for ``key`` at any time in [``start``, ``end``]; 0 when
        the span begins before the first limit logged for it (:data:`UNKNOWN_LIMIT_A`)."""
        entries = self._log.get(key) or ()
        earlier = [limit for at, limit in entries if at <= start]
        if not earlier:
            return UNKNOWN_LIMIT_A
        return min([earlier[-1], *(limit for at, limit in entries if start < at <= end)])

    def cap(self, key: str, start: float, at: float, after: float | None) -> float | None:
        """The :meth:`lowest` limit from ``start`` to ``at`` if it can still show at ``at``:
        always until the car's next report (``after`` None); with it, only if the limit
        rose by ``after`` (a car moves monotonically between two reports only while its
        limit does not fall and rise again; before the first limit logged, anything)."""
        if after is not None and not self._rose(key, start, after):
            return None
        return self.lowest(key, start, at)

    def _rose(self, key: str, start: float, end: float) -> bool:
        entries = self._log.get(key) or ()
        earlier = [limit for at, limit in entries if at <= start]
        if not earlier:
            return True
        limits = [earlier[-1], *(limit for at, limit in entries if start < at <= end)]
        return any(b > a for a, b in pairwise(limits))

    def floor_of(self, key: str) -> SetpointFloor:
        """:meth:`cap` for one session."""
        return lambda start, at, after: self.cap(key, start, at, after)


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
        over_limit_since: float | None = None,
    ) -> Phases | None:
        """The base load to plan with, per site phase; ``None`` before the first reading.

        ``over_limit_since``: the first of a run of readings that showed the node over its
        limit, the last within a window. Then also, if higher: the newest reading less the
        reports from before it (a rise shows at once; the floors of the decrease it causes
        would read high until the cars report), and the lowest settled reading from the
        first of the run on (older, lower readings cannot undo the decrease once the cars
        follow it before they report).
        """
        since = self.planned_since(sessions)
        if since is None:
            return None
        window = _thinned([v for v in self._readings if (v.good_at or 0.0) >= since])
        run: list[MeterView] = []
        if over_limit_since is not None:
            settled_before = self._settled_before(sessions)
            times = [v.good_at or 0.0 for v in self._readings]
            start = max((t for t in times if t <= over_limit_since), default=times[0])
            run = _thinned(
                [
                    v
                    for v, t in zip(self._readings, times, strict=True)
                    if start <= t < settled_before
                ]
            )
        needed = sorted(
            {id(v): v for v in [*window, *run]}.values(), key=lambda v: v.good_at or 0.0
        )
        bases = dict(
            zip(
                (id(v) for v in needed),
                _reading_bases(needed, sessions, config, setpoints, self.skew_s),
                strict=True,
            )
        )
        terms = [_lowest_of([bases[id(v)] for v in window])]
        if over_limit_since is not None:
            terms += _reading_bases(window[-1:], sessions, config, None, self.skew_s)
            if run:
                terms.append(_lowest_of([bases[id(v)] for v in run]))
        return (max(t[0] for t in terms), max(t[1] for t in terms), max(t[2] for t in terms))


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
) -> list[Phases]:
    """:func:`reading_base_a` of each reading, one session at a time."""
    times = [v.good_at if v.good_at is not None else float("-inf") for v in readings]
    drawn = [[0.0, 0.0, 0.0] for _ in readings]
    for session in sessions:
        charger = config.charger(session.charger_id)
        wiring = charger.site_phases() if charger else (0, 1, 2)
        floor_of = setpoints.floor_of(session.key) if setpoints else None
        floors = draw_floors(session.reports, times, floor_of, skew_s)
        for i, floor in enumerate(floors):
            if floor is None:
                continue
            for charger_phase, value in enumerate(floor):
                if value and charger_phase < len(wiring):
                    drawn[i][wiring[charger_phase]] += value
    bases = []
    for view, sub in zip(readings, drawn, strict=True):
        load = reading_a(view, config.site.voltage_v)
        if view.includes_chargers:
            load = [load[p] - sub[p] for p in range(3)]
        bases.append((max(load[0], 0.0), max(load[1], 0.0), max(load[2], 0.0)))
    return bases
