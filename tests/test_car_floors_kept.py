"""The settled floors a decision keeps are the floors a fresh computation gives.

:func:`controller.car_floors.car_floors` keeps each car's floor at a reading once it
has settled and shares one floor between readings of the same report span and cap;
whatever it takes from its cache must equal :func:`draw_floor` computed anew with
every report and setpoint known at that decision. With the state's bounded report history
and setpoint log, a kept floor outlives the reports and limits it came from: it lies between
what a fresh computation gives with what is still held and with everything ever known.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.car_floors import (
    Kept,
    Phases,
    _in_site_phases,
    car_floors,
    draw_floor,
)
from controller.learning import EvBelief
from controller.meter_book import REPORT_SKEW_S
from controller.setpoint_log import SetpointLog
from controller.snapshot import SessionView

KEY = "cp-0/1"


def _session(reports: tuple[tuple[float, tuple[float, float, float]], ...]) -> SessionView:
    return SessionView(
        key=KEY,
        charger_id="cp-0",
        connector_id=1,
        transaction_id=1,
        started_at=0.0,
        status="Charging",
        measured_a=reports[-1][1] if reports else None,
        measured_at=reports[-1][0] if reports else None,
        offered_a=None,
        belief=EvBelief(),
        reports=reports,
    )


def _fresh(
    reports: tuple[tuple[float, tuple[float, float, float]], ...],
    times: list[float],
    log: SetpointLog,
    wiring: tuple[int, ...],
) -> list[Phases | None]:
    floor_of = log.floor_of(KEY)
    return [_in_site_phases(draw_floor(reports, t, floor_of, REPORT_SKEW_S), wiring) for t in times]


amps = st.sampled_from([0.0, 6.0, 8.0, 10.0, 16.0])


@settings(max_examples=300, deadline=None)
@given(
    report_every_s=st.sampled_from([0.3, 0.5, 1.0, 2.0]),
    report_lag_s=st.floats(0.0, 0.9),
    draws=st.lists(st.tuples(amps, amps, amps), min_size=30, max_size=30),
    limits=st.lists(st.tuples(st.floats(0.0, 12.0), amps), max_size=30),
    meter_every_s=st.sampled_from([0.25, 0.5]),
    decide_every_s=st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0]),
    wiring=st.sampled_from([(0, 1, 2), (1, 2, 0), (2, 0, 1)]),
    window=st.integers(1, 8),
)
def test_kept_floors_equal_floors_computed_anew(
    report_every_s: float,
    report_lag_s: float,
    draws: list[tuple[float, float, float]],
    limits: list[tuple[float, float]],
    meter_every_s: float,
    decide_every_s: float,
    wiring: tuple[int, ...],
    window: int,
) -> None:
    """At every decision the floors car_floors gives (kept from earlier decisions, shared
    between readings, or new) are exactly draw_floor's with every report and limit known
    then; with the last 8 reports and a bounded log, between draw_floor's with those and
    with everything."""
    arrivals = [(i * report_every_s + report_lag_s, draws[i]) for i in range(len(draws))]
    changes = sorted(limits)
    log, bounded = SetpointLog(kept=10**6), SetpointLog()
    kept: dict[float, Kept] = {}
    held: dict[float, Kept] = {}
    readings: list[float] = []
    now = 0.0
    while now < 12.0:
        while changes and changes[0][0] <= now:  # limits logged by decisions up to now
            at, limit_a = changes.pop(0)
            log.record(max(at, now), {KEY: limit_a})
            bounded.record(max(at, now), {KEY: limit_a})
        readings = [k * meter_every_s for k in range(int(now / meter_every_s) + 1)]
        times = readings[-window:]
        every = tuple(r for r in arrivals if r[0] <= now)
        horizon = readings[-1]
        got = car_floors(
            _session(every),
            times,
            [kept.setdefault(t, {}) for t in times],
            wiring,
            log,
            REPORT_SKEW_S,
            horizon,
        )
        full = _fresh(every, times, log, wiring)
        assert got == full, now
        got = car_floors(
            _session(every[-8:]),
            times,
            [held.setdefault(t, {}) for t in times],
            wiring,
            bounded,
            REPORT_SKEW_S,
            horizon,
        )
        least = _fresh(every[-8:], times, bounded, wiring)
        for low, floor, high in zip(least, got, full, strict=True):
            assert all(
                lo - 1e-9 <= f <= hi + 1e-9
                for lo, f, hi in zip(low or _NONE, floor or _NONE, high or _NONE, strict=True)
            ), now
        now += decide_every_s


_NONE = (0.0, 0.0, 0.0)
