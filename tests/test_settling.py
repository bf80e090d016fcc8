"""The loop's memory of each car's changes (controller/settling.py)."""

from __future__ import annotations

from controller.config import ControlSettings
from controller.dispatch import Held
from controller.learning import EvBelief
from controller.pacing import release_at
from controller.response import learned_before
from controller.settling import Settling
from controller.snapshot import SessionView


def session(
    reports: list[tuple[float, float]], tx: int = 1, started_at: float = 0.0
) -> SessionView:
    """cp-1/1 with reports of (arrival, A on each phase)."""
    last = reports[-1] if reports else None
    return SessionView(
        key="cp-1/1",
        charger_id="cp-1",
        connector_id=1,
        transaction_id=tx,
        started_at=started_at,
        status="Charging",
        measured_a=(last[1],) * 3 if last else None,
        measured_at=last[0] if last else None,
        offered_a=None,
        belief=EvBelief(),
        reports=tuple((at, (a, a, a)) for at, a in reports),
    )


def test_an_accepted_increase_is_learned_when_the_car_follows() -> None:
    """The loop sees a new accepted change, then the report that shows it followed: the
    charger's response time is what the car took; the room counts the car at its setpoint
    while it has not drawn it, under followed mode at its draw while it comes down."""
    settling = Settling(ControlSettings(response_time_s=5.0, increases_wait_for="followed"))
    held = {"cp-1/1": Held(20.0, 10.0, 1, changed_at=10.0, increased_at=10.0)}
    settling.observe([session([(9.0, 6.0)])], held, 6.0)
    assert settling.pace().following == {"cp-1/1"}
    assert settling.committed([session([(9.0, 6.0)])], held, {}, 6.0, 11.0) == {"cp-1/1": 20.0}
    assert settling.shows_follow("cp-1/1", (19.5, 19.5, 19.5), held["cp-1/1"])
    settling.observe([session([(9.0, 6.0), (13.0, 19.6)])], held, 6.0)
    assert settling.learned() == {"cp-1": 3.0}
    assert settling.pace().following == frozenset()
    down = {"cp-1/1": Held(8.0, 20.0, 1, changed_at=20.0, increased_at=10.0)}
    settling.observe([session([(13.0, 19.6)])], down, 6.0)
    assert settling.committed([session([(13.0, 19.6)])], down, {}, 6.0, 21.0) == {"cp-1/1": 19.6}


def test_a_slow_car_is_not_learned_as_one_that_wants_less() -> None:
    """Until its charger has a response time, a car gets response_time_max_s before its draw
    lowers what it is believed to take; then the longer of ev_settle_s and that time."""
    settling = Settling(ControlSettings(ev_settle_s=10.0, response_time_max_s=60.0))
    assert settling.settle_times(["cp-1"]) == {"cp-1": 60.0}
    held = {"cp-1/1": Held(20.0, 0.0, 1, changed_at=0.0, increased_at=0.0)}
    settling.observe([session([(0.0, 6.0)])], held, 6.0)
    settling.observe([session([(0.0, 6.0), (25.0, 20.0)])], held, 6.0)
    assert settling.settle_times(["cp-1"]) == {"cp-1": 25.0}


def test_a_new_transaction_has_no_setpoint_yet() -> None:
    """A held setpoint of the connector's previous transaction does not count: the car is on
    its fail-safe default (or what it draws, if more)."""
    settling = Settling(ControlSettings())
    held = {"cp-1/1": Held(30.0, 0.0, 1)}
    assert settling.committed([session([(1.0, 7.0)], tx=2)], held, {}, 6.0, 2.0) == {"cp-1/1": 7.0}


def test_a_car_cut_before_it_drew_its_offer_holds_that_offer_under_followed() -> None:
    """Offered 32 A, cut to 17 A before it drew any: with `increases_wait_for: followed` it
    counts at 32 A until it follows or its response time after the cut passes; by default
    at its setpoint."""
    for mode, expected in (("followed", 32.0), ("acknowledged", 17.0)):
        settling = Settling(ControlSettings(response_time_s=3.0, increases_wait_for=mode))
        up = {"cp-1/1": Held(32.0, 1.0, 1, changed_at=1.0, increased_at=1.0)}
        settling.observe([session([(0.5, 0.0)])], up, 6.0)
        down = {"cp-1/1": Held(17.0, 2.0, 1, changed_at=2.0, increased_at=1.0)}
        settling.observe([session([(0.5, 0.0)])], down, 6.0)
        assert settling.committed([session([(0.5, 0.0)])], down, {}, 6.0, 4.0) == {
            "cp-1/1": expected
        }
        assert settling.committed([session([(0.5, 0.0)])], down, {}, 6.0, 5.5) == {"cp-1/1": 17.0}


