"""The loop's memory of each car's changes: what it learns of response times, the pace of
increases and the room cars still settling hold. No I/O, no clock: the loop passes the time.

Per decision the loop calls :meth:`Settling.observe` with the snapshot's sessions and
the setpoints the chargers accepted; it sees each accepted change (a new
``Held.change_sent_at``: its times run from when its frame went out, the car cannot
start before) and each new report of the draw, and feeds them to
:mod:`controller.response`. :meth:`pace` and :meth:`committed` turn that into the
inputs of :mod:`controller.pacing` and :mod:`controller.room`. Between decisions,
:meth:`shows_follow` tells the service that a report shows a car has just followed
its change, so the loop decides again at once (the next ramp step, or the room a
decrease freed, need not wait for the next tick).

A charger's learned time is its cars': a car that arrived while the loop watched is
*unproven* until it has taught one itself (its first follow with a known time). Until
then its increases are paced as on an unlearned charger, its doubts last at least the
default, and its charger's settle time is ``control.response_time_max_s``: a new car
is no faster than its predecessor for being on the same charger. A session the loop
found running at its start (one restored after a restart) keeps the times learned
before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.config import ControlSettings
from controller.dispatch import Held
from controller.follow import FOLLOW_TOLERANCE_A, follows
from controller.model import PhaseValues
from controller.pacing import Pace, release_at
from controller.response import ResponseBook, WorkingBook, forget, response_s
from controller.room import committed_a
from controller.snapshot import SessionView
from controller.targets import Target


def drawn_a(current_a: PhaseValues) -> float:
    """The draw of the most loaded phase (A)."""
    return max((v or 0.0 for v in current_a), default=0.0)


class Settling:
    """Response times learned per charger, and each connector's change still settling."""

    def __init__(self, control: ControlSettings) -> None:
        self.control = control
        self.book = ResponseBook()
        # key → (when the last change was sent, limit_a, transaction id)
        self._changes: dict[str, tuple[float, float, int]] = {}
        self._seen: dict[str, float] = {}  # key → arrival time of the last report taken
        self._quiet: set[str] = set()  # keys whose last change did not move the car
        self._learned: tuple[object, object, dict[str, float]] = (None, None, {})
        self._began: float | None = None  # the first decision's time
        self._taught: dict[str, int] = {}  # key → the transaction whose car taught a time
        self._unproven: dict[str, str] = {}  # key → charger id, of cars not proven yet

    def observe(
        self,
        sessions: Iterable[SessionView],
        held: Mapping[str, Held],
        failsafe_a: float,
        now: float | None = None,
    ) -> None:
        """Take in the accepted changes and the reports since the last call (at ``now``: the
        first call's sets which sessions arrived while the loop watched; without it, none)."""
        if self._began is None and now is not None:
            self._began = now
        work = WorkingBook(self.book)
        live = set()
        sessions = list(sessions)
        for s in sessions:
            live.add(s.key)
            if self._taught.get(s.key, s.transaction_id) != s.transaction_id:
                del self._taught[s.key]  # the last car's
            h = held.get(s.key)
            if h is not None and h.transaction_id == s.transaction_id:
                before = self._changes.get(s.key)
                if before is not None and before[2] != s.transaction_id:
                    before = None  # a new car on the connector: nothing of the last one's
                    work.drop(s.key)
                sent_at = h.change_sent_at
                if before is None or sent_at > before[0]:
                    # The reports that arrived before this change was sent tell of the one
                    # before it: taken first, as if the loop had seen them then. From the
                    # send, not the acceptance: the car may start to follow as soon as the
                    # frame is out, so a slow acceptance does not shorten what is learned.
                    self._measure(work, s, sent_at)
                    old_a = before[1] if before is not None else failsafe_a
                    draw = _draw_before(s.reports, sent_at)
                    work.changed(s.key, s.charger_id, old_a, h.limit_a, sent_at, draw)
                    self._changes[s.key] = (sent_at, h.limit_a, s.transaction_id)
                    # A change the car already kept to, or one too small to see in its draw,
                    # cannot be seen followed: the increase after it waits the response time.
                    small = abs(h.limit_a - old_a) < FOLLOW_TOLERANCE_A
                    self._quiet.discard(s.key)
                    if s.key not in work.pending or small:
                        self._quiet.add(s.key)
            self._measure(work, s, float("inf"))
        self.book = forget(work.book(), live)
        for gone in [k for k in self._changes if k not in live]:
            del self._changes[gone]
            self._seen.pop(gone, None)
            self._quiet.discard(gone)
        for gone in [k for k in self._taught if k not in live]:
            del self._taught[gone]
        self._unproven = {s.key: s.charger_id for s in sessions if not self._proven(s)}

    def _proven(self, s: SessionView) -> bool:
        """True when the session's car taught a response time, or was there when the loop
        began (the time learned before a restart may be its own)."""
        began = float("inf") if self._began is None else self._began
        return self._taught.get(s.key) == s.transaction_id or s.started_at < began

    def _measure(self, work: WorkingBook, s: SessionView, until: float) -> None:
        """Take the reports of ``s`` since the last taken, up to ``until``. Only a car with
        a pending change learns from them, so the others just move the mark."""
        seen = self._seen.get(s.key, float("-inf"))
        if not s.reports or s.reports[-1][0] <= seen:
            return  # nothing new: the common case, once per session per decision
        new = [(at, current) for at, current in s.reports if seen < at <= until]
        if not new:
            return
        if s.key in work.pending:
            max_s = self.control.response_time_max_s
            # How long the car may still draw a setpoint it was told before: its response
            # time, the configured default until learned (the longest one held an unlearned
            # car's increases a minute whenever its draw sat between two close setpoints).
            # A car not proven yet: its charger's time is another car's, no shorter doubt
            # than an unlearned car's.
            window_s = work.response_s(s.charger_id, self.control.response_time_s, max_s)
            if not self._proven(s):
                window_s = max(window_s, self.control.response_time_s)
            for at, current in new:
                if work.measured(s.key, drawn_a(current), at, max_s, window_s)[0]:
                    self._taught[s.key] = s.transaction_id
        self._seen[s.key] = new[-1][0]

    def response_s(self, charger_id: str) -> float:
        """The charger's response time (the configured default until learned)."""
        c = self.control
        return response_s(self.book, charger_id, c.response_time_s, c.response_time_max_s)

    def learned(self) -> dict[str, float]:
        """The response time of every charger that has shown one."""
        # Asked several times per decision; the book is immutable, so one answer per book.
        if self._learned[0] is not self.book or self._learned[1] is not self.control:
            answer = {cid: self.response_s(cid) for cid in self.book.observed_s}
            self._learned = (self.book, self.control, answer)
        return dict(self._learned[2])

    def settle_times(self, chargers: Iterable[str]) -> dict[str, float]:
        """How long a car gets before its draw teaches what it takes (``SiteState.settle_s``):
        ``control.ev_settle_s``, or the charger's response time if longer; until that is
        learned, ``control.response_time_max_s`` (a slow car is not a car that wants less:
        until it has shown it follows, its draw does not lower its share)."""
        c, learned = self.control, self.learned()
        unproven = set(self._unproven.values())
        return {
            cid: max(
                c.ev_settle_s,
                c.response_time_max_s
                if cid in unproven
                else learned.get(cid, c.response_time_max_s),
            )
            for cid in chargers
        }

    def pace(self) -> Pace:
        """The pacing inputs of this decision."""
        c = self.control
        return Pace(
            response_s=self.learned(),
            default_s=c.response_time_s,
            following=frozenset(self.book.pending),
            quiet=frozenset(self._quiet),
            unproven=frozenset(self._unproven),
            wait_for_followed=c.increases_wait_for == "followed",
            max_s=c.response_time_max_s,
            min_interval_s=c.min_increase_interval_s,
            ramp_step_a=c.ramp_step_a,
        )

    def committed(
        self,
        sessions: Iterable[SessionView],
        held: Mapping[str, Held],
        in_flight: Mapping[str, float],
        failsafe_a: float,
        now: float,
    ) -> dict[str, float]:
        """What each session's car may draw now (:func:`controller.room.committed_a`)."""
        out = {}
        for s in sessions:
            h = held.get(s.key)
            if h is not None and h.transaction_id != s.transaction_id:
                h = None
            draw = drawn_a(s.measured_a) if s.measured_a is not None else None
            if h is None:  # on its fail-safe default, or still on a restored lease
                out[s.key] = committed_a(failsafe_a, draw, in_flight.get(s.key), True)
                continue
            # Not there yet: at the most it may draw on its way, with `increases_wait_for:
            # followed` (controller/room.py).
            pending = (
                self.book.pending.get(s.key)
                if self.control.increases_wait_for == "followed"
                else None
            )
            window_s = self.response_s(s.charger_id)
            if s.key in self._unproven:
                window_s = max(window_s, self.control.response_time_s)
            if pending is not None:
                window_s = pending.doubt_s(window_s)
            settling = pending is not None and now - h.change_sent_at < window_s
            told_a = pending.most_a(now, window_s) if pending is not None else 0.0
            out[s.key] = committed_a(h.limit_a, draw, in_flight.get(s.key), settling, told_a)
        return out

    def next_release(
        self,
        targets: Mapping[str, Target],
        held: Mapping[str, Held],
        sent: set[str],
        deadband_a: float,
    ) -> float:
        """The earliest time an increase held back by its pace may go (``inf``: none)."""
        pace, soonest = self.pace(), float("inf")
        for key, target in targets.items():
            h = held.get(key)
            if key in sent or h is None or target.limit_a <= h.limit_a + deadband_a:
                continue
            at = release_at(
                pace, key, target.charger_id, h.change_sent_at, h.increased_at, h.imposed
            )
            soonest = min(soonest, at)
        return soonest

    def shows_follow(self, key: str, current_a: PhaseValues, held: Held | None) -> bool:
        """True when a report of ``current_a`` shows the car has just followed its last
        change: one pending, or one accepted since the last decision (``held``)."""
        seen = self._changes.get(key)
        if held is not None and (seen is None or held.change_sent_at > seen[0]):
            return abs(drawn_a(current_a) - held.limit_a) <= FOLLOW_TOLERANCE_A
        change = self.book.pending.get(key)  # none for most reports: nothing to judge
        return change is not None and follows(change, drawn_a(current_a))


def _draw_before(reports: tuple[tuple[float, PhaseValues], ...], at: float) -> float | None:
    """The draw of the last report that arrived by ``at``."""
    before = [current for t, current in reports if t <= at]
    return drawn_a(before[-1]) if before else None
