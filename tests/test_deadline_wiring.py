"""From a session's needs and the ``deadline`` config section to the plan's problem.

SiteState counts the energy delivered since a need was said; build_problem turns
departure_at (wall clock) into seconds from now, the open need into energy_wh,
a priority override into the weight and the EV's maximum into a cap; the config
section becomes the horizon, with time-of-use windows priced per slot.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from controller.config import ControlSettings, parse_config
from controller.decide import decide
from controller.model import ChargerMeasurement, SessionNeeds, SessionStarted
from controller.site_problem import build_problem
from controller.state import SiteState
from controller.tariff import horizon, slot_prices
from policies import get_policy
from tests.helpers import session, site_config, snapshot

NOW_S = datetime(2026, 1, 1, 22, 0, tzinfo=UTC).timestamp()
"""22:00 UTC: the depot's evening."""


def _config(policy: str = "deadline", **deadline: object) -> object:
    raw = site_config().model_dump(by_alias=True, exclude_none=True)
    raw["control"] = {**raw["control"], "policy": policy}
    raw["deadline"] = deadline
    return parse_config(raw)


def test_state_counts_the_energy_since_the_need_was_said() -> None:
    """The need is 10 kWh at register 5,000 Wh; at register 7,500 Wh 2.5 kWh are delivered."""
    state = SiteState(ControlSettings())
    state.apply(SessionStarted("cp-0", 1, 10.0, 7))
    state.apply(ChargerMeasurement("cp-0", 1, 11.0, (16.0, 16.0, 16.0), energy_wh=5000.0))
    state.apply(SessionNeeds("cp-0", 1, 12.0, departure_at=NOW_S + 3600, energy_wh=10_000.0))
    state.apply(ChargerMeasurement("cp-0", 1, 13.0, (16.0, 16.0, 16.0), energy_wh=7500.0))
    (view,) = state.snapshot(14.0).sessions
    assert view.delivered_since_needs_wh == 2500.0


def test_needs_reach_the_problem() -> None:
    """Departure in an hour, 10 kWh of which 2.5 are delivered, priority 3, EV max 20 A."""
    needs = SessionNeeds(
        "cp-0", 1, 0.0, NOW_S + 3600, 10_000.0, ev_max_a=20.0, priority=3.0, source="scenario"
    )
    view = replace(session(0), needs=needs, delivered_since_needs_wh=2500.0)
    problem = build_problem(snapshot([view]), _config(), (0.0, 0.0, 0.0), wall_now_s=NOW_S)
    (demand,) = problem.sessions
    assert demand.departure_s == 3600.0
    assert demand.energy_wh == 7500.0
    assert demand.weight == 3.0
    assert demand.max_current_a == 20.0


def test_the_energy_a_car_draws_before_a_setpoint_reaches_it_is_not_open() -> None:
    """A van drawing 16 A on three phases (11,040 W) whose charger takes 2 s to pass a new
    setpoint on: 6.13 Wh reach it whatever the decision sends, so 100 Wh still to deliver
    leave 93.87 Wh open; a charger not learned yet counts nothing on its way; a need smaller
    than what is on its way is met (0, not negative); and a stopped van counts what a
    restart at the 6 A minimum would give it before a cut could stop it again (2.3 Wh)."""
    needs = SessionNeeds("cp-0", 1, 0.0, NOW_S + 600, 1100.0, source="scenario")
    view = replace(session(0), needs=needs)
    config, base = _config(), (0.0, 0.0, 0.0)

    def open_wh(learned: dict[str, float], delivered_wh: float, draw_a: float) -> float | None:
        seen = replace(
            view, delivered_since_needs_wh=delivered_wh, measured_a=(draw_a, draw_a, draw_a)
        )
        problem = build_problem(
            snapshot([seen]), config, base, wall_now_s=NOW_S, response_s=learned
        )
        return problem.sessions[0].energy_wh

    assert open_wh({"cp-0": 2.0}, 1000.0, 16.0) == pytest.approx(100.0 - 11_040.0 * 2 / 3600)
    assert open_wh({}, 1000.0, 16.0) == 100.0
    assert open_wh({"cp-0": 2.0}, 1095.0, 16.0) == 0.0
    assert open_wh({"cp-0": 2.0}, 1098.0, 0.0) == 0.0
    assert open_wh({"cp-0": 2.0}, 1090.0, 0.0) == pytest.approx(10.0 - 4_140.0 * 2 / 3600)


def test_without_the_wall_clock_nothing_is_planned() -> None:
    """No wall time: no departure can be placed, so the demand has none (nor a horizon)."""
    view = replace(session(0), needs=SessionNeeds("cp-0", 1, 0.0, NOW_S + 3600, 1000.0))
    problem = build_problem(snapshot([view]), _config(), (0.0, 0.0, 0.0))
    assert problem.sessions[0].departure_s is None
    assert problem.horizon.prices == ()


def test_the_section_becomes_the_horizon() -> None:
    """30-minute slots over 12 h, a 22:00–06:00 night rate that wraps past midnight, 0.30
    otherwise (a whole-day window listed second), a 40 kW cap."""
    config = _config(
        slot_min=30,
        horizon_h=12,
        peak_cap_kw=40,
        prices=[
            {"from": "22:00", "to": "06:00", "price": 0.10},
            {"from": "00:00", "to": "00:00", "price": 0.30},
        ],
    )
    plan = horizon(config.deadline, NOW_S)  # type: ignore[attr-defined]
    assert (plan.slot_s, plan.slots, plan.peak_cap_w, plan.now_s) == (1800.0, 24, 40_000.0, NOW_S)
    assert plan.prices == tuple([0.10] * 16 + [0.30] * 8)


