"""Whether a car has followed a change of its setpoint, judged from its reports. Pure.

After an accepted change of a connector's setpoint the car needs time to follow
it (DOMAIN.md: 5–11 s for a reduction, 10–30 s for a ramp up, brand dependent).
:class:`Pending` is a change the car has not followed yet; each report of its
draw is judged against it (:func:`measured_entry`), and what the judging
teaches is kept per charger by :mod:`controller.response`. The rules:

* the change is **followed** when the draw comes within :data:`FOLLOW_TOLERANCE_A`
  of the new setpoint (a car that overshoots has followed once the overshoot is
  over), or at or below it for a car that had to come down, or, for a car that
  wants less than it is offered, when its draw rose towards the new setpoint and
  then **settled** below it (two reports in a row within half the tolerance, at
  none of the setpoints it was told on the way: there it may only be pausing);
* a change on top of one the car has not followed yet keeps the first one's
  time and where the car came from: the car is judged on reaching the newest
  setpoint (a car still ramping up to 27 A that is told 20 A has not followed
  when it passes 20 A on its way up: it will come back down), and until it
  does it may draw any of them, each until its response time after it was
  replaced (:meth:`Pending.most_a`);
* a draw at the newest setpoint that is also within the tolerance of a level the
  car may still be drawing (where it came from, or a setpoint it was told on the
  way, replaced less than its response time ago) does not show it followed: a car
  told 13.8 A and then 12.8 A that draws 13.8 A may not have moved yet. Once that
  time has passed the change counts as followed but teaches nothing (when the car
  got there is not known); a report that arrived before the newest change was
  sent says nothing of it. That time is the response time, or longer when the
  change has shown the car slower: once a report shows it at a level it was told
  (away from where it came from), it took at most that long after the first change
  to start to follow, so it leaves each older level that long after it was replaced
  at the latest (:meth:`Pending.doubt_s`; on ``slow_evs`` a car 13 s slow, still on
  its way to 11.1 A when told 10.4 A, drew the 11.1 A 1 s after: the default 5 s
  judged it had followed the 10.4 A, and its next increase went 8 s early);
* a change the car was already inside of when it was made (within the tolerance
  of what it draws, or a decrease to above what it draws) teaches nothing;
* a report of 0 A from a car whose draw was not known when the change was made,
  and that no report has shown drawing since, teaches nothing either: the car may
  not have started (:attr:`Pending.unseen`). It still shows a pause followed (the
  car is where it was told) and the levels it is away from. A car paused on arrival
  before its first report taught its charger 0.4 s that way, for a car taking 2.2 s
  (``building_load_step``), and the next increases on that charger went early;
* a change the car has not followed within ``max_s`` teaches nothing either
  (a full battery, a sleeping car): it is dropped, not counted as slow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

FOLLOW_TOLERANCE_A = 1.0
"""A draw within this of the setpoint has followed it (meter noise, rounding in the car)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A change a connector's car has not followed yet."""

    charger_id: str
    from_a: float
    """What the car drew when it started to move (else the setpoint before the change)."""
    new_a: float
    at: float
    """When the car was first told to move: a change on top of one still being followed
    keeps the first one's time (the car has been on its way since)."""
    last_a: float | None = None
    """The draw of the last report since the change (for a car settling below)."""
    latest_at: float | None = None
    """When the newest change on top of it was made (a car never following is dropped
    ``max_s`` after that one, not after the first)."""
    passed: tuple[tuple[float, float], ...] = ()
    """Each setpoint the car was told since the first change, before ``new_a``, with when
    it was replaced: a car still on its way to 32 A when it is told 17 A may draw 32 A
    first (a car follows each offer late), until its response time after the 17 A."""
    left: frozenset[float] = frozenset()
    """When each older level (``from_a`` or one of ``passed``) the car was reported away
    from after it was replaced was replaced: a car seen elsewhere since is not still there."""
    reached_at: float | None = None
    """When a report first showed the car at a level it had been told since ``at``, away
    from ``from_a``: it took at most that long to start to follow."""
    unseen: bool = False
    """The car's draw was not known when the change was made (no report yet), and no
    report since has shown it drawing: at 0 A it may not have started."""

    @property
    def increase(self) -> bool:
        """True when the car has to draw more than it did."""
        return self.new_a > self.from_a

    def most_a(self, now: float, window_s: float) -> float:
        """The most the car may draw at ``now`` on its way to ``new_a``: that, and what it
        drew before the first change or any setpoint it was told since, each until
        ``window_s`` (its response time) after it was replaced."""
        older = ((self.from_a, self.at), *self.passed)
        recent = [a for a, replaced_at in older if now - replaced_at < window_s]
        return max([self.new_a, *recent])

    def doubt_s(self, window_s: float) -> float:
        """How long after a level was replaced the car may still draw it: ``window_s`` (its
        response time), or the time it took to reach a level it was told, if longer."""
        if self.reached_at is None:
            return window_s
        return max(window_s, self.reached_at - self.at)


