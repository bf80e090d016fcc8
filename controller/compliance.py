"""Chargers that do not follow their setpoint. Pure.

Some chargers accept a profile and ignore it (firmware bugs), or follow it
only at the next session. A session that keeps drawing more than the
setpoint it acknowledged, longer than a car needs to follow
(``control.compliance_timeout_s``), is flagged non-compliant. Until it
draws within its setpoint again, the loop reserves the charger's full rating
for it (invariant 1 cannot rely on a charger that does not listen) and
keeps sending it its setpoint.

The charger's own word is checked too (:func:`checks_due`, :func:`judge_composite`):
after a setpoint is accepted, its composite schedule (OCPP GetCompositeSchedule)
must show the limit we sent. A charger that reports another limit did not
install our profile as we believe (it ignored it, or stacks its profiles
wrongly), so it cannot be trusted with the next decrease either: the session is
flagged like one that overdraws, until it ends.

Flags survive a restart (the state store keeps them with the session): an
overdrawing session stays flagged until it :func:`follows` a setpoint of the
restarted controller, one flagged by its schedule until it ends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.dispatch import Held
from controller.model import CompositeLimit, ScheduleStatus
from controller.snapshot import SessionView

OVERSHOOT_TOLERANCE_A = 1.0
"""Drawing up to this much above the setpoint is measurement noise, not disobedience."""


@dataclass(frozen=True, slots=True)
class Compliance:
    """Since when each session has been over its setpoint, and which are flagged."""

    over_since: Mapping[str, float]
    flagged: frozenset[str]
    over_limit: Mapping[str, float] = field(default_factory=dict)
    """The setpoint each session was over when its clock started."""


def check(
    sessions: tuple[SessionView, ...],
    held: Mapping[str, Held],
    previous: Compliance,
    now: float,
    timeout_s: float,
) -> Compliance:
    """The compliance of every session after the latest measurements."""
    over_since: dict[str, float] = {}
    over_limit: dict[str, float] = {}
    for session in sessions:
        setpoint = held.get(session.key)
        if setpoint is None or session.measured_a is None or session.measured_at is None:
            continue
        if session.measured_at < setpoint.acked_at:
            # Measured before the latest setpoint was in force: it says nothing new, and a
            # charger over its setpoints stays over while the loop adjusts them.
            if session.key in previous.over_since:
                over_since[session.key] = previous.over_since[session.key]
                if session.key in previous.over_limit:
                    over_limit[session.key] = previous.over_limit[session.key]
            continue
        if not _overdraws(session, setpoint):
            continue
        since = previous.over_since.get(session.key)
        if since is None or _followed_since(session, setpoint, since, previous):
            over_since[session.key] = session.measured_at
            over_limit[session.key] = setpoint.limit_a
        else:
            over_since[session.key] = since
            if session.key in previous.over_limit:
                over_limit[session.key] = previous.over_limit[session.key]
    flagged = frozenset(k for k, since in over_since.items() if now - since >= timeout_s)
    return Compliance(over_since, flagged, over_limit)


def _followed_since(
    session: SessionView, setpoint: Held, since: float, previous: Compliance
) -> bool:
    """The session came down to the setpoint it was over when its clock started, and a
    lower one has been accepted since: it follows, only a step behind a run of decreases.
    Each step's car gets its own response time; a charger that ignores its setpoints never
    comes down, so its clock keeps running, and a flagged one stays flagged until it is
    within its setpoint."""
    started_over = previous.over_limit.get(session.key)
    if started_over is None or session.key in previous.flagged or setpoint.changed_at <= since:
        return False
    drawn_a = max(value or 0.0 for value in session.measured_a or (0.0,))
    return setpoint.limit_a < started_over and drawn_a <= started_over + OVERSHOOT_TOLERANCE_A


def _overdraws(session: SessionView, setpoint: Held) -> bool:
    drawn_a = max(value or 0.0 for value in session.measured_a or (0.0,))
    return drawn_a > setpoint.limit_a + OVERSHOOT_TOLERANCE_A


def follows(session: SessionView, setpoint: Held | None) -> bool:
    """True when the session was measured, under the setpoint it acknowledged, within it.

    The evidence that clears a flag kept from before a restart: a charger is
    trusted again only once it is seen following a setpoint of this controller.
    """
    if setpoint is None or setpoint.transaction_id != session.transaction_id:
        return False
    if session.measured_a is None or session.measured_at is None:
        return False
    return session.measured_at >= setpoint.acked_at and not _overdraws(session, setpoint)


@dataclass(frozen=True, slots=True)
class ScheduleCheck:
    """Ask ``charger_id`` for the composite schedule of ``connector_id``; expect ``held``."""

    key: str
    charger_id: str
    connector_id: int
    held: Held


def checks_due(
    held: Mapping[str, Held],
    checked: Mapping[str, tuple[int, float]],
    skip: Collection[str],
    now: float,
    interval_s: float,
) -> list[ScheduleCheck]:
    """The composite-schedule checks to run now: at most one per charger.

    ``checked`` is when each session (key → (transaction id, time)) was last
    checked; a session not yet checked in its transaction comes first, else the
    one checked longest ago once ``interval_s`` has passed. Sessions and chargers
    in ``skip`` (flagged sessions, chargers that cannot answer) are left out.
    """
    best: dict[str, tuple[float, ScheduleCheck]] = {}
    for key, setpoint in held.items():
        charger_id, _, connector = key.rpartition("/")
        if key in skip or charger_id in skip or setpoint.unsure:
            continue  # unsure: the most it may hold, not what it was told (controller/rejoin.py)
        last = checked.get(key)
        since = float("-inf") if last is None or last[0] != setpoint.transaction_id else last[1]
        if now - since < interval_s:
            continue
        check = ScheduleCheck(key, charger_id, int(connector), setpoint)
        if charger_id not in best or since < best[charger_id][0]:
            best[charger_id] = (since, check)
    return [check for _, check in best.values()]


def judge_composite(sent_a: float, reported: CompositeLimit, tolerance_a: float) -> str | None:
    """Why a composite schedule contradicts the setpoint ``sent_a``; None if it agrees.

    Only a schedule read says anything: a charger that cannot answer is left to
    the measured-current check. No limit at all, or a limit more than
    ``tolerance_a`` away from ours (either way), is a contradiction.
    """
    if reported.status is not ScheduleStatus.READ:
        return None
    if reported.limit_a is None:
        return f"composite schedule sets no limit; setpoint {sent_a:.1f} A"
    if abs(reported.limit_a - sent_a) <= tolerance_a:
        return None
    return f"composite schedule says {reported.limit_a:.1f} A; setpoint {sent_a:.1f} A"
