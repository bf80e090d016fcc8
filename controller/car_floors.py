"""The least each car can have drawn at each meter reading, from its reports. Pure.

The meter reads the building plus every car at its own instant; each charger
reports its draw at others. :func:`draw_floor` bounds a car's draw at a
reading from below with the reports around it and, until a report after it
has arrived, the setpoints it was given (:class:`SetpointLog`);
:class:`SettledFloors` keeps the floors that can no longer change.
:mod:`controller.base_load` subtracts them from the readings. The reasoning:
docs/architecture.md, "The base-load estimate".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from controller.config import HeadroomConfig
from controller.meter_book import REPORT_SKEW_S
from controller.model import PhaseValues
from controller.setpoint_log import SetpointFloor, SetpointLog
from controller.snapshot import SessionView

Phases = tuple[float, float, float]
Report = tuple[float, PhaseValues]
"""A charger's report: (controller-clock arrival time, draw per charger phase)."""


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
    start, end = _span(reports, at, skew_s)
    if start < 0:
        return None
    cap = None
    if setpoint_low is not None:
        after = reports[end][0] + skew_s if end < len(reports) else None
        cap = setpoint_low(reports[start][0] - skew_s, at, after)
    return _lowest(reports[start : end + 1], cap)


def _span(reports: Sequence[Report], at: float, skew_s: float) -> tuple[int, int]:
    """The indices of the last report before ``at`` (-1: none) and of the first after
    (``len(reports)``: none yet), each beyond the skew."""
    start, end = -1, len(reports)
    before, after = at - skew_s, at + skew_s
    for i, (r_at, _) in enumerate(reports):
        if r_at <= before:
            start = i
        elif r_at > after:
            end = i
            break
    return start, end


def _lowest(candidates: Iterable[Report], cap: float | None) -> Phases:
    """Per phase, the lowest value of the reports (a phase not reported counts as 0), no
    higher than ``cap``. (Written out per phase: it runs for every car at every reading.)"""
    a = b = c = float("inf")
    for _, (v0, v1, v2) in candidates:
        v0, v1, v2 = v0 or 0.0, v1 or 0.0, v2 or 0.0
        if v0 < a:
            a = v0
        if v1 < b:
            b = v1
        if v2 < c:
            c = v2
    if cap is not None:
        cap = max(cap, 0.0)
        a, b, c = min(a, cap), min(b, cap), min(c, cap)
    return (a, b, c)


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
    before = times[0] - skew_s
    start = next((i for i in range(len(reports) - 1, -1, -1) if reports[i][0] <= before), 0)
    values = reports[start][1]
    alike = True
    for i in range(start + 1, len(reports)):
        if reports[i][1] != values:
            alike = False
            break
    if alike:
        cap = setpoint_low(reports[start][0] - skew_s, times[-1], None) if setpoint_low else None
        if cap is None or cap >= max(values[0] or 0.0, values[1] or 0.0, values[2] or 0.0):
            floor = _lowest(reports[start : start + 1], None)
            first_at = reports[0][0]
            return [floor if first_at <= t - skew_s else None for t in times]
    return [draw_floor(reports, t, setpoint_low, skew_s) for t in times]


Kept = dict[str, tuple[int, int, Phases | None]]
"""One reading's settled floors, by session key: (transaction id, the setpoint log's
:meth:`~SetpointLog.losses` then, floor in site phases or ``None``)."""


class SettledFloors:
    """Each car's floor at each reading once it has *settled*, in site phases.

    A settled floor (see :func:`car_floors`) cannot move with later reports or
    decisions; computing it once per reading, not once per decision, is most of the
    estimate's cost at depot scale. It is kept for as long as its reading is: the
    reports it was computed from leave the session's bounded history long before that
    in a meter hold (no new reading pushes old ones out), and computed again without
    them the car would read as building load. Memory stays bounded by the readings kept
    times the connectors with a session. Also keeps each charger's wiring to site phases.
    """

    def __init__(self) -> None:
        self._by_reading: dict[float, Kept] = {}
        self._config: HeadroomConfig | None = None
        self._wiring: dict[str, tuple[int, ...]] = {}

    def keep(self, oldest_at: float) -> None:
        """Forget the readings before ``oldest_at`` (they left the estimate)."""
        for at in [at for at in self._by_reading if at < oldest_at]:
            del self._by_reading[at]

    def reading(self, at: float) -> Kept:
        """The settled floors of the reading at ``at``."""
        return self._by_reading.setdefault(at, {})

    def use(self, config: HeadroomConfig) -> None:
        """Work with ``config`` from now on. The floors are kept in site phases: a config that
        rewires a charger (a new phase rotation) drops every floor kept; any other change (an
        operator's limit, a charger added) keeps them."""
        if config is self._config:
            return
        self._config, old = config, self._wiring
        self._wiring = {}
        if any(self.wiring(charger_id) != wiring for charger_id, wiring in old.items()):
            self._by_reading.clear()

    def wiring(self, charger_id: str) -> tuple[int, ...]:
        """The site phases of the charger's L1, L2, L3 (all three for an unknown charger)."""
        wiring = self._wiring.get(charger_id)
        if wiring is None:
            charger = self._config.charger(charger_id) if self._config else None
            wiring = self._wiring[charger_id] = charger.site_phases() if charger else (0, 1, 2)
        return wiring