def changed_entry(
    before: Pending | None,
    charger_id: str,
    old_a: float,
    new_a: float,
    at: float,
    drawn_a: float | None,
) -> Pending | None:
    """:func:`controller.response.changed` for one connector whose pending change was
    ``before``: its pending change now (``None``: the car already keeps to the new
    setpoint)."""
    if before is not None:  # still on its way: now towards the new setpoint
        passed = (*before.passed, (before.new_a, at))
        return replace(before, new_a=new_a, last_a=None, latest_at=at, passed=passed)
    if drawn_a is None:
        return Pending(charger_id, old_a, new_a, at, unseen=True)
    if not _inside(new_a, old_a, drawn_a):
        return Pending(charger_id, drawn_a, new_a, at)
    return None


def _inside(new_a: float, from_a: float, drawn_a: float) -> bool:
    """True when a car drawing ``drawn_a`` keeps to ``new_a`` (coming from ``from_a``): within
    the tolerance of it, or at or below it when it had to come down."""
    if abs(drawn_a - new_a) <= FOLLOW_TOLERANCE_A:
        return True
    return new_a < from_a and drawn_a <= new_a


def measured_entry(
    change: Pending, drawn_a: float, at: float, max_s: float, window_s: float | None = None
) -> tuple[Pending | None, float | None, bool]:
    """:func:`controller.response.measured` for one connector's pending ``change``: the
    pending change after the report (``None``: none left; ``change`` itself: nothing to
    note), the response time it teaches (``None``: none), and whether it shows the car
    followed just now."""
    if at <= change.at:
        return change, None, False
    if change.unseen and drawn_a > FOLLOW_TOLERANCE_A:
        change = replace(change, unseen=False)  # seen drawing: its reports tell from now on
    seen = _seen_off(change, drawn_a, at)
    if change.unseen:
        # At 0 A, never seen drawing: perhaps not started, which shows nothing of when it
        # follows. A pause it keeps to is followed; no time is learned, no level reached.
        entry, _, followed = _judged(seen, drawn_a, at, max_s, window_s)
        return entry, None, followed
    seen = _reached(seen, drawn_a, at)
    entry, learned_s, followed = _judged(seen, drawn_a, at, max_s, window_s)
    if learned_s is None and seen.reached_at is not None and change.reached_at is None:
        learned_s = _first_reached_s(seen, drawn_a, at)
    return entry, learned_s, followed


def _first_reached_s(change: Pending, drawn_a: float, at: float) -> float | None:
    """A car cut on its way, first reported at the first setpoint it was told: the time it
    took to follow that one, as if it had not been cut (at most: it may have been on its
    way to a later one within the tolerance of it, sooner)."""
    if change.passed and abs(drawn_a - change.passed[0][0]) <= FOLLOW_TOLERANCE_A:
        return at - change.at
    return None


