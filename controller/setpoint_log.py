"""The limits each session's charger may have offered, decision by decision. Pure.

:class:`SetpointLog` is the loop's record of the setpoints it sent: the lowest limit a
charger may have offered a car at any time (:mod:`controller.car_floors` caps a car's
draw at a reading with it) and the highest it may hold (:mod:`controller.rejoin`,
:func:`controller.away_cars.away_reserved_a`). The reasoning: docs/architecture.md,
"The base-load estimate".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

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


class SetpointLog:
    """The lowest limit each session's charger may offer, from each decision on (pure).

    A decision's target may be offered from the moment it is sent; until the charger
    accepts an increase, the lower limit it holds may still be offered. Before the first
    decision logged for a session its charger may have offered anything: the span counts
    as :data:`UNKNOWN_LIMIT_A`, so readings from then stay high until the car reports after
    them (a restarted controller widens only from settled readings).
    """

    def __init__(self, kept: int = SETPOINTS_KEPT) -> None:
        self._kept = kept
        self._log: dict[str, deque[tuple[float, float]]] = {}
        self._targets: dict[str, float] = {}
        self._losses: dict[str, int] = {}  # by session: how often what it knew was withdrawn
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
        entries = self._log.setdefault(key, deque(maxlen=self._kept))
        if (not entries or entries[0][0] > since) and len(entries) < self._kept:
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
        # The oldest entry drops out of a full log. That is no loss to a settled floor: it
        # was computed while every limit that caps it was logged, and what a charger was
        # offered then does not change. A floor computed since is capped at
        # UNKNOWN_LIMIT_A over the forgotten span (the safe side).
        entries = self._log.setdefault(key, deque(maxlen=self._kept))
        if not entries or entries[-1][1] != limit_a:
            entries.append((at, limit_a))

    def losses(self, key: str) -> int:
        """How often the log withdrew what it knew of ``key``'s limits (its charger back from
        away: it may have offered anything meanwhile; a limit held from before a restart
        prepended): floors kept under what it knew then may no longer hold."""
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
