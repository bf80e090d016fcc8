"""The base-load estimate: a floor under each car's draw at each reading, the lowest reading of
the window, and the guarantee that it never reads low by more than the reports' noise."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller.base_load import SETTLED_WITHIN_S, BaseLoadEstimate, reading_base_a
from controller.car_floors import Report, draw_floor, draw_floors
from controller.learning import EvBelief
from controller.meter_book import REPORT_SKEW_S, MeterView
from controller.setpoint_log import SetpointLog
from controller.snapshot import SessionView
from tests.helpers import site_config

CONFIG = site_config(chargers=3)  # cp-0 L1L2L3, cp-1 L2L3L1, cp-2 L3L1L2
S = REPORT_SKEW_S


def car(at_a: list[tuple[float, float]]) -> list[Report]:
    """Reports of a 3-phase car: (arrival time, A on each phase)."""
    return [(at, (a, a, a)) for at, a in at_a]


def sess(charger: int, reports: list[Report]) -> SessionView:
    """A session on cp-<charger> with the given reports."""
    return SessionView(
        key=f"cp-{charger}/1",
        charger_id=f"cp-{charger}",
        connector_id=1,
        transaction_id=charger + 1,
        started_at=0.0,
        status="Charging",
        measured_a=reports[-1][1] if reports else None,
        measured_at=reports[-1][0] if reports else None,
        offered_a=None,
        belief=EvBelief(),
        reports=tuple(reports),
    )


def reading(at: float, a: float | tuple[float, float, float]) -> MeterView:
    """A good site meter reading measured at ``at``."""
    phases = a if isinstance(a, tuple) else (a, a, a)
    return MeterView(current_a=phases, power_w=sum(phases) * 230, good_at=at)


def test_a_step_up_between_reports_is_taken_at_the_lower_report() -> None:
    """A car reported 6 A at 10 s and 16 A at 11 s: at a reading at 10.5 s it may not have
    stepped yet, so it drew at least 6 A there; interpolating (11 A) could read low."""
    reports = car([(10.0, 6.0), (11.0, 16.0)])
    assert draw_floor(reports, 10.5) == (6.0, 6.0, 6.0)


def test_a_report_within_the_skew_counts_on_either_side() -> None:
    """Arrival times can misorder a report and a reading closer than the skew: a report of
    16 A that arrived just before a reading may have been measured after it, when the car had
    stepped up from 6 A; so may a report arriving just after it have been measured before."""
    early = car([(9.5, 6.0), (10.5 - S / 2, 16.0), (11.5, 16.0)])
    assert draw_floor(early, 10.5) == (6.0, 6.0, 6.0)
    late = car([(9.5, 16.0), (10.5 + S / 2, 16.0), (11.5, 6.0)])
    assert draw_floor(late, 10.5) == (6.0, 6.0, 6.0)


def test_until_the_next_report_a_car_may_already_follow_a_decrease() -> None:
    """Told at 10.2 s to go from 16 A to 8 A, a car with no report since 10 s may already draw
    8 A at a reading at 10.6 s; once its 11 s report shows 16 A, it drew 16 A then."""
    log = SetpointLog()
    log.record(5.0, {"cp-0/1": 16.0})
    log.record(10.2, {"cp-0/1": 8.0})
    floor = log.floor_of("cp-0/1")
    assert draw_floor(car([(10.0, 16.0)]), 10.6, floor) == (8.0, 8.0, 8.0)
    assert draw_floor(car([(10.0, 16.0), (11.0, 16.0)]), 10.6, floor) == (16.0, 16.0, 16.0)


def test_an_increase_does_not_lower_the_floor() -> None:
    """A raise from 8 A to 16 A says nothing about a lower draw: the last report holds."""
    log = SetpointLog()
    log.record(5.0, {"cp-0/1": 8.0})
    log.record(10.2, {"cp-0/1": 16.0})
    assert draw_floor(car([(10.0, 8.0)]), 10.6, log.floor_of("cp-0/1")) == (8.0, 8.0, 8.0)


def test_an_increase_counts_once_the_charger_accepts_it() -> None:
    """Raised from 15 A to 26 A at 4.0 s, a car may be offered 15 A until its charger accepts
    at 4.05 s; from then on 26 A is the least it is told. A newer target it has not accepted
    keeps the lower limit."""
    log = SetpointLog()
    log.record(1.0, {"cp-0/1": 15.0}, {"cp-0/1": 15.0})
    log.record(4.0, {"cp-0/1": 26.0}, {"cp-0/1": 15.0})
    assert log.lowest("cp-0/1", 4.1, 4.5) == 15.0
    log.accepted({"cp-0/1": (4.05, 26.0)})
    assert log.lowest("cp-0/1", 4.1, 4.5) == 26.0
    assert log.lowest("cp-0/1", 3.9, 4.5) == 15.0
    log.record(5.0, {"cp-0/1": 20.0}, {"cp-0/1": 26.0})
    log.accepted({"cp-0/1": (5.5, 26.0)})
    assert log.lowest("cp-0/1", 5.6, 6.0) == 20.0


def test_a_car_without_a_report_from_before_stays_in_the_base_load() -> None:
    """A session whose first report came after the reading had not started then."""
    assert draw_floor(car([(10.5, 16.0)]), 10.0) is None
    view = reading(10.0, 40.0)
    assert reading_base_a(view, [sess(0, car([(10.5, 16.0)]))], CONFIG, SetpointLog()) == (
        40.0,
        40.0,
        40.0,
    )


def test_each_reading_is_the_meter_less_the_floors_through_the_rotation() -> None:
    """cp-1 (L2L3L1) draws 10 A on its L1 only: site L2; cp-0 draws 5 A on each phase."""
    sessions = [
        sess(0, car([(9.0, 5.0)])),
        sess(1, [(9.0, (10.0, 0.0, 0.0))]),
    ]
    setpoints = SetpointLog()
    setpoints.record(0.0, {"cp-0/1": 16.0, "cp-1/1": 16.0})
    base = reading_base_a(reading(10.0, (30.0, 40.0, 20.0)), sessions, CONFIG, setpoints)
    assert base == (25.0, 25.0, 15.0)


def test_ramping_cars_do_not_move_the_estimate() -> None:
    """The building draws 20 A throughout. Two cars raised from 6 A to 13 A at 27 s step up
    at 28.3 s and 29.1 s and report each second: readings between a step and the next report
    read high, but the lowest reading of the 3 s window is exact at every decision."""
    setpoints = SetpointLog()
    setpoints.record(0.0, {"cp-0/1": 6.0, "cp-1/1": 6.0})
    setpoints.record(27.0, {"cp-0/1": 13.0, "cp-1/1": 13.0})
    steps = {0: 28.3, 1: 29.1}
    offsets = {0: 0.0, 1: 0.4}

    def draw(i: int, t: float) -> float:
        return 13.0 if t >= steps[i] else 6.0

    estimate = BaseLoadEstimate(window_s=3.0)
    for k in range(40, 70):  # meter every 0.5 s from 20 s to 35 s
        t = k * 0.5
        sessions = [sess(i, car([(r, draw(i, r)) for r in _ticks(offsets[i], t)])) for i in (0, 1)]
        estimate.add(reading(t, 20.0 + draw(0, t) + draw(1, t)))
        assert estimate.estimate(sessions, CONFIG, setpoints) == (20.0, 20.0, 20.0), t


def test_a_decrease_does_not_cascade() -> None:
    """The building steps from 20 A to 30 A at 12 s: the reading over the limit at 12 s
    counts at once, and the cut it causes (cars told 16 → 11 A, following 2 s later) does not
    raise the estimate further, though the floors read high until the cars report."""
    setpoints = SetpointLog()
    setpoints.record(0.0, {"cp-0/1": 16.0, "cp-1/1": 16.0})
    estimate = BaseLoadEstimate(window_s=3.0)

    def draw(t: float) -> float:
        return 11.0 if t >= 14.0 else 16.0

    seen = []
    for k in range(16, 36):  # meter every 0.5 s from 8 s to 17.5 s, reports every second
        t = k * 0.5
        sessions = [sess(i, car([(r, draw(r)) for r in _ticks(0.25, t)])) for i in (0, 1)]
        estimate.add(reading(t, (30.0 if t >= 12.0 else 20.0) + 2 * draw(t)))
        over = 12.0 if t >= 12.0 else None
        seen.append(estimate.estimate(sessions, CONFIG, setpoints, over))
        if t == 12.0:
            setpoints.record(12.0, {"cp-0/1": 11.0, "cp-1/1": 11.0})
    assert seen[:8] == [(20.0, 20.0, 20.0)] * 8
    assert seen[8:] == [(30.0, 30.0, 30.0)] * 12


def test_the_pause_an_over_limit_reading_causes_is_not_read_as_building_load() -> None:
    """The building steps from 20 A to 30 A at 12 s, the cars draw 16 A each: the reading at
    12 s is over the limit and the cars are paused at 12.05 s, following at 12.3 s. Their
    reports of the pause, after that reading, say nothing of what they drew at it: the
    estimate is 30 A from 12 s on, never the 62 A of the reading with the cars at 0 A."""
    setpoints = SetpointLog()
    setpoints.record(0.0, {"cp-0/1": 16.0, "cp-1/1": 16.0})
    estimate = BaseLoadEstimate(window_s=3.0)

    def draw(t: float) -> float:
        return 0.0 if t >= 12.3 else 16.0

    seen = []
    for k in range(40, 72):  # meter every 0.25 s from 10 s to 17.75 s, reports every 0.5 s
        t = k * 0.25
        sessions = [
            sess(i, car([(r, draw(r)) for r in _ticks(0.1 + 0.2 * i, t, 0.5)])) for i in (0, 1)
        ]
        estimate.add(reading(t, (30.0 if t >= 12.0 else 20.0) + 2 * draw(t)))
        seen.append(estimate.estimate(sessions, CONFIG, setpoints, 12.0 if t >= 12.0 else None))
        if t == 12.0:
            setpoints.record(12.05, {"cp-0/1": 0.0, "cp-1/1": 0.0})
    assert seen[:8] == [(20.0, 20.0, 20.0)] * 8
    assert seen[8:] == [(30.0, 30.0, 30.0)] * 24


def test_an_increase_after_an_over_limit_reading_is_not_read_as_building_load() -> None:
    """A reading over the limit at 10 s; the car, at 13 A, is raised to 26 A at 12 s and
    steps up at 12.3 s, reporting each second. Until it reports, newer readings are high
    by the step, which is ours: the estimate stays at the building's 20 A throughout (it
    used to cut the car back at each raise, for as long as the over-limit run lasted)."""
    setpoints = SetpointLog()
    setpoints.record(0.0, {"cp-0/1": 13.0})
    estimate = BaseLoadEstimate(window_s=15.0)

    def draw(t: float) -> float:
        return 26.0 if t >= 12.3 else 13.0

    for k in range(36, 60):  # meter every 0.25 s from 9 s to 14.75 s
        t = k * 0.25
        if t == 12.0:
            setpoints.record(12.0, {"cp-0/1": 26.0}, {"cp-0/1": 13.0})
            setpoints.accepted({"cp-0/1": (12.01, 26.0)})
        sessions = [sess(0, car([(r, draw(r)) for r in _ticks(0.0, t)]))]
        estimate.add(reading(t, 20.0 + draw(t)))
        got = estimate.estimate(sessions, CONFIG, setpoints, 10.0 if t >= 10.0 else None)
        assert got == (20.0, 20.0, 20.0), t


def test_a_step_down_shows_at_the_first_reading_after_it() -> None:
    """The lowest reading wins: a building that drops from 60 A to 20 A is planned with 20 A
    as soon as one reading shows it."""
    estimate = BaseLoadEstimate(window_s=3.0)
    for t in (24.0, 24.5, 25.0):
        estimate.add(reading(t, 60.0))
    estimate.add(reading(25.5, 20.0))
    assert estimate.estimate([], CONFIG, SetpointLog()) == (20.0, 20.0, 20.0)


def test_readings_leave_the_window_and_are_not_added_twice() -> None:
    """A step up shows once the window holds only readings after it; a reading seen at two
    decisions counts once; a doubtful view is not a reading."""
    estimate = BaseLoadEstimate(window_s=1.0)
    estimate.add(reading(10.0, 20.0))
    estimate.add(reading(10.0, 20.0))
    estimate.add(reading(10.5, 30.0))
    assert estimate.estimate([], CONFIG, SetpointLog()) == (20.0, 20.0, 20.0)
    estimate.add(MeterView(current_a=(5.0, 5.0, 5.0), good_at=11.2, problem="stale"))
    estimate.add(reading(11.5, 30.0))
    assert estimate.estimate([], CONFIG, SetpointLog()) == (30.0, 30.0, 30.0)
    assert BaseLoadEstimate(1.0).estimate([], CONFIG, SetpointLog()) is None


def test_a_short_window_reaches_back_to_a_settled_reading() -> None:
    """A 0.5 s window; a car told at 10.1 s to go from 16 A to 8 A does not follow (a slow
    charger). The readings of the window are high by 8 A until it reports; the window
    reaches back to the 10.0 s reading, which its 10.5 s report settled, and stays exact."""
    setpoints = SetpointLog()
    setpoints.record(5.0, {"cp-0/1": 16.0})
    setpoints.record(10.1, {"cp-0/1": 8.0})
    estimate = BaseLoadEstimate(window_s=0.5)
    for t in (10.0, 10.5, 11.0, 11.2):
        estimate.add(reading(t, 36.0))
    sessions = [sess(0, car([(9.5, 16.0), (10.5, 16.0)]))]
    assert estimate.planned_since(sessions) == 10.0
    assert estimate.estimate(sessions, CONFIG, setpoints) == (20.0, 20.0, 20.0)
    settled = [sess(0, car([(9.5, 16.0), (10.5, 16.0), (11.5, 16.0)]))]
    assert estimate.planned_since(settled) == 11.0


def test_a_reading_settles_as_later_reports_arrive() -> None:
    """Told to go down at 10.2 s, the car may have by the 10.6 s reading: it reads 8 A high.
    When the 11 s report shows the car still at 16 A, the same reading is exact."""
    setpoints = SetpointLog()
    setpoints.record(5.0, {"cp-0/1": 16.0})
    setpoints.record(10.2, {"cp-0/1": 8.0})
    estimate = BaseLoadEstimate(window_s=3.0)
    estimate.add(reading(10.6, 36.0))
    early = estimate.estimate([sess(0, car([(10.0, 16.0)]))], CONFIG, setpoints)
    late = estimate.estimate([sess(0, car([(10.0, 16.0), (11.0, 16.0)]))], CONFIG, setpoints)
    assert early == (28.0, 28.0, 28.0)
    assert late == (20.0, 20.0, 20.0)


def test_setpoint_log_keeps_the_lowest_in_force_and_forgets_ended_sessions() -> None:
    """The limit in force at the start of the span counts, and every one set within it; a
    span that begins before the first limit logged for the session may have seen any (0)."""
    log = SetpointLog()
    log.record(1.0, {"a": 16.0, "b": 10.0})
    log.record(2.0, {"a": 8.0, "b": 10.0})
    log.record(3.0, {"a": 20.0})
    assert log.lowest("a", 1.5, 1.9) == 16.0
    assert log.lowest("a", 1.5, 2.5) == 8.0
    assert log.lowest("a", 3.5, 4.0) == 20.0
    assert log.lowest("b", 3.5, 5.0) == 0.0
    assert log.lowest("a", 0.0, 0.5) == 0.0
    assert log.lowest("a", 0.5, 1.5) == 0.0


def test_a_car_that_dropped_before_the_first_decision_on_it_does_not_read_low() -> None:
    """After a restart: the car drew 10 A under the previous controller's lease and dropped
    to its 6 A fail-safe when that ran out at 10.5 s, before the new controller's first
    decision on it (10.8 s). The 10.6 s reading may not take its 10 A report (the base load
    would read 4 A low), nor, once it reports 6 A, that report: under limits no decision
    logged it may have dipped lower and come back. Readings after the first decision and
    a report settle."""
    setpoints = SetpointLog()
    setpoints.record(10.8, {"cp-0/1": 6.0})
    floor = setpoints.floor_of("cp-0/1")
    before = car([(9.75, 10.0), (10.0, 10.0), (10.25, 10.0)])
    after = [*before, *car([(11.0, 6.0), (11.25, 6.0), (11.5, 6.0)])]
    assert draw_floor(before, 10.6, floor) == (0.0, 0.0, 0.0)
    assert draw_floor(after, 10.6, floor) == (0.0, 0.0, 0.0)
    assert draw_floor(after, 11.3, floor) == (6.0, 6.0, 6.0)
    estimate = BaseLoadEstimate(window_s=3.0)
    estimate.add(reading(10.0, 30.0))
    estimate.add(reading(10.6, 26.0))
    for known in (SetpointLog(), setpoints):  # before and after the first decision
        assert estimate.estimate([sess(0, before)], CONFIG, known) == (26.0, 26.0, 26.0)
    estimate.add(reading(11.3, 26.0))
    assert estimate.estimate([sess(0, after)], CONFIG, setpoints) == (20.0, 20.0, 20.0)


def test_a_car_that_dipped_between_two_reports_is_not_taken_at_them() -> None:
    """Told 16 → 8 A at 10.1 s and back to 12 A at 10.5 s, a car reporting 16 A at 10.0 s
    and 12 A at 11.0 s may have drawn 8 A at 10.4 s: it does not move monotonically between
    those reports. Without the rise, the reports bound it."""
    log = SetpointLog()
    log.record(5.0, {"cp-0/1": 16.0})
    log.record(10.1, {"cp-0/1": 8.0})
    reports = car([(10.0, 16.0), (11.0, 12.0)])
    assert draw_floor(reports, 10.4, log.floor_of("cp-0/1")) == (12.0, 12.0, 12.0)
    log.record(10.5, {"cp-0/1": 12.0})
    assert draw_floor(reports, 10.4, log.floor_of("cp-0/1")) == (8.0, 8.0, 8.0)


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.1, 0.25, 1.0]), min_size=0, max_size=8),
    values=st.lists(st.sampled_from([0.0, 6.0, 16.0]), min_size=8, max_size=8),
    times=st.lists(st.floats(0.0, 6.0), min_size=1, max_size=6).map(sorted),
    cut=st.none() | st.tuples(st.floats(0.0, 6.0), st.sampled_from([0.0, 6.0, 20.0])),
)
def test_floors_in_one_step_are_the_floors_one_by_one(
    gaps: list[float],
    values: list[float],
    times: list[float],
    cut: tuple[float, float] | None,
) -> None:
    """The shortcut for cars whose reports are alike gives what each reading alone gives."""
    reports = car([(sum(gaps[: i + 1]), values[i]) for i in range(len(gaps))])
    log = SetpointLog()
    log.record(0.0, {"k": 32.0})
    if cut is not None:
        log.record(cut[0], {"k": cut[1]})
    floor = log.floor_of("k")
    assert draw_floors(reports, times, floor) == [draw_floor(reports, t, floor) for t in times]


def _ticks(offset: float, until: float, every: float = 1.0) -> list[float]:
    """Report arrival times ``offset``, ``offset + every``, … up to ``until``."""
    return [offset + n * every for n in range(int((until - offset) / every) + 1)]


# --- the guarantee -----------------------------------------------------------------------

NOISE_A = 0.1
"""What a report may be off: the 0.1 A a charger rounds its MeterValues to."""


@dataclass(frozen=True)
class Car:
    """A car that follows each setpoint after ``delay_s``, capped by its onboard charger."""

    charger: int
    setpoints: tuple[tuple[float, float], ...]  # (from, A), the first from 0
    delay_s: float
    max_a: float
    report_every_s: float
    report_offset_s: float

    def draw(self, t: float) -> float:
        """What the car draws at ``t``: the setpoint that stood ``delay_s`` ago."""
        limit = self.setpoints[0][1]
        for at, value in self.setpoints:
            if t - self.delay_s >= at:
                limit = value
        return min(limit, self.max_a)


@st.composite
def cars(draw: st.DrawFn, charger: int) -> Car:
    """Setpoints change no faster than cars respond (the dispatcher's minimum interval)."""
    delay_s = draw(st.floats(0.0, 3.0))
    changes = draw(st.lists(st.floats(6.0, 32.0) | st.just(0.0), min_size=1, max_size=3))
    setpoints = tuple((i * draw(st.floats(5.0, 6.0)), a) for i, a in enumerate(changes))
    return Car(
        charger,
        setpoints,
        delay_s,
        draw(st.floats(6.0, 32.0)),
        draw(st.sampled_from([0.25, 0.5, 1.0])),
        draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=200, deadline=None)
@given(
    fleet=st.integers(1, 3).flatmap(lambda n: st.tuples(*(cars(i) for i in range(n)))),
    base_steps=st.lists(st.tuples(st.floats(0.0, 15.0), st.floats(0.0, 60.0)), max_size=4),
    meter_every_s=st.sampled_from([0.25, 0.5, 1.0]),
    window_s=st.sampled_from([0.0, 0.5, 3.0]),
    over_limit_at=st.none() | st.floats(0.0, 15.0),
    known_from=st.none() | st.floats(0.5, 12.0),
    restart_a=st.floats(6.0, 32.0),
    lags=st.lists(st.sampled_from([0.0, S / 2, S]), min_size=200, max_size=200),
    noise=st.lists(st.floats(-NOISE_A, NOISE_A), min_size=200, max_size=200),
    leaves_at=st.none() | st.floats(1.0, 14.0),
    settle_known=st.booleans(),
)
@example(  # cp-1 ramps from 6 to 26 A at 5 s and its charger leaves 1 s later
    fleet=(
        Car(0, ((0.0, 32.0), (5.0, 26.0)), 0.0, 32.0, 0.25, 0.0),
        Car(1, ((0.0, 6.0), (5.0, 26.0)), 0.0, 32.0, 0.25, 0.0),
    ),
    base_steps=[],
    meter_every_s=0.25,
    window_s=3.0,
    over_limit_at=None,
    known_from=None,
    restart_a=6.0,
    lags=[0.0] * 200,
    noise=[0.0] * 200,
    leaves_at=6.0,
    settle_known=True,
)
@example(  # cp-1 is paused just before its charger leaves; its lease may end on 6 A
    fleet=(
        Car(0, ((0.0, 26.0),), 0.0, 32.0, 0.25, 0.0),
        Car(1, ((0.0, 26.0), (5.0, 0.0)), 0.5, 32.0, 1.0, 0.0),
    ),
    base_steps=[(0.0, 30.0)],
    meter_every_s=0.25,
    window_s=3.0,
    over_limit_at=None,
    known_from=None,
    restart_a=6.0,
    lags=[0.0] * 200,
    noise=[0.0] * 200,
    leaves_at=5.1,
    settle_known=False,
)
@example(  # a restart at 6 s: the car dropped at 5 s, told by a controller no log knows
    fleet=(Car(0, ((0.0, 16.0), (5.0, 6.0)), 0.0, 32.0, 0.25, 0.125),),
    base_steps=[],
    meter_every_s=0.25,
    window_s=0.0,
    over_limit_at=None,
    known_from=6.0,
    restart_a=6.0,
    lags=[0.0] * 200,
    noise=[0.0] * 200,
    leaves_at=None,
    settle_known=False,
)
def test_the_estimate_never_reads_low_beyond_the_report_noise(
    fleet: tuple[Car, ...],
    base_steps: list[tuple[float, float]],
    meter_every_s: float,
    window_s: float,
    over_limit_at: float | None,
    known_from: float | None,
    restart_a: float,
    lags: list[float],
    noise: list[float],
    leaves_at: float | None,
    settle_known: bool,
) -> None:
    """For any building load, cars following their setpoints late (monotonically between two
    reports), reports off by ≤ 0.1 A and arrival times by ≤ the skew: at every reading the
    estimate is ≥ the lowest true base load of the readings it plans with − 0.1 A × cars
    (those of the window, or back to the newest settled one; over the limit, it only rises).
    ``known_from``: a controller restarted then and set each car ``restart_a``; the
    setpoints from before it (a previous controller's, its leases running out) are in no
    log, yet the cars followed them and report them. ``leaves_at``: the last car's charger
    goes offline then (no more reports or setpoints; its car goes on to its last one): from
    then on the estimate also holds the most that car may draw from now on (where it heads,
    or its fail-safe should its lease run out), whenever it ramped; ``settle_known``: the
    estimate is told how long the car takes to follow (it may then count the car once)."""
    # A building that steps; the meter and the reports arrive late by up to the skew, each
    # charger's reports in order (one websocket).

    def base(t: float) -> float:
        return max([a for at, a in base_steps if at <= t] or [20.0])

    if known_from is not None:
        fleet = tuple(_restarted(c, known_from, restart_a) for c in fleet)
    if leaves_at is not None:  # its charger holds the last limit it was given
        last = fleet[-1]
        fleet = (
            *fleet[:-1],
            replace(last, setpoints=tuple(p for p in last.setpoints if p[0] <= leaves_at)),
        )
    setpoints = SetpointLog()
    logged_from = known_from if known_from is not None else 0.0
    # From the restarted controller's first decision on, each change is logged.
    changes = sorted({logged_from, *(a for c in fleet for a, _ in c.setpoints if a > logged_from)})
    if leaves_at is not None and leaves_at > logged_from:
        changes = sorted({*changes, leaves_at})  # the first decision without it
    estimate = BaseLoadEstimate(window_s)
    arrived: list[tuple[float, float]] = []  # (good_at, true base at the sample)
    kept: list[tuple[float, float]] = []  # (good_at, sampled) of each reading the estimate kept
    for k in range(int(15.0 / meter_every_s)):
        sampled = k * meter_every_s
        good_at = sampled + lags[k % len(lags)]
        for at in [c for c in changes if c <= good_at]:
            gone = leaves_at is not None and at >= leaves_at
            booted = fleet[:-1] if gone else fleet
            targets = {f"cp-{c.charger}/1": _limit_at(c, at) for c in booted}
            setpoints.record(at, targets, targets, [f"cp-{fleet[-1].charger}/1"] if gone else [])
        changes = [c for c in changes if c > good_at]
        sessions = [_reported(c, good_at, lags, noise) for c in fleet]
        away: list[SessionView] = []
        away_a = 0.0
        if leaves_at is not None and good_at >= leaves_at:  # no report since it left
            left = sessions.pop()
            away = [replace(left, reports=tuple(r for r in left.reports if r[0] <= leaves_at))]
            car_now = fleet[-1]
            failsafe_a = min(CONFIG.site.failsafe_current_a, car_now.max_a)
            # In the base load now and from now on: where it heads, or its fail-safe.
            away_a = max(car_now.draw(sampled), car_now.draw(float("inf")), failsafe_a)
        site = base(sampled) + sum(c.draw(sampled) for c in fleet)
        estimate.add(reading(good_at, site))
        arrived.append((good_at, base(sampled)))
        if not kept or good_at > kept[-1][0]:
            kept.append((good_at, sampled))
        over = over_limit_at if over_limit_at is not None and over_limit_at <= good_at else None
        settle_s = {f"cp-{c.charger}": c.delay_s for c in fleet} if settle_known else None
        got = estimate.estimate(sessions, CONFIG, setpoints, over, away, settle_s)
        assert got is not None
        since = estimate.planned_since(sessions)
        assert since is not None
        assert since >= good_at - max(window_s, SETTLED_WITHIN_S)
        lowest_true = min(b for at, b in arrived if at >= since) + away_a
        assert all(g >= lowest_true - NOISE_A * len(fleet) - 1e-9 for g in got), (sampled, got)
        if over is None:
            continue
        # Over the limit, a rise by the latest over-limit reading shows at once: the estimate
        # is no lower than the building from that reading on, whenever no car it subtracts
        # had gone down since the report before it it is taken at (a car that followed a
        # cut unreported makes that one reading read low; the window holds the estimate).
        held = [k for k in kept if kept[-1][0] - k[0] <= max(window_s, SETTLED_WITHIN_S)]
        over_at, over_sampled = ([k for k in held if k[0] <= over] or held[:1])[-1]
        before = [[v[0] or 0.0 for at, v in s.reports if at <= over_at - S] for s in sessions]
        if all(
            not reported or c.draw(over_sampled) >= reported[-1] - NOISE_A
            for c, reported in zip(fleet, before, strict=False)
        ):
            risen = min(b for at, b in arrived if at >= over_at)
            assert all(g >= risen - NOISE_A * len(fleet) - 1e-9 for g in got), (sampled, got)


def _restarted(c: Car, at: float, limit_a: float) -> Car:
    """``c`` set ``limit_a`` at ``at``, its other changes no closer than it follows them."""
    kept = {(t, a) for t, a in c.setpoints if t == 0.0 or abs(t - at) >= c.delay_s}
    return replace(c, setpoints=tuple(sorted({*kept, (at, limit_a)})))


def _limit_at(c: Car, at: float) -> float:
    """The setpoint ``c`` was given at ``at``."""
    return [a for t, a in c.setpoints if t <= at][-1]


def _reported(
    c: Car, now: float, lags: list[float], noise: list[float], kept: int | None = 8
) -> SessionView:
    """The car's reports that have arrived by ``now`` (the last ``kept``, 8 as the state
    keeps; ``None``: all)."""
    reports: list[Report] = []
    n = 0
    while (sampled := c.report_offset_s + n * c.report_every_s) <= now:
        arrival = sampled + lags[(n + 7 * c.charger) % len(lags)]
        arrival = max(arrival, reports[-1][0] if reports else arrival)  # in order
        if arrival <= now:
            value = max(c.draw(sampled) + noise[(n + 13 * c.charger) % len(noise)], 0.0)
            reports.append((arrival, (value, value, value)))
        n += 1
    return sess(c.charger, reports if kept is None else reports[-kept:])


@settings(max_examples=150, deadline=None)
@given(
    fleet=st.integers(1, 3).flatmap(lambda n: st.tuples(*(cars(i) for i in range(n)))),
    meter_every_s=st.sampled_from([0.25, 0.5, 1.0]),
    window_s=st.sampled_from([0.0, 0.5, 3.0]),
    over_limit_at=st.none() | st.floats(0.0, 15.0),
    restart_at=st.none() | st.floats(2.0, 12.0),
    lags=st.lists(st.sampled_from([0.0, S / 2, S]), min_size=200, max_size=200),
    noise=st.lists(st.floats(-NOISE_A, NOISE_A), min_size=200, max_size=200),
)
def test_floors_kept_between_decisions_change_no_estimate(
    fleet: tuple[Car, ...],
    meter_every_s: float,
    window_s: float,
    over_limit_at: float | None,
    restart_at: float | None,
    lags: list[float],
    noise: list[float],
) -> None:
    """An estimate kept from decision to decision (it keeps each car's settled floors) gives,
    at every decision, exactly what a new estimate over the same readings gives, through a
    session that ends and starts anew on the same connector. With the state's bounded report
    history it lies between the two a new estimate gives with every report and with the
    reports still held: a floor kept outlives the reports it came from (a new estimate
    without them counts the car as building load), and is never more than they said."""
    setpoints = SetpointLog()
    changes = sorted({at for c in fleet for at, _ in c.setpoints})
    kept, bounded = BaseLoadEstimate(window_s), BaseLoadEstimate(window_s)
    readings: list[MeterView] = []
    for k in range(int(15.0 / meter_every_s)):
        good_at = k * meter_every_s + lags[k % len(lags)]
        for at in [c for c in changes if c <= good_at]:
            setpoints.record(at, {f"cp-{c.charger}/1": _limit_at(c, at) for c in fleet})
        changes = [c for c in changes if c > good_at]
        held = [_reported(c, good_at, lags, noise) for c in fleet]
        every = [_reported(c, good_at, lags, noise, None) for c in fleet]
        if restart_at is not None and good_at >= restart_at:  # cp-0 ends, a new session starts
            for sessions in (held, every):
                later = tuple(r for r in sessions[0].reports if r[0] > restart_at)
                sessions[0] = replace(sessions[0], transaction_id=99, reports=later)
        site = 20.0 + sum(c.draw(k * meter_every_s) for c in fleet)
        readings.append(reading(good_at, site))
        kept.add(readings[-1])
        bounded.add(readings[-1])
        fresh, again = BaseLoadEstimate(window_s), BaseLoadEstimate(window_s)
        for view in readings:
            fresh.add(view)
            again.add(view)
        over = over_limit_at if over_limit_at is not None and over_limit_at <= good_at else None
        low = fresh.estimate(every, CONFIG, setpoints, over)
        assert kept.estimate(every, CONFIG, setpoints, over) == low
        got = bounded.estimate(held, CONFIG, setpoints, over)
        high = again.estimate(held, CONFIG, setpoints, over)
        assert low is not None
        assert got is not None
        assert high is not None
        assert all(lo - 1e-9 <= g <= hi + 1e-9 for lo, g, hi in zip(low, got, high, strict=True))


def test_a_rewired_charger_is_not_planned_with_its_old_wiring() -> None:
    """Settled floors are kept in site phases; a new config (an operator may rewire a
    charger) drops them, so the estimate is what a fresh one gives under the new wiring."""
    rewired = CONFIG.model_copy(
        update={
            "chargers": [c.model_copy(update={"phase_rotation": "L1L2L3"}) for c in CONFIG.chargers]
        }
    )
    reports = [(at, (6.0, 10.0, 16.0)) for at in (0.0, 1.0, 2.0, 3.0)]
    sessions = [sess(1, reports)]  # cp-1 is wired L2L3L1 in CONFIG
    kept, fresh = BaseLoadEstimate(3.0), BaseLoadEstimate(3.0)
    for at in (0.5, 1.5):
        kept.add(reading(at, 60.0))
        fresh.add(reading(at, 60.0))
    log = SetpointLog()
    log.record(-5.0, {"cp-1/1": 32.0})  # offered 32 A throughout: the reports stand
    assert kept.estimate(sessions, CONFIG, log) == (44.0, 54.0, 50.0)
    assert kept.estimate(sessions, rewired, log) == (54.0, 50.0, 44.0)
    assert fresh.estimate(sessions, rewired, log) == (54.0, 50.0, 44.0)


def test_a_floor_is_kept_only_once_every_limit_that_caps_it_is_logged() -> None:
    """A car dipped to 8 A at 9.8 s may have come back by its report at 10.3 s only if its
    limit rose by then (+ the skew); a rise logged at 10.45 s (after the reading at 10.4 s
    was estimated) must still count for the reading at 10.0 s: its floor is not kept
    before every limit that can cap it is logged."""
    sessions = [sess(0, car([(9.5, 16.0), (10.3, 16.0)]))]
    log = SetpointLog()
    log.record(0.0, {"cp-0/1": 16.0})
    log.record(9.8, {"cp-0/1": 8.0})
    kept = BaseLoadEstimate(3.0)
    for at in (10.0, 10.4):
        kept.add(reading(at, 60.0))
    assert kept.estimate(sessions, CONFIG, log) == (44.0, 44.0, 44.0)  # no rise: 16 A stood
    log.record(10.45, {"cp-0/1": 16.0})
    kept.add(reading(10.6, 60.0))
    fresh = BaseLoadEstimate(3.0)
    for at in (10.0, 10.4, 10.6):
        fresh.add(reading(at, 60.0))
    assert kept.estimate(sessions, CONFIG, log) == fresh.estimate(sessions, CONFIG, log)
    assert fresh.estimate(sessions, CONFIG, log) == (52.0, 52.0, 52.0)


def test_an_away_session_keeps_its_limits_and_its_ceiling_until_its_charger_is_back() -> None:
    log = SetpointLog()
    log.record(0.0, {"cp-0/1": 16.0}, {"cp-0/1": 16.0})
    log.record(1.0, {"cp-0/1": 26.0}, {"cp-0/1": 16.0})  # the increase is in flight
    log.record(2.0, {}, {}, ["cp-0/1"])  # cp-0 left
    assert log.lowest("cp-0/1", 0.5, 1.5) == 16.0  # its reports from before still use them
    assert log.ceiling("cp-0/1") == 26.0  # it may have accepted the increase
    log.record(3.0, {"cp-0/1": 20.0}, {})  # back: what it offered meanwhile is unknown
    assert log.lowest("cp-0/1", 0.5, 3.5) == 0.0
    assert log.ceiling("cp-0/1") == float("inf")  # nothing accepted since it came back


def test_an_away_car_is_reserved_at_its_ceiling_beside_the_readings_it_is_in() -> None:
    """cp-1 ramps from 6 to 26 A at 1 s and leaves at 2 s: the readings from before its
    ramp do not take it low; the building (10 A) plus its 26 A is planned with."""
    log = SetpointLog()
    log.record(0.0, {"cp-1/1": 6.0}, {"cp-1/1": 6.0})
    log.record(1.0, {"cp-1/1": 26.0}, {"cp-1/1": 26.0})
    estimate = BaseLoadEstimate(3.0)
    for k in range(12):
        t = k * 0.25
        estimate.add(reading(t, 10.0 + (6.0 if t < 1.0 else 26.0)))
    log.record(2.0, {}, {}, ["cp-1/1"])
    away = sess(1, car([(0.1, 6.0), (0.6, 6.0), (1.1, 26.0), (1.6, 26.0)]))
    got = estimate.estimate([], CONFIG, log, None, [away])
    assert got is not None
    assert min(got) >= 10.0 + 26.0 - 1e-9
    assert max(got) <= 10.0 + 26.0 + 1e-9  # and no more: it is not counted twice


def test_an_away_car_that_was_ramping_is_counted_once_when_it_has_settled() -> None:
    """cp-1 reports 6 A, is raised to 26 A and its charger leaves before it reports the ramp.
    Until its settle time has passed since then, the ramp in the readings and its 26 A
    reservation are both counted (it may still be ramping); after it, the car is counted
    once, at what the readings show of it: the building's 10 A plus its 26 A."""
    log = SetpointLog()
    log.record(0.0, {"cp-1/1": 6.0}, {"cp-1/1": 6.0})
    log.record(1.5, {"cp-1/1": 26.0}, {"cp-1/1": 26.0})
    log.record(1.7, {}, {}, ["cp-1/1"])  # the first decision without it
    away = sess(1, car([(0.1, 6.0), (0.6, 6.0), (1.1, 6.0), (1.6, 6.0)]))
    estimate = BaseLoadEstimate(0.5)
    settle_s = {"cp-1": 1.0}
    for k in range(24):
        t = k * 0.25
        estimate.add(reading(t, 10.0 + (6.0 if t < 2.0 else 26.0)))
        got = estimate.estimate([], CONFIG, log, None, [away], settle_s)
        assert got is not None
        if t < 1.7:
            continue
        assert min(got) >= 10.0 + 26.0 - 1e-9  # never low
        if t >= 1.7 + 1.0 + S:  # a reading of the window was taken once it had settled
            assert max(got) <= 10.0 + 26.0 + 1e-9
        elif t - 0.5 >= 2.0:  # the ramp is in every reading: counted twice meanwhile
            assert min(got) >= 10.0 + 20.0 + 26.0 - 1e-9


def test_a_settled_away_car_keeps_room_for_its_fail_safe() -> None:
    """A car paused (0 A) just before its charger left is counted at what it draws, 0 A,
    plus the 6 A its charger falls to when its lease runs out."""
    log = SetpointLog()
    log.record(0.0, {"cp-1/1": 16.0}, {"cp-1/1": 16.0})
    log.record(1.0, {"cp-1/1": 0.0}, {"cp-1/1": 0.0})
    log.record(1.2, {}, {}, ["cp-1/1"])
    away = sess(1, car([(0.2, 16.0), (0.7, 16.0)]))
    estimate = BaseLoadEstimate(0.5)
    for k in range(20):
        estimate.add(reading(k * 0.25, 10.0 + (16.0 if k * 0.25 < 1.1 else 0.0)))
    got = estimate.estimate([], CONFIG, log, None, [away], {"cp-1": 1.0})
    assert got is not None
    assert min(got) >= 10.0 + 6.0 - 1e-9
    assert max(got) <= 10.0 + 6.0 + 1e-9
