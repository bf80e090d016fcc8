"""Learning each charger's response time from the measured current (controller/follow.py,
controller/response.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.response import (
    KEEP,
    MIN_RESPONSE_S,
    ResponseBook,
    changed,
    following,
    forget,
    learned_before,
    measured,
    response_s,
)

KEY = "cp-1/1"


def after(book: ResponseBook, *reports: tuple[float, float]) -> tuple[ResponseBook, list[bool]]:
    """The book after ``reports`` of (arrival time, draw), and which of them showed a follow."""
    shown = []
    for at, drawn in reports:
        book, followed = measured(book, KEY, drawn, at, 60.0)
        shown.append(followed)
    return book, shown


def test_the_default_applies_until_a_change_is_followed() -> None:
    """No observation yet: the configured default; then the time the car took."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 100.0, 6.0)
    assert response_s(book, "cp-1", 5.0, 60.0) == 5.0
    assert following(book, KEY)
    book, shown = after(book, (101.0, 6.0), (112.0, 6.0), (113.5, 15.6))
    assert shown == [False, False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == 13.5
    assert not following(book, KEY)


def test_a_decrease_is_followed_once_the_draw_is_at_or_below_the_setpoint() -> None:
    """A car told 10 A that draws 9 A has followed (it may want less than 10 A)."""
    book = changed(ResponseBook(), KEY, "cp-1", 20.0, 10.0, 0.0, 20.0)
    book, shown = after(book, (3.0, 20.0), (7.0, 9.0))
    assert shown == [False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == 7.0


def test_a_car_that_wants_less_settles_below_its_setpoint() -> None:
    """Offered 32 A, a 16 A car rises to 16 A and stays there: followed when it settles."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 32.0, 0.0, 6.0)
    book, shown = after(book, (4.0, 6.0), (9.0, 16.0), (10.0, 16.1))
    assert shown == [False, False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == 10.0


def test_an_overshoot_is_followed_once_it_is_over() -> None:
    """A car that overshoots its new setpoint has followed it when it settles on it."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 0.0, 6.0)
    book, shown = after(book, (8.0, 19.0), (11.0, 16.2))
    assert shown == [False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == 11.0


def test_a_change_on_top_of_one_not_followed_is_judged_on_the_newest() -> None:
    """Told 27 A, still at 6 A, then told 20 A: passing 20 A on its way up to 27 A is not
    following; coming back to 20 A is, timed from the first change."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 27.0, 0.0, 6.0)
    book = changed(book, KEY, "cp-1", 27.0, 20.0, 5.0, 6.0)
    book, shown = after(book, (30.5, 27.0), (35.5, 20.0))
    assert shown == [False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == 35.5


def test_a_car_cut_before_it_drew_its_offer_may_still_draw_it() -> None:
    """Told 32 A, then 17 A before it drew any of it: until its response time after the
    17 A it may still draw 32 A (it follows each offer late); what it drew before, until
    its response time after the first change."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 32.0, 0.0, 6.0)
    book = changed(book, KEY, "cp-1", 32.0, 17.0, 1.5, 6.0)
    pending = book.pending[KEY]
    assert pending.most_a(2.0, 3.0) == 32.0
    assert pending.most_a(4.4, 3.0) == 32.0
    assert pending.most_a(4.6, 3.0) == 17.0
    book, shown = after(book, (3.0, 32.0), (5.0, 17.0))
    assert shown == [False, True]


def test_a_car_pausing_at_an_earlier_setpoint_has_not_settled() -> None:
    """Told 27 A, then 20 A: a car that stays at 27 A is on its way; one that stays at 16 A,
    none of its setpoints, wants less and has followed."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 27.0, 0.0, 6.0)
    book = changed(book, KEY, "cp-1", 27.0, 20.0, 1.0, 6.0)
    _, shown = after(book, (3.0, 27.0), (4.0, 27.1))
    assert shown == [False, False]
    _, shown = after(book, (3.0, 16.0), (4.0, 16.1))
    assert shown == [False, True]


def test_a_car_still_at_a_setpoint_close_to_the_newest_has_not_shown_it_followed() -> None:
    """Told 13.8 A, then 12.8 A on top: drawing 13.8 A it may not have moved yet, so it
    has not followed until its response time (6 s) after the 13.8 A has passed, or the
    10.5 s it was first seen to take to reach the 13.8 A if longer; then it has, but when
    is not known. What it teaches is the time it took to reach the 13.8 A."""
    book = changed(ResponseBook(), KEY, "cp-1", 10.2, 13.8, 54.0, 10.2)
    book = changed(book, KEY, "cp-1", 13.8, 12.8, 64.0, 15.8)
    book, shown = after(book, (64.5, 13.8))
    assert shown == [False]
    assert following(book, KEY)
    assert book.pending[KEY].doubt_s(6.0) == 10.5
    book, shown = measured(book, KEY, 12.8, 70.5, 60.0, 6.0)
    assert not shown
    book, shown = measured(book, KEY, 12.8, 74.6, 60.0, 6.0)
    assert shown
    assert not following(book, KEY)
    assert book.observed_s["cp-1"] == (10.5,)


def test_a_car_slower_than_the_doubt_is_doubted_as_long_as_it_took() -> None:
    """slow_evs: a car 13.4 s slow, from 0 A told 11.1 A at 100.4 s, reported at it at
    115 s, after it was told 10.4 A at 114 s. Drawing 11.1 A it may be at either, and it
    took up to 14.6 s to reach the 11.1 A: it has not shown it followed the 10.4 A until
    14.6 s after 114 s, not after the 5 s default (it follows at 127.4 s; the increase
    judged on the default went at 119.5 s, 8 s before the car could follow). Reaching the
    11.1 A, it has shown what it takes to follow one setpoint: at most 14.6 s."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 11.1, 100.4, 0.0)
    for at, drawn in ((105.0, 0.0), (110.0, 0.0)):
        book, _ = measured(book, KEY, drawn, at, 60.0, 5.0)
    book = changed(book, KEY, "cp-1", 11.1, 10.4, 114.0, 0.0)
    for at, drawn in ((115.0, 11.1), (120.0, 11.1), (125.0, 11.1), (128.0, 10.4)):
        book, shown = measured(book, KEY, drawn, at, 60.0, 5.0)
        assert not shown, at
        seen = book.observed_s.get("cp-1")
        assert seen == ((pytest.approx(14.6),) if at >= 115.0 else None)
    assert book.pending[KEY].doubt_s(5.0) == pytest.approx(14.6)
    book, shown = measured(book, KEY, 10.4, 128.7, 60.0, 5.0)
    assert shown
    assert book.observed_s["cp-1"] == (pytest.approx(14.6),)


def test_only_a_level_told_before_the_report_is_reached() -> None:
    """A draw at a level it was told only later, or at the level it came from, shows
    nothing of how long the car takes to reach one."""
    book = changed(ResponseBook(), KEY, "cp-1", 10.0, 20.0, 0.0, 10.0)
    book = changed(book, KEY, "cp-1", 20.0, 14.0, 1.0, None)
    book, _ = after(book, (0.5, 10.2), (0.8, 14.0))  # the 14 A was sent at 1 s
    assert book.pending[KEY].reached_at is None
    book, _ = after(book, (1.5, 19.8))
    assert book.pending[KEY].reached_at == 1.5
    assert book.pending[KEY].doubt_s(1.0) == 1.5


def test_a_car_not_yet_at_a_setpoint_it_was_told_has_not_left_it() -> None:
    """From 0 A told 11.1 A, then 10.4 A, reported at 0 A after the cut: it has not started,
    and may still draw the 11.1 A, so drawing it later it has not followed the 10.4 A.
    Told 20 A, 10.4 A and 15 A, reported at the 10.4 A: it has left the 20 A."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 11.1, 100.0, 0.0)
    book = changed(book, KEY, "cp-1", 11.1, 10.4, 101.5, 0.0)
    book, _ = after(book, (102.0, 0.0))
    assert book.pending[KEY].left == frozenset()
    book, shown = after(book, (103.0, 11.1))
    assert shown == [False]
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 20.0, 100.0, 0.0)
    book = changed(book, KEY, "cp-1", 20.0, 10.4, 101.0, 0.0)
    book = changed(book, KEY, "cp-1", 10.4, 15.0, 102.0, 0.0)
    book, _ = after(book, (102.5, 10.4))
    assert book.pending[KEY].left == {100.0, 101.0}


@given(st.floats(1, 30), st.floats(0.2, 10), st.floats(0, 1), st.floats(1, 60))
def test_a_car_cut_on_its_way_is_never_taken_to_have_followed_before_it_could(
    delay_s: float, report_s: float, cut_share: float, window_s: float
) -> None:
    """A car that follows each offer ``delay_s`` late, reported every ``report_s``, told
    11.1 A from 0 A and then 10.4 A before it could follow: whatever the response time
    assumed (``window_s``), no report shows it followed the 10.4 A before it could have
    (``delay_s`` after it was sent)."""
    first_at = 100.0
    cut_at = first_at + cut_share * delay_s
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 11.1, first_at, 0.0)
    cut = False
    at = first_at
    while at < cut_at + 3 * delay_s + 2 * report_s:
        at += report_s
        if not cut and at > cut_at:
            book = changed(book, KEY, "cp-1", 11.1, 10.4, cut_at, None)
            cut = True
        draw = 0.0
        if at - cut_at >= delay_s and cut:
            draw = 10.4
        elif at - first_at >= delay_s:
            draw = 11.1
        book, shown = measured(book, KEY, draw, at, 60.0, window_s)
        if shown or KEY not in book.pending:
            assert at >= cut_at + delay_s or not cut
            break


def test_a_car_that_has_not_moved_is_not_taken_for_one_back_where_it_was() -> None:
    """At 10 A, told 20 A and then 10.5 A: still drawing 10 A it has not followed (it may yet
    draw 20 A for a while), and that is not a response time of half a second."""
    book = changed(ResponseBook(), KEY, "cp-1", 10.0, 20.0, 0.0, 10.0)
    book = changed(book, KEY, "cp-1", 20.0, 10.5, 1.0, 10.0)
    book, shown = after(book, (1.5, 10.0))
    assert shown == [False]
    assert following(book, KEY)
    assert "cp-1" not in book.observed_s


def test_a_car_seen_away_from_an_older_level_and_back_at_it_has_followed() -> None:
    """On its 6 A fail-safe (no report yet), told 32 A, then paused, then 6 A again: it was
    reported at 0 A after the fail-safe was replaced, so drawing 6 A it is not still on the
    fail-safe but has followed the new 6 A, at once (before, it waited the 60 s an
    unlearned charger's older levels stay possible, its increases held all that time)."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 32.0, 0.0, None)
    book, shown = after(book, (0.5, 0.0))
    assert shown == [False]
    book = changed(book, KEY, "cp-1", 32.0, 0.0, 1.0, 0.0)
    book = changed(book, KEY, "cp-1", 0.0, 6.0, 2.0, 0.0)
    book, shown = measured(book, KEY, 6.0, 2.6, 60.0, 60.0)
    assert shown
    assert not following(book, KEY)


def test_a_car_paused_before_its_first_report_teaches_nothing_by_reporting_0_a() -> None:
    """On its 6 A fail-safe, paused before any report of it (building_load_step: cp-06):
    its first report, 0 A, shows the pause followed, but the car may never have started,
    so no time is learned (it taught 0.4 s for a car taking 2.2 s)."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 0.0, 10.0, None)
    book, shown = after(book, (10.4, 0.0))
    assert shown == [True]
    assert not following(book, KEY)
    assert "cp-1" not in book.observed_s


def test_a_car_seen_drawing_teaches_by_reporting_0_a() -> None:
    """The same pause of a car that has been reported drawing since the change is a car
    following it: its 0 A report teaches the time."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 0.0, 10.0, None)
    book, shown = after(book, (10.5, 6.0), (12.2, 0.0))
    assert shown == [False, True]
    assert response_s(book, "cp-1", 5.0, 60.0) == pytest.approx(2.2)


def test_a_car_resumed_before_its_first_report_is_timed_from_its_pause() -> None:
    """Paused and resumed before any report: 0 A says nothing (not following yet, nothing
    learned); reaching the resumed level does, timed from the first change."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 0.0, 10.0, None)
    book = changed(book, KEY, "cp-1", 0.0, 12.0, 11.0, None)
    book, shown = after(book, (11.5, 0.0))
    assert shown == [False]
    assert following(book, KEY)
    assert "cp-1" not in book.observed_s
    book, shown = after(book, (13.4, 12.0))
    assert shown == [True]
    assert response_s(book, "cp-1", 5.0, 60.0) == pytest.approx(3.4)


def test_a_report_before_the_newest_change_still_shows_the_levels_left() -> None:
    """A report between two changes says nothing of the newest, but it does show the car
    away from the level before the first: back at that level later, it has followed."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 32.0, 0.0, None)
    book = changed(book, KEY, "cp-1", 32.0, 6.0, 1.0, None)
    book, shown = measured(book, KEY, 0.0, 0.8, 60.0, 60.0)  # accepted after the report
    assert not shown
    book, shown = measured(book, KEY, 6.0, 1.5, 60.0, 60.0)
    assert shown


def test_a_report_from_before_a_change_on_top_says_nothing_of_it() -> None:
    """A report that arrived before the newest change was accepted cannot show the car
    followed it, even when it draws what that change asks."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 27.0, 0.0, 6.0)
    book = changed(book, KEY, "cp-1", 27.0, 16.0, 10.0, 6.0)
    book, shown = after(book, (9.5, 16.0))
    assert shown == [False]
    assert following(book, KEY)


@given(
    st.lists(st.floats(6.0, 32.0), min_size=1, max_size=6),
    st.lists(st.floats(0.1, 3.0), min_size=6, max_size=6),
    st.floats(0.5, 5.0),
)
def test_a_car_following_late_never_draws_more_than_its_count(
    setpoints: list[float], gaps_s: list[float], delay_s: float
) -> None:
    """Invariant 1 in the wires: a car that follows each offer ``delay_s`` late (within the
    response time) draws at no instant more than :meth:`Pending.most_a` or its setpoint,
    while it has not shown it followed."""
    window_s = 5.0
    offers, at = [(0.0, 0.0)], 0.0
    book = ResponseBook()
    for i, limit_a in enumerate(setpoints):
        at += gaps_s[i]
        book = changed(book, KEY, "cp-1", offers[-1][1], limit_a, at, 0.0)
        offers.append((at, limit_a))
    pending = book.pending[KEY]  # a car at 0 A told 6 A or more has a change to follow
    t = offers[1][0]
    while t < at + window_s:
        stood = [a for when, a in offers if when <= t - delay_s]
        draw_a = stood[-1] if stood else 0.0
        assert draw_a <= pending.most_a(t, window_s) + 1e-9
        t += 0.05


def test_a_change_the_car_is_already_inside_teaches_nothing() -> None:
    """A decrease to above what the car draws: nothing to follow, nothing learned."""
    book = changed(ResponseBook(), KEY, "cp-1", 32.0, 20.0, 0.0, 12.0)
    assert not following(book, KEY)
    assert response_s(book, "cp-1", 5.0, 60.0) == 5.0


def test_a_car_that_never_follows_is_dropped_not_counted_as_slow() -> None:
    """A full car ignores an increase: after the maximum the change is forgotten."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 0.0, 0.0)
    book, shown = after(book, (30.0, 0.0), (61.0, 0.0))
    assert shown == [False, False]
    assert not following(book, KEY)
    assert response_s(book, "cp-1", 5.0, 60.0) == 5.0


def test_a_car_retold_keeps_being_awaited_past_the_maximum_from_its_first_change() -> None:
    """Changes on top of each other for longer than the maximum: the car is still awaited
    until the maximum has passed since the newest one."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 0.0, 6.0)
    book = changed(book, KEY, "cp-1", 16.0, 12.0, 50.0, 6.0)
    book, _ = after(book, (70.0, 6.0))
    assert following(book, KEY)
    book, _ = after(book, (111.0, 6.0))
    assert not following(book, KEY)


def test_reports_from_before_the_change_are_ignored() -> None:
    """A report that arrived before the change was accepted says nothing about it."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 10.0, 6.0)
    _, shown = after(book, (9.0, 16.0))
    assert shown == [False]


def test_the_slowest_of_the_last_three_is_kept() -> None:
    """Observations 20, 4, 6, 5 s: the 20 s one has aged out, the slowest of the rest is 6 s."""
    book = ResponseBook()
    t = 0.0
    for took in (20.0, 4.0, 6.0, 5.0):
        book = changed(book, KEY, "cp-1", 6.0, 16.0, t, 6.0)
        book, _ = after(book, (t + took, 16.0))
        t += 100.0
    assert len(book.observed_s["cp-1"]) == KEEP
    assert response_s(book, "cp-1", 5.0, 60.0) == 6.0


def test_observations_from_before_a_restart_count_on() -> None:
    """Restored observations give the response time at once and stay in the window of the
    next ones; a charger already observed in this run keeps its own."""
    book = learned_before(ResponseBook(), {"cp-1": (8.0, 7.0), "cp-2": (3.0,)})
    assert response_s(book, "cp-1", 5.0, 60.0) == 8.0
    book = changed(book, KEY, "cp-1", 6.0, 16.0, 0.0, 6.0)
    book, _ = after(book, (4.0, 16.0))
    assert book.observed_s["cp-1"] == (8.0, 7.0, 4.0)
    assert learned_before(book, {"cp-1": (30.0,)}).observed_s["cp-1"] == (8.0, 7.0, 4.0)


def test_ended_sessions_are_forgotten() -> None:
    """A pending change of a session that ended is dropped."""
    book = changed(ResponseBook(), KEY, "cp-1", 6.0, 16.0, 0.0, 6.0)
    assert not following(forget(book, set()), KEY)


@given(
    st.lists(
        st.tuples(st.floats(0, 32), st.floats(0, 32), st.floats(0, 32), st.floats(0.01, 200)),
        max_size=12,
    ),
    st.floats(1, 60),
    st.floats(1, 600),
)
def test_response_time_stays_within_its_bounds(
    steps: list[tuple[float, float, float, float]], default_s: float, max_s: float
) -> None:
    """Whatever the changes and reports, the response time is the default until learned and
    then within [1 s, max_s]."""
    default_s = min(default_s, max_s)
    book, t = ResponseBook(), 0.0
    for old_a, new_a, drawn_a, after_s in steps:
        book = changed(book, KEY, "cp-1", old_a, new_a, t, old_a)
        book, _ = measured(book, KEY, drawn_a, t + after_s, max_s)
        t += after_s + 1.0
    value = response_s(book, "cp-1", default_s, max_s)
    if not book.observed_s:
        assert value == default_s
    else:
        assert MIN_RESPONSE_S <= value <= max_s