def _in_site_phases(floor: PhaseValues | None, wiring: tuple[int, ...]) -> Phases | None:
    """A floor per charger phase as amperes per site phase, through the charger's wiring."""
    if floor is None:
        return None
    if wiring == _STRAIGHT:
        return (floor[0] or 0.0, floor[1] or 0.0, floor[2] or 0.0)
    out = [0.0, 0.0, 0.0]
    for charger_phase, value in enumerate(floor):
        if value and charger_phase < len(wiring):
            out[wiring[charger_phase]] += value
    return (out[0], out[1], out[2])


_STRAIGHT = (0, 1, 2)


def car_floors(
    session: SessionView,
    times: Sequence[float],
    kept: Sequence[Kept],
    wiring: tuple[int, ...],
    setpoints: SetpointLog | None,
    skew_s: float,
    horizon: float,
) -> list[Phases | None]:
    """One car's floor at each of ``times`` (ascending) in site phases, by
    :func:`draw_floor` with the setpoints; those that have settled are taken from ``kept``
    (each time's settled floors) or computed once and kept there.

    A floor has settled once the car's first report after the reading has arrived and
    the setpoints that can cap it are all logged: every limit the log may still gain is
    set after ``horizon`` (an instant the loop has seen, its newest reading or report:
    decisions log their limits, and acceptances, only after it), so the report after must
    be older than that (with the skew). It holds for the session (same transaction) as long
    as its reading is kept, after the reports it was computed from have left the session's
    bounded history too, unless the log withdrew what it knew of its limits
    (:meth:`SetpointLog.losses`).
    Without setpoints nothing is kept. A car whose charger is offline is floored the same
    way: past its last report it may have followed any limit sent since, down as well as up
    (what it may draw more is reserved apart: :func:`controller.away_cars.away_reserved_a`).
    """
    reports = session.reports
    if setpoints is None or not reports:
        return [_in_site_phases(f, wiring) for f in draw_floors(reports, times, None, skew_s)]
    key, transaction_id = session.key, session.transaction_id
    last_at = reports[-1][0]
    losses = setpoints.losses(key)
    floor_of = setpoints.floor_of(key)
    floors: list[Phases | None] = []
    # The last floor computed here: readings between the same two reports, under the same
    # setpoint cap, share it (draw_floor written out, its span found once).
    last: tuple[int, int, float | None, Phases | None] = (-2, -2, None, None)
    for t, kept_at_t in zip(times, kept, strict=True):
        hit = kept_at_t.get(key)
        if hit is not None and hit[0] == transaction_id and hit[1] == losses:
            floors.append(hit[2])
            continue
        if not last_at > t + skew_s:
            break  # no report after this time yet, nor after any later one
        start, end = _span(reports, t, skew_s)  # end < len(reports): last_at is after t
        after = reports[end][0] + skew_s
        if not after < horizon:
            break  # this time's report after is too new (so is every later time's)
        floor: Phases | None = None
        if start >= 0:
            cap = setpoints.cap(key, reports[start][0] - skew_s, t, after)
            if last[0] != start or last[1] != end or last[2] != cap:
                site_floor = _in_site_phases(_lowest(reports[start : end + 1], cap), wiring)
                last = (start, end, cap, site_floor)
            floor = last[3]
        kept_at_t[key] = (transaction_id, losses, floor)
        floors.append(floor)
    if len(floors) < len(times):
        raw: PhaseValues | None = None
        site: Phases | None = None
        for open_floor in draw_floors(reports, times[len(floors) :], floor_of, skew_s):
            if open_floor is not raw:  # the shortcut gives one floor for every time
                raw, site = open_floor, _in_site_phases(open_floor, wiring)
            floors.append(site)
    return floors