def _judged(
    change: Pending, drawn_a: float, at: float, max_s: float, window_s: float | None
) -> tuple[Pending | None, float | None, bool]:
    """:func:`measured_entry` once ``change`` has taken in the report's levels seen off and
    reached."""
    if at <= (change.latest_at or change.at):
        # From before the newest change: it says nothing of it, only of the levels the car
        # has left.
        return change, None, False
    if follows(change, drawn_a):
        older = _older_within(change, drawn_a)
        window = change.doubt_s(max_s if window_s is None else window_s)
        if any(at - replaced_at < window for replaced_at in older):
            # At the newest setpoint, or still at an older one: not shown yet.
            return replace(change, last_a=drawn_a), None, False
        if older:  # followed by now, but when is not known: nothing to learn
            return None, None, True
        return None, at - change.at, True
    if at - (change.latest_at if change.latest_at is not None else change.at) > max_s:
        return None, None, False  # never followed: a full or sleeping car says nothing
    return replace(change, last_a=drawn_a), None, False


def follows(change: Pending, drawn_a: float) -> bool:
    """True when a report of ``drawn_a`` shows the car has followed ``change``."""
    return _inside(change.new_a, change.from_a, drawn_a) or _settled(change, drawn_a)


def _older_within(change: Pending, drawn_a: float) -> list[float]:
    """When each level the car was at or told before the newest setpoint, and that
    ``drawn_a`` is within the tolerance of, was replaced; not the levels it was seen away
    from since (a car at 0 A after its 6 A fail-safe was replaced, then told 6 A again,
    drawing 6 A has followed the new 6 A)."""
    older = ((change.from_a, change.at), *change.passed)
    return [
        at for a, at in older if abs(drawn_a - a) <= FOLLOW_TOLERANCE_A and at not in change.left
    ]


def _seen_off(change: Pending, drawn_a: float, at: float) -> Pending:
    """``change`` with the older levels a report of ``drawn_a`` at ``at`` shows the car
    away from: ``from_a`` once it is reported elsewhere after the first change; a setpoint
    it was told on the way only once it is reported past it, at a level told after it and
    none told before it (a car follows each offer late: one reported where it came from,
    or at 0 A before it started, may still draw a setpoint replaced since)."""
    tol = FOLLOW_TOLERANCE_A
    off = set()
    if change.at < at and abs(drawn_a - change.from_a) > tol:
        off.add(change.at)
    levels = [change.from_a, *(a for a, _ in change.passed), change.new_a]
    told_at = [change.at, *(replaced_at for _, replaced_at in change.passed)]
    for i, (a, replaced_at) in enumerate(change.passed, start=1):
        if replaced_at >= at or abs(drawn_a - a) <= tol:
            continue
        before = levels[:i]
        after = [x for x, since in zip(levels[i + 1 :], told_at[i:], strict=True) if since < at]
        past = any(abs(drawn_a - x) <= tol for x in after)
        if past and all(abs(drawn_a - x) > tol for x in before):
            off.add(replaced_at)
    if off <= change.left:
        return change
    return replace(change, left=change.left | off)


def _reached(change: Pending, drawn_a: float, at: float) -> Pending:
    """``change`` with when the car was first reported at a level it had been told by then
    (``drawn_a`` at ``at``), away from ``from_a``."""
    if change.reached_at is not None or abs(drawn_a - change.from_a) <= FOLLOW_TOLERANCE_A:
        return change
    told_at = [change.at, *(replaced_at for _, replaced_at in change.passed)]
    levels = [*(a for a, _ in change.passed), change.new_a]
    for level_a, since in zip(levels, told_at, strict=True):
        if since < at and abs(drawn_a - level_a) <= FOLLOW_TOLERANCE_A:
            return replace(change, reached_at=at)
    return change


def _settled(change: Pending, drawn_a: float) -> bool:
    """An increase a car took part of and then stopped: it wants less than it is offered.
    A car that stopped at a setpoint it was told earlier is pausing on its way, not this."""
    if not change.increase or change.last_a is None:
        return False
    if any(abs(drawn_a - a) <= FOLLOW_TOLERANCE_A for a, _ in change.passed):
        return False
    rose = change.from_a + FOLLOW_TOLERANCE_A < drawn_a < change.new_a - FOLLOW_TOLERANCE_A
    return rose and abs(drawn_a - change.last_a) <= FOLLOW_TOLERANCE_A / 2