def test_reports_before_an_accepted_change_tell_of_the_change_before_it() -> None:
    """Told 13.8 A (from 10.2 A), the car reports 13.8 A just before it accepts 12.8 A, and
    the loop sees both at once: the report shows it followed the 13.8 A, and the 12.8 A,
    which it was already inside of, cannot be seen followed: the next increase waits the
    response time after it, not only the minimum interval."""
    settling = Settling(ControlSettings(min_increase_interval_s=0.5))
    up = {"cp-1/1": Held(13.8, 54.0, 1, changed_at=54.0, increased_at=54.0)}
    settling.observe([session([(53.0, 10.2)])], up, 6.0)
    down = {"cp-1/1": Held(12.8, 64.0, 1, changed_at=64.0, increased_at=54.0)}
    reports = [(53.0, 10.2), (60.5, 15.8), (63.5, 13.8), (64.5, 13.8)]
    settling.observe([session(reports)], down, 6.0)
    assert settling.learned() == {"cp-1": 9.5}
    pace = settling.pace()
    assert release_at(pace, "cp-1/1", "cp-1", 64.0, 54.0, False) == 64.0 + 9.5


def test_a_new_car_on_the_connector_inherits_nothing_of_the_last_ones_change() -> None:
    """A departure and an arrival within one decision: the last car never followed its
    32 A; the new car's first setpoint (16 A, from the fail-safe 6 A) is judged on its own,
    not as a step down on the last car's way to 32 A (which would count it at 32 A)."""
    settling = Settling(ControlSettings(response_time_s=5.0, increases_wait_for="followed"))
    old = {"cp-1/1": Held(32.0, 10.0, 1, changed_at=10.0, increased_at=10.0)}
    settling.observe([session([(9.0, 6.0)])], old, 6.0)
    assert settling.book.pending["cp-1/1"].new_a == 32.0
    new = {"cp-1/1": Held(16.0, 20.0, 2, changed_at=20.0)}
    settling.observe([session([(21.0, 0.0)], tx=2)], new, 6.0)
    pending = settling.book.pending["cp-1/1"]
    assert (pending.from_a, pending.new_a, pending.at, pending.passed) == (6.0, 16.0, 20.0, ())
    assert settling.committed([session([(21.0, 0.0)], tx=2)], new, {}, 6.0, 21.0) == {
        "cp-1/1": 16.0
    }


def test_an_unlearned_cars_draw_at_an_older_level_too_counts_after_the_default_time() -> None:
    """Told 13.8 A (from 10.2 A), then 12.8 A before any follow was seen, drawing 13.8 A: it
    may still be at the 13.8 A, so it has not shown it followed the 12.8 A. Its charger has
    learned no response time: that doubt lasts the configured default (5 s) after the
    13.8 A was replaced, not the longest response time (60 s), which held the car's next
    increase a minute on the demo site. Its first report at the 13.8 A teaches no more than
    the 11 s it took to get there (reported at 65 s): the doubt lasts that long."""
    settling = Settling(ControlSettings(response_time_s=5.0, response_time_max_s=60.0))
    up = {"cp-1/1": Held(13.8, 54.0, 1, changed_at=54.0, increased_at=54.0)}
    settling.observe([session([(53.0, 10.2)])], up, 6.0)
    down = {"cp-1/1": Held(12.8, 56.0, 1, changed_at=56.0, increased_at=54.0)}
    settling.observe([session([(53.0, 10.2), (55.5, 10.2)])], down, 6.0)
    assert settling.learned() == {}
    settling.observe([session([(53.0, 10.2), (55.5, 10.2), (60.5, 10.2)])], down, 6.0)
    assert "cp-1/1" in settling.book.pending  # not moved yet
    reports = [(53.0, 10.2), (55.5, 10.2), (60.5, 10.2), (65.0, 13.8)]
    settling.observe([session(reports)], down, 6.0)
    assert settling.learned() == {"cp-1": 11.0}  # the 13.8 A reached 11 s after it was sent
    settling.observe([session([*reports, (66.5, 13.5)])], down, 6.0)
    assert "cp-1/1" in settling.book.pending  # 10.5 s after the 13.8 A was replaced
    settling.observe([session([*reports, (66.5, 13.5), (67.5, 13.4)])], down, 6.0)
    assert "cp-1/1" not in settling.book.pending  # 11.5 s after: it has left it
    assert settling.learned() == {"cp-1": 11.0}  # when it got to the 12.8 A is not known


def test_a_car_quick_to_its_first_setpoint_is_doubted_as_long_as_it_took() -> None:
    """Told 13.8 A (from 10.2 A), then 12.8 A, first reported at 13.8 A 3 s after the 13.8 A
    went out: it takes at most 3 s to follow, so drawing 13.5 A 4.5 s after the 12.8 A
    it has left the 13.8 A (before, nothing was learned and the doubt lasted the default
    5 s, or the longest response time before that)."""
    settling = Settling(ControlSettings(response_time_s=5.0, response_time_max_s=60.0))
    up = {"cp-1/1": Held(13.8, 54.0, 1, changed_at=54.0, increased_at=54.0)}
    settling.observe([session([(53.0, 10.2)])], up, 6.0)
    down = {"cp-1/1": Held(12.8, 56.0, 1, changed_at=56.0, increased_at=54.0)}
    settling.observe([session([(53.0, 10.2), (57.0, 13.8)])], down, 6.0)
    assert "cp-1/1" in settling.book.pending  # not shown yet
    assert settling.learned() == {"cp-1": 3.0}
    settling.observe([session([(53.0, 10.2), (57.0, 13.8), (60.5, 13.5)])], down, 6.0)
    assert "cp-1/1" not in settling.book.pending  # 4.5 s after: the car takes 3 s


