"""Meter readings judged over time: jumps no load can make, and frozen values."""

from __future__ import annotations

from controller.config import HeadroomConfig
from controller.meter_book import MeterBook
from controller.model import MeterReading, Quality
from controller.quality import MeterHistory, judge, report_lag_s
from controller.state import SiteState
from tests.helpers import site_config

STEP_A = 90.0
FROZEN_S = 30.0


def test_a_jump_is_rejected_then_believed_if_it_stays() -> None:
    """A 200 A jump is refused once; the same level in the next reading is accepted."""
    history = MeterHistory(last_good=(20.0, 20.0, 20.0))
    problem, history = judge(history, (220.0, 20.0, 20.0), None, 1.0, 0.0, STEP_A, FROZEN_S)
    assert problem == "jump of 200 A in one reading (over 90 A)"
    problem, history = judge(history, (221.0, 20.0, 20.0), None, 2.0, 0.0, STEP_A, FROZEN_S)
    assert problem == ""
    assert history.last_good == (221.0, 20.0, 20.0)


def test_a_spike_that_goes_away_is_never_believed() -> None:
    """A one-off spike is refused and the reading after it judged against the last good one."""
    history = MeterHistory(last_good=(20.0, 20.0, 20.0))
    problem, history = judge(history, (900.0, 20.0, 20.0), None, 1.0, 0.0, STEP_A, FROZEN_S)
    assert problem
    problem, history = judge(history, (21.0, 20.0, 20.0), None, 2.0, 0.0, STEP_A, FROZEN_S)
    assert problem == ""
    assert history.last_good == (21.0, 20.0, 20.0)


def test_frozen_values_while_chargers_move_are_doubted() -> None:
    """The same reading for 30 s while the chargers' draw moved by 16 A is a frozen meter."""
    history = MeterHistory()
    reading = (40.0, 30.0, 20.0)
    problems = []
    for t in range(0, 32):
        chargers = 10.0 if t < 15 else 26.0
        problem, history = judge(history, reading, 20_000.0, float(t), chargers, STEP_A, FROZEN_S)
        problems.append(problem)
    assert problems[:30] == [""] * 30
    assert problems[30].startswith("frozen: the same values for 30 s")


def test_a_steady_site_is_not_frozen() -> None:
    """The same reading while nothing else moves is just a steady site."""
    history = MeterHistory()
    for t in range(0, 100):
        problem, history = judge(history, (40.0, 30.0, 20.0), None, float(t), 10.0, STEP_A, 30.0)
        assert problem == ""


def test_a_report_late_for_the_last_change_is_no_move() -> None:
    """A steady site after a car stepped up: the meter saw the step at once, the car's report
    1 s later. That report tells of the change before, not of a move while the meter stood
    (it held a steady slow_evs site for 15 s, every car paused)."""
    history = MeterHistory()
    for tenth in range(0, 700, 5):  # a reading every 0.5 s for 70 s
        t = tenth / 10
        chargers = 62.1 if t < 1.0 else 67.2  # the car's 1.7 A on three phases, reported late
        problem, history = judge(history, (96.6, 91.6, 86.6), None, t, chargers, STEP_A, 60.0)
        assert problem == "", t


def test_site_state_marks_a_jump_as_a_meter_problem() -> None:
    """The state turns a rejected jump into a visible meter problem and keeps the last good view."""
    state = SiteState(site_config().control, meter_max_step_a=STEP_A)
    state.apply(MeterReading("grid", 1.0, (20.0, 20.0, 20.0), 13_800.0))
    state.apply(MeterReading("grid", 2.0, (500.0, 20.0, 20.0), 13_800.0, Quality.GOOD))
    meter = state.snapshot(2.0).meter
    assert meter.current_a == (20.0, 20.0, 20.0)
    assert meter.problem.startswith("jump of 480 A")


def _book(meter_values_interval_s: int, frozen_s: float) -> tuple[MeterBook, HeadroomConfig]:
    """The meter book of a site whose chargers are asked to report every
    ``meter_values_interval_s``, its meter doubted after ``frozen_s`` of frozen values."""
    config = site_config()
    config = config.model_copy(
        update={
            "ocpp": config.ocpp.model_copy(
                update={"meter_values_interval_s": meter_values_interval_s}
            ),
            "control": config.control.model_copy(update={"meter_frozen_s": frozen_s}),
        }
    )
    return MeterBook(config.meter_specs(), config.control.meter_frozen_s), config


def _steady_after_a_step(book: MeterBook, report_at: float, until: float) -> list[str]:
    """The meter steps at 0 s and stands; the chargers report the step ``report_at`` later.
    The problem the book holds at each reading (one every second)."""
    problems = []
    for t in range(int(until)):
        chargers = 62.0 if t < report_at else 70.0
        book.apply(MeterReading("grid", float(t), (96.0, 91.0, 86.0), None), chargers)
        problems.append(book.views(float(t))["site"].problem)
    return problems


def test_a_site_reporting_every_30_s_is_not_taken_for_a_frozen_meter() -> None:
    """Chargers asked to report every 30 s tell of a step the meter saw 20 s after it: that is
    no move while the meter stood. With the lag fixed at 10 s it was, and a steady site's meter
    was doubted after a minute (a hold, then the fail-safe)."""
    book, _ = _book(30, 60.0)
    assert _steady_after_a_step(book, 20.0, 90.0) == [""] * 90


def test_a_site_reporting_every_2_s_catches_a_frozen_meter_sooner() -> None:
    """Chargers that report every 2 s and move 3 s after the frozen meter last changed: a move
    the meter should have seen. Counted from 5 s (the fixed 10 s, cut to half a 10 s window)
    it was missed."""
    book, _ = _book(2, 10.0)
    problems = _steady_after_a_step(book, 3.0, 12.0)
    assert problems[:10] == [""] * 10
    assert problems[10].startswith("frozen: the same values for 10 s")


def test_the_report_lag_is_one_interval_at_most_half_the_window() -> None:
    """One MeterValues interval (10 s for chargers left on their own setting), cut to half a
    frozen window shorter than two intervals: such a window still catches a frozen meter (a
    late report may be taken for a move: a needless hold, the safe side)."""
    assert report_lag_s(30, 60.0) == 30.0
    assert report_lag_s(0, 60.0) == 10.0
    assert report_lag_s(10, 3.0) == 1.5
