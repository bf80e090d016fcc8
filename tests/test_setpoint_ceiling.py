"""The most a session's charger may hold (``SetpointLog.ceiling``): an unanswered setpoint
counts until a later one is accepted.

OCPP: a setpoint the charger answered Rejected was not applied; one that timed out, met a
CALLERROR or was on its way when the link dropped may have been; an accepted profile of the
same purpose and stack level replaces the one before it. The ceiling is what a charger back
without booting is counted at (controller/rejoin.py) and what an offline charger's car may
draw (controller/base_load.py): below what the charger holds, the site is planned short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.dispatch import Held
from controller.rejoin import rejoined_held
from controller.setpoint_log import SetpointLog

KEY = "cp/1"
TX = 7
FAILSAFE_A = 6.0
RATING_A = 32.0


def test_a_timed_out_increase_counts_after_a_target_back_at_the_held_limit() -> None:
    """16 A accepted, 32 A timed out, then the target is 16 A again: nothing is sent (the
    charger is held at 16 A), but it may be applying 32 A."""
    log = SetpointLog()
    log.record(1.0, {KEY: 16.0}, {})
    log.accepted({KEY: (1.5, 16.0)})
    log.record(2.0, {KEY: 32.0}, {KEY: 16.0})  # sent; no answer within the timeout
    log.accepted({KEY: (1.5, 16.0)})
    log.record(13.0, {KEY: 16.0}, {KEY: 16.0})
    assert log.ceiling(KEY) == 32.0


def test_an_increase_on_its_way_counts_after_a_target_back_at_the_held_limit() -> None:
    """The charger is busy with 32 A when the next decision wants 16 A again; should the link
    drop now, the charger may come back holding 32 A."""
    log = SetpointLog()
    log.record(1.0, {KEY: 16.0}, {})
    log.accepted({KEY: (1.5, 16.0)})
    log.record(2.0, {KEY: 32.0}, {KEY: 16.0})
    log.record(3.0, {KEY: 16.0}, {KEY: 16.0})
    assert log.ceiling(KEY) == 32.0


def test_an_acceptance_after_the_unanswered_one_brings_the_ceiling_down() -> None:
    """The lease renewal at 16 A is accepted after the 32 A timed out: it replaced it."""
    log = SetpointLog()
    log.record(1.0, {KEY: 16.0}, {})
    log.accepted({KEY: (1.5, 16.0)})
    log.record(2.0, {KEY: 32.0}, {KEY: 16.0})
    log.record(13.0, {KEY: 16.0}, {KEY: 16.0})
    log.accepted({KEY: (40.0, 16.0)})  # renewed
    log.record(41.0, {KEY: 16.0}, {KEY: 16.0})
    assert log.ceiling(KEY) == 16.0


@dataclass
class Charger:
    """What a charger may hold, as its answers say, and what the loop is told of it."""

    held: Held | None = None  # the dispatcher's held setpoint
    accepted_a: float | None = None  # the limit it last accepted
    maybe_a: set[float] = field(default_factory=set)  # sent since, maybe applied
    in_flight_a: float | None = None
    away: bool = False

    def most_a(self) -> float:
        """The highest limit it may hold or apply any moment (before any acceptance: any, up
        to its rating)."""
        if self.accepted_a is None:
            return RATING_A
        return max([self.accepted_a, *self.maybe_a, self.in_flight_a or 0.0])


ROUNDS = st.tuples(
    st.sampled_from([0.0, 16.0, 32.0]),  # the decision's target
    st.booleans(),  # sent (unless a call is in flight; also: fitted, skipped)
    st.sampled_from([None, "Accepted", "Rejected", "Timeout", "CallError"]),  # None: no answer yet
    st.sampled_from([None, None, "drop", "back"]),  # the link
)


def events_of(rounds: list[tuple]) -> list[tuple]:
    """Each round as its events: a decision, the answer to the call in flight, the link."""
    out: list[tuple] = []
    for target_a, send, answer, link in rounds:
        out.append(("decide", target_a, send))
        if answer is not None:
            out.append(("answer", answer))
        if link is not None:
            out.append((link,))
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(ROUNDS, max_size=30))
def test_the_ceiling_is_never_below_a_limit_the_charger_may_hold(rounds: list[tuple]) -> None:
    """Over any run of decisions, answers, drops and rejoins: the ceiling is never below a
    limit the charger may have applied and not since replaced by an accepted one (nor one
    on its way). The loop's held limit is what the charger accepted, or after a rejoin the
    most it may hold (:func:`rejoined_held`)."""
    log, c, t = SetpointLog(), Charger(), 0.0
    for event in events_of(rounds):
        t += 1.0
        if event[0] == "decide" and c.away:
            log.record(t, {}, {}, away=[KEY])
        elif event[0] == "decide":
            _, target_a, send = event
            if c.held is not None:
                log.accepted({KEY: (c.held.acked_at, c.held.limit_a)})
            log.record(t, {KEY: target_a}, {KEY: c.held.limit_a} if c.held else {})
            if send and c.in_flight_a is None:
                c.in_flight_a = target_a  # one call at a time per charger
        elif event[0] == "answer" and c.in_flight_a is not None:
            if event[1] == "Accepted":
                c.held = Held(c.in_flight_a, t, TX)
                c.accepted_a, c.maybe_a = c.in_flight_a, set()
            elif event[1] != "Rejected":  # no answer, or a CALLERROR: may have been applied
                c.maybe_a.add(c.in_flight_a)
            c.in_flight_a = None
        elif event[0] == "drop" and not c.away:
            if c.in_flight_a is not None:
                c.maybe_a.add(c.in_flight_a)
            c.in_flight_a, c.away = None, True
        elif event[0] == "back" and c.away:
            c.away = False
            c.held = rejoined_held(c.held, log.ceiling(KEY), TX, FAILSAFE_A, RATING_A, t)
        ceiling = log.ceiling(KEY)
        if ceiling is not None:
            assert ceiling >= c.most_a(), (event, ceiling, c)
