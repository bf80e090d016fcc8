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

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from controller.config import HeadroomConfig
from controller.meter_book import REPORT_SKEW_S
from controller.model import PhaseValues
from controller.snapshot import SessionView

Phases = tuple[float, float, float]
Report = tuple[float, PhaseValues]
"""A charger's report: (controller-clock arrival time, draw per charger phase)."""


SETPOINTS_KEPT = 16
"""Setpoint changes kept per session: far more than fit between two reports."""

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
        self._losses: dict[str, int] = {}  # by session: how often entries were forgotten
        self._ceilings: dict[str, float] = {}
        # By session: the targets logged since the last acceptance that may still be applied
        # (newest last, each higher than every later one), and when it last accepted one.
        self._unanswered: dict[str, deque[tuple[float, float]]] = {}
        self._acked: dict[str, float] = {}
        self._away: dict[str, float] = {}  # by session whose charger is offline: since when

    def record(
        self,
        at: float,
        targets_a: Mapping[str, float],
        held_a: Mapping[str, float] | None = None,
        away: Iterable[str] = (),
    ) -> None:
        """From ``at`` on, each session may be offered as little as the lower of its new
        target and what its charger holds (``held_a``); ended sessions are forgotten.

        ``away``: sessions whose charger is offline. Their limits up to its departure are
        kept (its reports from before still need them) and no more are logged; when the
        charger is back they are forgotten, as its charger may have offered anything meanwhile.
        """
        held_a = held_a or {}
        away = set(away) - set(targets_a)
        back = set(self._away) - away
        for key in (set(self._log) - set(targets_a) - away) | (back & set(self._log)):
            del self._log[key]
            self._losses[key] = self._losses.get(key, 0) + 1
        self._away = {key: self._away.get(key, at) for key in away}
        live = set(targets_a) | away
        for kept in (self._ceilings, self._unanswered, self._acked):
            for key in set(kept) - live:
                del kept[key]
        self._targets = dict(targets_a)
        for key, target_a in targets_a.items():
            self._append(key, at, min(target_a, held_a.get(key, target_a)))
            self._ceilings[key] = self._ceiling(key, at, target_a, held_a.get(key), key in back)

    def resumed(self, key: str, since: float, limit_a: float) -> None:
        """The session's charger has held ``limit_a`` from ``since`` up to the first limit
        logged for it (a setpoint kept through a restart, :func:`controller.restored.resumed_a`):
        readings from then on need not count its car as cut to :data:`UNKNOWN_LIMIT_A`."""
        entries = self._log.setdefault(key, deque(maxlen=SETPOINTS_KEPT))
        if (not entries or entries[0][0] > since) and len(entries) < SETPOINTS_KEPT:
            if entries:  # floors kept under the limits logged so far may rise
                self._losses[key] = self._losses.get(key, 0) + 1
            entries.appendleft((since, limit_a))

    def away_since(self, key: str) -> float | None:
        """When the first decision logged found the session's charger offline (``None``: it
        is not away); its charger has received no limit since."""
        return self._away.get(key)

    def ceiling(self, key: str) -> float | None:
        """The highest limit the session's charger may hold from the decisions logged (what
        it accepted last, the latest target and every target logged since that acceptance:
        one sent then that timed out, met a CALLERROR or is still on its way may have been
        applied; infinite before it accepted one); ``None`` before the first decision on it."""
        return self._ceilings.get(key)

    def accepted(self, held: Mapping[str, tuple[float, float]]) -> None:
        """``held``: by session, (when, limit) its charger last accepted. A charger that
        accepted the latest target offers no less from then on (the increase it waited for);
        an acceptance replaces every setpoint sent before it (:meth:`ceiling`)."""
        for key, (at, limit_a) in held.items():
            if at > self._acked.get(key, float("-inf")):
                self._acked[key] = at
            entries = self._log.get(key)
            if entries and self._targets.get(key) == limit_a and at > entries[-1][0]:
                self._append(key, at, limit_a)

    def _ceiling(
        self, key: str, at: float, target_a: float, held_a: float | None, fresh: bool
    ) -> float:
        """:meth:`ceiling` once ``target_a`` is logged at ``at``, the charger holding
        ``held_a`` (``fresh``: start again, back after a rejoin, ``held_a`` the most it may
        hold then: :func:`controller.rejoin.rejoined_held`).

        A setpoint is sent after the decision that logged its target, one call at a time
        per charger (:mod:`controller.dispatcher`), and an accepted profile replaces the
        one before it: every target logged before the last acceptance was either what it
        accepted, replaced by it, or never sent. A Rejected one was not applied, but which
        targets were rejected is not known here: they count until the next acceptance."""
        unanswered = self._unanswered.setdefault(key, deque())
        if fresh:
            unanswered.clear()
        acked = self._acked.get(key, float("-inf"))
        while unanswered and unanswered[0][0] < acked:
            unanswered.popleft()
        while unanswered and unanswered[-1][1] <= target_a:
            unanswered.pop()  # a later, higher target bounds it for as long as it counts
        unanswered.append((at, target_a))
        if held_a is None:
            return float("inf")
        return max(held_a, unanswered[0][1])

    def _append(self, key: str, at: float, limit_a: float) -> None:
        entries = self._log.setdefault(key, deque(maxlen=SETPOINTS_KEPT))
        if not entries or entries[-1][1] != limit_a:
            if len(entries) == SETPOINTS_KEPT:  # the oldest entry drops out
                self._losses[key] = self._losses.get(key, 0) + 1
            entries.append((at, limit_a))

    def losses(self, key: str) -> int:
        """How often the log forgot entries of ``key``: a floor capped by them may change."""
        return self._losses.get(key, 0)

    def lowest(self, key: str, start: float, end: float) -> float:
        """The lowest limit in force for ``key`` at any time in [``start``, ``end``]; 0 when
        the span begins before the first limit logged for it (:data:`UNKNOWN_LIMIT_A`)."""
        low = before = None  # the lowest set within (start, end]; the last set by start
        for at, limit in self._log.get(key) or ():
            if at <= start:
                before = limit
            elif at <= end and (low is None or limit < low):
                low = limit
        if before is None:
            return UNKNOWN_LIMIT_A
        return before if low is None or before <= low else low

    def cap(self, key: str, start: float, at: float, after: float | None) -> float | None:
        """The :meth:`lowest` limit from ``start`` to ``at`` if it can still show at ``at``:
        always until the car's next report (``after`` None); with it, only if the limit
        rose by ``after`` (a car moves monotonically between two reports only while its
        limit does not fall and rise again; before the first limit logged, anything)."""
        if after is not None and not self._rose(key, start, after):
            return None
        return self.lowest(key, start, at)

    def _rose(self, key: str, start: float, end: float) -> bool:
        last = None  # the limit in force, from the last one set by ``start`` on
        for at, limit in self._log.get(key) or ():
            if at <= start:
                last = limit
            elif at <= end:
                if last is not None and limit > last:
                    return True
                if last is None:
                    return True  # before the first limit logged: anything
                last = limit
        return last is None

    def floor_of(self, key: str) -> SetpointFloor:
        """:meth:`cap` for one session."""
        return lambda start, at, after: self.cap(key, start, at, after)