def test_prices_follow_the_local_timezone() -> None:
    """In Europe/Berlin (UTC+1 in January) 22:00 UTC is 23:00 local: the 23:00–24:00 window
    holds the first two 30-minute slots."""
    config = _config(
        slot_min=30,
        timezone="Europe/Berlin",
        prices=[{"from": "23:00", "to": "00:00", "price": 0.5}],
    )
    assert slot_prices(config.deadline, NOW_S, 3) == (0.5, 0.5, 0.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"slot_min": 0}, "deadline.slot_min"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is unknown"),
        ({"prices": [{"from": "25:00", "to": "06:00", "price": 1}]}, "deadline.prices\\[0\\].from"),
        ({"horizon_h": 168, "slot_min": 1}, "more than 2,000 slots"),
    ],
)
def test_a_bad_section_is_refused_with_its_key(section: dict[str, object], message: str) -> None:
    """Each wrong setting names itself."""
    with pytest.raises(Exception, match=message):
        _config(**section)


def test_the_loop_decision_plans_the_early_van_first() -> None:
    """Through decide(): two vans each needing an hour at 32 A on a 63 A site (2 A margin)
    with 25 A of building load: the one leaving in an hour gets 32 A, the one leaving in
    five hours waits (the 4 A left are under its minimum)."""
    early = replace(
        session(0), needs=SessionNeeds("cp-0", 1, 0.0, NOW_S + 3600, 22_080.0, source="scenario")
    )
    late = replace(session(1), needs=SessionNeeds("cp-1", 1, 0.0, NOW_S + 5 * 3600, 22_080.0))
    config = _config()
    decision = decide(
        snapshot([early, late], meter_a=(25.0, 25.0, 25.0)),
        config,  # type: ignore[arg-type]
        get_policy("deadline"),
        {},
        wall_now_s=NOW_S,
    )
    assert decision.targets["cp-0/1"].limit_a == 32.0
    assert decision.targets["cp-1/1"].limit_a == 0.0
    assert decision.rejected == ()


def _profile(night_a: float, day_a: float) -> list[list[float]]:
    """24 hourly entries: ``night_a`` per phase from 00:00 to 06:00, ``day_a`` otherwise."""
    return [[night_a] * 3 if hour < 6 else [day_a] * 3 for hour in range(24)]


def test_the_profile_becomes_the_forecast_in_local_time() -> None:
    """30-minute slots in Europe/Berlin: 22:00 UTC is 23:00 local, so slots 0 and 1 take the
    23:00 entry, slot 2 (00:15 local) the 00:00 one; the horizon covers every slot."""
    profile = [[float(hour), float(hour), 2.0 * hour] for hour in range(24)]
    config = _config(slot_min=30, timezone="Europe/Berlin", base_load_profile=profile)
    plan = horizon(config.deadline, NOW_S)  # type: ignore[attr-defined]
    assert plan.base_forecast_a[:3] == ((23.0, 23.0, 46.0), (23.0, 23.0, 46.0), (0.0, 0.0, 0.0))
    assert len(plan.base_forecast_a) == plan.slots == 48
    assert horizon(_config().deadline, NOW_S).base_forecast_a == ()  # type: ignore[attr-defined]


def _van_now(**deadline: object) -> float:
    """What decide() gives a van that needs an hour at 32 A and leaves in 4 h, on the 63 A
    site (2 A margin) with 25 A of building load measured now, at 22:00 UTC, with the
    night from midnight four times cheaper."""
    prices = [
        {"from": "22:00", "to": "00:00", "price": 0.4},
        {"from": "00:00", "to": "22:00", "price": 0.1},
    ]
    van = replace(
        session(0), needs=SessionNeeds("cp-0", 1, 0.0, NOW_S + 4 * 3600, 22_080.0, source="api")
    )
    decision = decide(
        snapshot([van], meter_a=(25.0, 25.0, 25.0)),
        _config(prices=prices, **deadline),  # type: ignore[arg-type]
        get_policy("deadline"),
        {},
        wall_now_s=NOW_S,
    )
    assert decision.rejected == ()
    return decision.targets["cp-0/1"].limit_a


def test_the_forecast_steers_the_plan_and_slot_zero_is_measured() -> None:
    """Without a profile the van waits for the cheap night (0 A now). A profile that says
    the building takes 61 A of the 61 A allowed all night leaves no room after midnight, so
    the van charges now at 32 A. The profile says 61 A at 22:00 too, but slot 0 plans with
    the 25 A measured now, so the 32 A fit (and a profile of a quiet night lets it wait)."""
    assert _van_now() == 0.0
    assert _van_now(base_load_profile=_profile(night_a=61.0, day_a=61.0)) == 32.0
    assert _van_now(base_load_profile=_profile(night_a=5.0, day_a=61.0)) == 0.0


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ([[1.0, 1.0, 1.0]] * 5, "base_load_profile: expected 24 entries"),
        (
            [[1.0, 1.0, -1.0]] * 24,
            r"deadline\.base_load_profile\[0\]\[2\]: Input should be greater",
        ),
        ([[1.0, 1.0]] * 24, r"deadline\.base_load_profile\[0\]"),
    ],
)
def test_a_bad_profile_is_refused_with_its_key(profile: object, message: str) -> None:
    """A profile of the wrong length, a negative current or an entry without three phases
    names the key."""
    with pytest.raises(Exception, match=message):
        _config(base_load_profile=profile)