def test_a_new_car_is_paced_as_unlearned_until_it_has_followed_once() -> None:
    """The charger's last car taught 3 s. The next car (a new transaction) is 22 s slow: its
    increase waits for its own follow (at most response_time_max_s), not the 3 s, and its
    charger's settle time is the maximum; once it has followed (22 s) it is paced by what
    its charger learned, now its own time."""
    settling = Settling(ControlSettings(response_time_s=5.0, response_time_max_s=60.0))
    settling.observe([], {}, 6.0, 0.0)
    first = {"cp-1/1": Held(20.0, 10.0, 1, changed_at=10.0, increased_at=10.0)}
    settling.observe([session([(9.0, 6.0)], started_at=5.0)], first, 6.0, 11.0)
    settling.observe([session([(9.0, 6.0), (13.0, 19.6)], started_at=5.0)], first, 6.0, 14.0)
    assert settling.learned() == {"cp-1": 3.0}
    settling.observe([], first, 6.0, 40.0)  # it leaves
    car = {"tx": 2, "started_at": 50.0}
    new = {"cp-1/1": Held(16.0, 60.0, 2, changed_at=60.0, increased_at=60.0)}
    settling.observe([session([(59.0, 0.0)], **car)], new, 6.0, 61.0)
    assert release_at(settling.pace(), "cp-1/1", "cp-1", 60.0, 60.0, False) == 120.0
    assert settling.settle_times(["cp-1"]) == {"cp-1": 60.0}
    settling.observe([session([(59.0, 0.0), (70.0, 0.0)], **car)], new, 6.0, 71.0)
    assert release_at(settling.pace(), "cp-1/1", "cp-1", 60.0, 60.0, False) == 120.0
    settling.observe([session([(59.0, 0.0), (70.0, 0.0), (82.0, 16.0)], **car)], new, 6.0, 83.0)
    assert settling.learned() == {"cp-1": 22.0}
    assert settling.settle_times(["cp-1"]) == {"cp-1": 22.0}
    down = {"cp-1/1": Held(12.0, 90.0, 2, changed_at=90.0, increased_at=60.0)}
    settling.observe([session([(82.0, 16.0)], **car)], down, 6.0, 91.0)
    assert release_at(settling.pace(), "cp-1/1", "cp-1", 90.0, 60.0, False) == 112.0


def test_a_car_there_before_a_restart_keeps_the_time_learned_before() -> None:
    """A session running when the loop began may be the one that taught the restored time:
    paced by it at once. A car that arrives afterwards has to show its own."""
    settling = Settling(ControlSettings(response_time_s=5.0, response_time_max_s=60.0))
    settling.book = learned_before(settling.book, {"cp-1": (8.0,)})
    held = {"cp-1/1": Held(16.0, 100.0, 1, changed_at=100.0, increased_at=100.0)}
    settling.observe([session([(99.0, 6.0)], started_at=50.0)], held, 6.0, 99.5)
    assert release_at(settling.pace(), "cp-1/1", "cp-1", 100.0, 100.0, False) == 108.0
    later = {"cp-1/1": Held(16.0, 200.0, 2, changed_at=200.0, increased_at=200.0)}
    settling.observe([session([(199.0, 6.0)], tx=2, started_at=150.0)], later, 6.0, 201.0)
    assert release_at(settling.pace(), "cp-1/1", "cp-1", 200.0, 200.0, False) == 260.0


def test_a_timed_out_increase_is_paced_as_a_change_sent_then() -> None:
    """An increase without an answer (``Held.unsure``, its frame sent at 20 s) may have been
    applied: the car is timed on it from its send, so the next increase waits for the car
    or its response time (3 s) after 20 s, not only the minimum interval after the last
    accepted increase."""
    settling = Settling(ControlSettings(response_time_s=5.0, min_increase_interval_s=1.0))
    held = {"cp-1/1": Held(16.0, 10.0, 1, changed_at=10.0, increased_at=10.0)}
    settling.observe([session([(9.0, 6.0)])], held, 6.0)
    settling.observe([session([(9.0, 6.0), (13.0, 16.0)])], held, 6.0)
    assert settling.learned() == {"cp-1": 3.0}
    maybe = Held(32.0, float("-inf"), 1, 10.0, 10.0, unsure=True, sent_at=20.0)
    settling.observe([session([(13.0, 16.0), (20.5, 16.0)])], {"cp-1/1": maybe}, 6.0)
    assert settling.pace().following == {"cp-1/1"}
    pace = settling.pace()
    assert release_at(pace, "cp-1/1", "cp-1", maybe.change_sent_at, 10.0, False) == 23.0