class SettledFloors:
    """Each car's floor at each reading once it has *settled*, in site phases.

    A settled floor (see :func:`car_floors`) cannot move with later reports or
    decisions; computing it once per reading, not once per decision, is most of the
    estimate's cost at depot scale. Also keeps each charger's wiring to site phases for
    one config.
    """

    def __init__(self) -> None:
        self._by_reading: dict[float, dict[str, tuple[int, float, int, Phases | None]]] = {}
        self._config: HeadroomConfig | None = None
        self._wiring: dict[str, tuple[int, ...]] = {}

    def keep(self, oldest_at: float) -> None:
        """Forget the readings before ``oldest_at`` (they left the estimate)."""
        for at in [at for at in self._by_reading if at < oldest_at]:
            del self._by_reading[at]

    def reading(self, at: float) -> dict[str, tuple[int, float, int, Phases | None]]:
        """The settled floors of the reading at ``at``, by session key: (transaction id,
        arrival of the report the floor starts from, the setpoint log's losses then, floor
        in site phases or ``None``)."""
        return self._by_reading.setdefault(at, {})

    def use(self, config: HeadroomConfig) -> None:
        """Work with ``config`` from now on; a new one (an operator's change may rewire a
        charger) drops every floor kept in site phases under the old one."""
        if config is not self._config:
            self._config, self._wiring = config, {}
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
    kept: Sequence[dict[str, tuple[int, float, int, Phases | None]]],
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
    set after ``horizon`` (the newest reading: decisions log their limits, and
    acceptances, only after it), so the report after must be older than that (with the
    skew). It holds while the session (same transaction) still has the report the floor
    starts from and the log has forgotten none of its limits (:meth:`SetpointLog.losses`).
    Without setpoints nothing is kept. A car whose charger is offline is floored the same
    way: past its last report it may have followed any limit sent since, down as well as up
    (what it may draw more is reserved apart: :func:`controller.base_load.away_reserved_a`).
    """
    reports = session.reports
    if setpoints is None or not reports:
        return [_in_site_phases(f, wiring) for f in draw_floors(reports, times, None, skew_s)]
    key, transaction_id = session.key, session.transaction_id
    first_at, last_at = reports[0][0], reports[-1][0]
    losses = setpoints.losses(key)
    floor_of = setpoints.floor_of(key)
    floors: list[Phases | None] = []
    # The last floor computed here: readings between the same two reports, under the same
    # setpoint cap, share it (draw_floor written out, its span found once).
    last: tuple[int, int, float | None, Phases | None] = (-2, -2, None, None)
    for t, kept_at_t in zip(times, kept, strict=True):
        if not last_at > t + skew_s:
            break  # no report after this time yet, nor after any later one
        hit = kept_at_t.get(key)
        if hit is None or hit[0] != transaction_id or first_at > hit[1] or hit[2] != losses:
            start, end = _span(reports, t, skew_s)  # end < len(reports): last_at is after t
            after = reports[end][0] + skew_s
            if not after < horizon:
                break  # this time's report after is too new (so is every later time's)
            if start < 0:
                floor, start_at = None, float("inf")
            else:
                start_at = reports[start][0]
                cap = setpoints.cap(key, start_at - skew_s, t, after)
                if last[0] != start or last[1] != end or last[2] != cap:
                    last = (
                        start,
                        end,
                        cap,
                        _in_site_phases(_lowest(reports[start : end + 1], cap), wiring),
                    )
                floor = last[3]
            hit = kept_at_t[key] = (transaction_id, start_at, losses, floor)
        floors.append(hit[3])
    if len(floors) < len(times):
        raw: PhaseValues | None = None
        site: Phases | None = None
        for open_floor in draw_floors(reports, times[len(floors) :], floor_of, skew_s):
            if open_floor is not raw:  # the shortcut gives one floor for every time
                raw, site = open_floor, _in_site_phases(open_floor, wiring)
            floors.append(site)
    return floors
