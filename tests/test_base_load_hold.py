"""The base-load estimate through a meter hold: the cars' settled floors stay out of the
building's load for as long as the readings they belong to are planned with (the estimate
alone, and over a real site: OCPP over websockets, the meter over Modbus TCP).

While the meter is held (frozen or silent) no new reading comes, so the estimate plans with
its last ones for as long as the hold lasts, while the chargers keep reporting and the loop
keeps logging limits. Each car's report history is bounded (``HISTORY``), and so is the
setpoint log: what a car drew at those readings must not be forgotten with them, or the
estimate becomes the whole meter reading and every car is paused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.base_load import BaseLoadEstimate, reading_base_a
from controller.charger_records import HISTORY
from controller.config import HeadroomConfig
from controller.decide import Mode
from controller.meter_book import REPORT_SKEW_S, MeterView
from controller.setpoint_log import SetpointLog
from hil.ev import EV
from tests.helpers import site_config
from tests.rig import rig, until
from tests.test_base_load import reading, sess

CONFIG = site_config(chargers=3)  # cp-0 L1L2L3, cp-1 L2L3L1, cp-2 L3L1L2
S = REPORT_SKEW_S
BUILDING_A = 30.0


def _reports(every_s: float, first_s: float, a: float, now: float) -> list[tuple[float, float]]:
    """Every report of a car drawing ``a`` that has arrived by ``now``."""
    count = int((now - first_s) / every_s) + 1 if now >= first_s else 0
    return [(first_s + k * every_s, a) for k in range(count)]


def _held_site(
    hold_s: float,
    targets: dict[str, list[float]] | None = None,
    config_at: tuple[float, HeadroomConfig] | None = None,
) -> list[tuple[float, tuple[float, float, float]]]:
    """Two cars, cp-0 at 16 A reporting every 10 s and cp-1 at 10 A every 7 s, on a building
    of 30 A (both have reported by 3 s); the meter reads every second from 4 s to 5 s, then
    is held for ``hold_s``. A decision every second logs each car's target (cycling through
    ``targets``, default its draw). The estimate at each decision."""
    cars = {"cp-0/1": (10.0, 0.5, 16.0), "cp-1/1": (7.0, 3.0, 10.0)}
    cycle = targets or {key: [a] for key, (_, _, a) in cars.items()}
    log = SetpointLog()
    log.record(0.0, {key: cycle[key][0] for key in cars})
    estimate = BaseLoadEstimate(3.0)
    got = []
    for tick in range(4, int(5 + hold_s) + 1):
        now = float(tick)
        if now <= 5.0:
            estimate.add(reading(now, BUILDING_A + 16.0 + 10.0))
        sessions = []
        for i, (key, (every_s, first_s, a)) in enumerate(cars.items()):
            reports = [(at, (v, v, v)) for at, v in _reports(every_s, first_s, a, now)]
            sessions.append(sess(i, reports[-HISTORY:]))
            assert sessions[-1].key == key
        config = config_at[1] if config_at and now >= config_at[0] else CONFIG
        base = estimate.estimate(sessions, config, log)
        assert base is not None
        got.append((now, base))
        log.record(now, {key: cycle[key][tick % len(cycle[key])] for key in cars})
    return got


def test_a_long_hold_keeps_the_cars_out_of_the_last_readings() -> None:
    """Held for 200 s (20 of cp-0's reports, far more than its history keeps), the estimate
    stays the building's 30 A: the cars' floors at the last readings settled as their reports
    arrived and outlive those reports. It read cp-1 as building load from 59 s on, once its
    report from before the readings had left its history, and the whole meter, 56 A, when
    cp-0's had too: their floors there never settled while no reading came, and computed
    again without that report there were none."""
    for now, base in _held_site(200.0):
        assert base == (BUILDING_A,) * 3, now


def test_limits_logged_through_a_hold_do_not_unsettle_the_floors() -> None:
    """A decision a second, each changing cp-0's limit (16 ↔ 20 A), fills its setpoint log in
    16 s: the limits that capped its floors at the last readings drop out of the log. The
    floors stand (what it was offered then does not change); computed again they were capped
    at nothing, and cp-0 read as building load."""
    for now, base in _held_site(60.0, targets={"cp-0/1": [16.0, 20.0], "cp-1/1": [10.0]}):
        assert base == (BUILDING_A,) * 3, now


def test_an_operator_change_in_a_hold_keeps_the_floors() -> None:
    """A new config that rewires no charger (an operator lowers the site limit) keeps the
    floors settled under the old one, after the reports they came from are gone."""
    lowered = CONFIG.model_copy(
        update={"site": CONFIG.site.model_copy(update={"max_current_a": 50.0})}
    )
    for now, base in _held_site(150.0, config_at=(120.0, lowered)):
        assert base == (BUILDING_A,) * 3, now


amps = st.sampled_from([0.0, 6.0, 10.0, 16.0, 32.0])


@settings(max_examples=150, deadline=None)
@given(
    every_s=st.lists(st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0]), min_size=1, max_size=3),
    offsets=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    draws=st.lists(st.tuples(amps, amps, amps), min_size=60, max_size=60),
    limits=st.lists(st.tuples(st.integers(0, 35), st.sampled_from(range(3)), amps)),
    meter_every_s=st.sampled_from([0.25, 0.5, 1.0]),
    window_s=st.sampled_from([0.0, 1.0, 3.0]),
    decide_every_s=st.sampled_from([0.25, 0.5]),
    hold_at=st.floats(2.0, 10.0),
    lags=st.lists(st.sampled_from([0.0, S / 2, S]), min_size=8, max_size=8),
)
def test_bounded_memory_never_reads_a_settled_car_as_building_load(
    every_s: list[float],
    offsets: list[float],
    draws: list[tuple[float, float, float]],
    limits: list[tuple[int, int, float]],
    meter_every_s: float,
    window_s: float,
    decide_every_s: float,
    hold_at: float,
    lags: list[float],
) -> None:
    """Cars reporting anything at their own pace, limits logged at any decision, the meter
    held from ``hold_at`` on for up to 60 s: at every decision the estimate with the state's
    bounded report history and setpoint log is no lower than one with every report and limit
    ever known (less memory only ever counts a car as building load, the safe side); and once
    every car has reported twice since the last reading (its floors there have settled), it
    is no higher than that last reading's base load with everything known: what a car's
    settled floor says it drew is never read as building load."""
    n = len(every_s)
    keys = [f"cp-{i}/1" for i in range(n)]
    arrivals = [
        [
            (offsets[i] + k * every_s[i] + lags[(k + i) % len(lags)], draws[(7 * i + k) % 60])
            for k in range(int(70.0 / every_s[i]) + 1)
        ]
        for i in range(n)
    ]
    # A car's limit changes at most every 2 s: fewer times between two of its reports than
    # the setpoint log keeps (SETPOINTS_KEPT), more over the hold.
    changes = sorted({(2.0 * slot, i): a for slot, i, a in limits if i < n}.items())
    bounded, full = SetpointLog(), SetpointLog(kept=10**6)
    held = BaseLoadEstimate(window_s)
    readings: list[MeterView] = []
    site_a = [0.0, 0.0, 0.0]
    offered = {key: 32.0 for key in keys}
    now = 0.0
    while now < hold_at + 60.0:
        if now <= hold_at:  # the meter reads until the hold (the values do not matter)
            while not readings or (readings[-1].good_at or 0.0) + meter_every_s <= now:
                at = len(readings) * meter_every_s
                site_a = [BUILDING_A + 10.0 * p + sum(d[p] for d in draws[:n]) for p in range(3)]
                readings.append(reading(at, (site_a[0], site_a[1], site_a[2])))
                held.add(readings[-1])
        everything = [sess(i, [r for r in arrivals[i] if r[0] <= now]) for i in range(n)]
        state = [replace(s, reports=s.reports[-HISTORY:]) for s in everything]
        fresh = BaseLoadEstimate(window_s)
        for view in readings:
            fresh.add(view)
        got = held.estimate(state, CONFIG, bounded)
        known = fresh.estimate(everything, CONFIG, full)
        assert got is not None
        assert known is not None
        assert all(g >= k - 1e-9 for g, k in zip(got, known, strict=True)), (now, got, known)
        last_at = readings[-1].good_at or 0.0
        settled = all(len([r for r in s.reports if r[0] > last_at + S]) >= 2 for s in everything)
        if now > hold_at and settled:
            last = reading_base_a(readings[-1], everything, CONFIG, full)
            assert all(g <= b + 1e-9 for g, b in zip(got, last, strict=True)), (now, got, last)
        while changes and changes[0][0][0] <= now:
            (_, i), a = changes.pop(0)
            offered[keys[i]] = a
        for log in (bounded, full):
            log.record(now, dict(offered))
        now += decide_every_s


async def test_cars_are_not_paused_while_the_meter_is_held() -> None:
    """Over a real site: two cars charging, the meter goes silent for 5 s (the loop holds, the
    fail-safe 10 s away) while each charger reports every 0.25 s, twenty reports, far more than
    a session's history keeps. Every decision of the hold keeps both cars where they were; the
    estimate read the whole meter once the reports from before its last reading were gone,
    and paused both."""
    async with rig(chargers=2, failsafe_after_s=10.0) as r:
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        loop = r.controller.loop
        await until(
            lambda: all(cp.offered_a(1) > 20.0 for cp in r.charge_points), 10, "both charging"
        )
        await asyncio.sleep(2.0)  # settled
        before = {cp.charger_id: cp.offered_a(1) for cp in r.charge_points}
        r.meter.fault = "silent"
        await until(lambda: loop.last is not None and loop.last.mode is Mode.HOLD, 3, "hold")
        held_for = time.monotonic() + 5.0
        while time.monotonic() < held_for:
            decision = loop.last
            assert decision is not None
            assert decision.mode is Mode.HOLD
            targets = {key.split("/")[0]: t.limit_a for key, t in decision.targets.items()}
            assert all(targets[cid] >= a - 0.5 for cid, a in before.items()), (targets, before)
            await asyncio.sleep(0.1)
