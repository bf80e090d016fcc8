"""HIL scenario files: validation that names the key, the timeline, and the KPIs by hand."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from controller.errors import ConfigError
from hil.assertions import judge
from hil.charge_point import SimulatedChargePoint
from hil.charge_point_201 import SimulatedStation
from hil.devices import BaseLoad, TaperingEV, csv_profile
from hil.fairness import SessionOutcome, fairness, jain_index, shortfall_kwh
from hil.kpis import (
    Sample,
    SiteLimit,
    commands_per_charger_per_hour,
    limit_use,
    peak_mean_kw,
    peak_window_s,
    summarize,
)
from hil.overshoot import overshoot, recovery_times
from hil.rig import _charge_point
from hil.scenario import CsvLoad, load_scenario, parse_scenario
from hil.timeline import expand

SCENARIOS = sorted((Path(__file__).parent.parent / "hil" / "scenarios").glob("*.yaml"))

MINIMAL: dict[str, Any] = {
    "name": "t",
    "duration_s": 30,
    "site": {"id": "s", "max_current_a": 63, "safety_margin_a": 1, "failsafe_current_a": 6},
    "devices": {
        "chargers": [{"id": "cp", "count": 2}],
        "evs": {"car": {"max_current_a": 16, "delay_s": [1, 2]}},
        "base_load": {"constant_a": [10, 10, 10]},
    },
    "timeline": [{"at_s": 1, "event": "arrive", "chargers": "all", "ev": "car"}],
    "assertions": ["utilization >= 0.8"],
}


def problems_of(edit: Any) -> list[str]:
    """The problems parse_scenario reports for MINIMAL changed by ``edit(data)``."""
    data = copy.deepcopy(MINIMAL)
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_scenario(data, "t.yaml")
    return info.value.problems


def test_minimal_scenario_is_valid_and_expands_its_groups() -> None:
    """A charger group of 2 becomes cp-01 and cp-02; ``chargers: all`` arrives at both."""
    scenario = parse_scenario(copy.deepcopy(MINIMAL))
    assert [c.settings.id for c in scenario.chargers()] == ["cp-01", "cp-02"]
    actions = expand(scenario)
    assert [(a.kind, a.charger_id) for a in actions] == [
        ("arrive", "cp-01"),
        ("arrive", "cp-02"),
    ]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_library_scenario_is_valid(path: Path) -> None:
    """Each file in hil/scenarios/ loads, has assertions, and names a charger that exists."""
    scenario = load_scenario(path)
    assert scenario.assertions
    assert expand(scenario)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["devices"]["evs"]["car"].update(max_current_a=2),
            "devices.evs.car.max_current_a: Input should be greater than or equal to 6",
        ),
        (
            lambda d: d["devices"]["chargers"][0].update(colour="red"),
            "devices.chargers[0].colour: unknown key",
        ),
        (
            lambda d: d["devices"]["evs"]["car"].update(delay_s=[5, 1]),
            "devices.evs.car.delay_s: delay_s: [min, max] with min ≤ max",
        ),
        (
            lambda d: d["devices"]["base_load"].update(steps=[{"at_s": 0, "current_a": [1, 1, 1]}]),
            "devices.base_load: set exactly one of constant_a, steps, csv",
        ),
        (
            lambda d: d.update(time_scale=0.5),
            "time_scale: Input should be greater than or equal to 1",
        ),
        (
            lambda d: d.update(time_scale=500),
            "time_scale: Input should be less than or equal to 100",
        ),
        (lambda d: d.update(policy="fastest"), "policy: unknown policy 'fastest'"),
        (lambda d: d["assertions"].append("speed >= 3"), "assertions[1]: unknown KPI 'speed'"),
        (lambda d: d["assertions"].append("utilization is high"), "assertions[1]: "),
        (lambda d: d["timeline"][0].update(ev="bus"), "timeline[0].ev: no EV model 'bus'"),
        (
            lambda d: d["timeline"][0].update(chargers=["cp-09"]),
            "timeline[0].chargers: no charger 'cp-09'",
        ),
        (lambda d: d["timeline"][0].update(at_s=99), "timeline[0].at_s: 99"),
        (lambda d: d["timeline"][0].update(connector=2), "timeline[0].connector: cp-01 has 1"),
        (lambda d: d["timeline"][0].update(departure_s=0.5), "timeline[0].departure_s: must be"),
        (
            lambda d: d["timeline"].append({"at_s": 5, "event": "limit"}),
            "timeline[1].limit: give max_current_a, max_power_kw or both",
        ),
        (
            lambda d: d["timeline"].append({"at_s": 5, "event": "meter_fault", "mode": "fire"}),
            "timeline[1].meter_fault.mode: Input should be",
        ),
        (
            lambda d: d["timeline"].append({"at_s": 5, "event": "charger_offline", "charger": "x"}),
            "timeline[1].charger: no charger 'x'",
        ),
        (
            lambda d: d["site"].update(failsafe_current_a=32),
            "site.failsafe_current_a: 32.0 A on every connector",
        ),
        (
            lambda d: d["devices"]["chargers"][0].update(max_current_a=3),
            "devices.chargers[0].max_current_a: Input should be greater than or equal to 6",
        ),
        (
            lambda d: d["devices"].update(base_load={"csv": {"path": "nowhere.csv"}}),
            "devices.base_load.csv.path: cannot read",
        ),
        (
            lambda d: d["devices"]["chargers"][0].update(ocpp="2.1"),
            "devices.chargers[0].ocpp: Input should be '1.6' or '2.0.1'",
        ),
    ],
)
def test_errors_name_the_key(edit: Any, expected: str) -> None:
    """Every invalid scenario is refused with a line that starts with the key path at fault."""
    problems = problems_of(edit)
    assert any(p.startswith(expected) for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    """Two independent shape mistakes give two lines, so a file is fixed in one pass."""

    def edit(d: dict[str, Any]) -> None:
        """A negative duration and an empty battery."""
        d["duration_s"] = -1
        d["devices"]["evs"]["car"]["battery_kwh"] = 0

    problems = problems_of(edit)
    assert len(problems) == 2, problems


def test_staggered_arrivals_with_departure() -> None:
    """``stagger_s`` spaces the arrivals; each EV with ``departure_s`` gets its departure;
    a list of EV models is cycled over the chargers."""
    data = copy.deepcopy(MINIMAL)
    data["devices"]["evs"]["van"] = {"max_current_a": 16}
    data["timeline"] = [
        {
            "at_s": 2,
            "event": "arrive",
            "chargers": "all",
            "ev": ["car", "van"],
            "stagger_s": 3,
            "departure_s": 20,
        }
    ]
    actions = expand(parse_scenario(data))
    assert [(a.at_s, a.kind, a.charger_id, a.ev_model) for a in actions] == [
        (2, "arrive", "cp-01", "car"),
        (5, "arrive", "cp-02", "van"),
        (20, "depart", "cp-01", ""),
        (20, "depart", "cp-02", ""),
    ]


def test_csv_load_is_interpolated_and_sped_up(tmp_path: Path) -> None:
    """A recorded load is linear between its rows and read ``speed`` times as fast."""
    (tmp_path / "day.csv").write_text("t_s,l1_a,l2_a,l3_a\n0,10,20,30\n100,20,40,60\n")
    profile = csv_profile(CsvLoad(path="day.csv", start_s=10, speed=2), tmp_path)
    assert profile(20) == pytest.approx((15.0, 30.0, 45.0))  # recording time 10 + 2 × 20 = 50
    assert profile(1000) == pytest.approx((20.0, 40.0, 60.0))  # held at the last row


def test_base_load_scale_and_pin() -> None:
    """A base-load event scales the profile, or pins it to a value (which the scale also scales)."""
    load = BaseLoad(lambda _t: (10.0, 20.0, 30.0))
    load.scale = 1.5
    assert load(0) == (15.0, 30.0, 45.0)
    load.pinned_a = (2.0, 2.0, 2.0)
    assert load(0) == (3.0, 3.0, 3.0)


def test_tapering_ev_takes_less_as_it_fills() -> None:
    """Above taper_soc the cap falls linearly with the room left, never below 6 A."""
    ev = TaperingEV(max_current_a=32.0, soc=0.5, taper_soc=0.8)
    assert ev.cap_a() == 32.0
    ev.soc = 0.9  # half the taper range left
    assert ev.cap_a() == pytest.approx(16.0)
    ev.soc = 0.99
    assert ev.cap_a() == 6.0


# --- KPIs, by hand -------------------------------------------------------------------------

LIMIT = SiteLimit(max_current_a=100.0, max_power_w=None, margin_a=2.0, voltage_v=230.0)


def samples(*site_l1_a: float) -> list[Sample]:
    """One sample a second with L1 at the given currents, L2 and L3 at 50 A."""
    return [
        Sample(float(t), (a, 50.0, 50.0), (0.0, 0.0, 0.0), 0.0, 0.0, 0)
        for t, a in enumerate(site_l1_a)
    ]


def test_jain_index_by_hand() -> None:
    """Equal shares give 1; one taking all of n gives 1/n; (1, 2) gives 9 / (2 × 5) = 0.9."""
    assert jain_index([3.0, 3.0, 3.0, 3.0]) == 1.0
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == 0.25
    assert jain_index([1.0, 2.0]) == pytest.approx(0.9)
    assert jain_index([]) == 1.0
    assert jain_index([0.0, 0.0]) == 1.0


def test_fairness_per_priority_class_and_weighted() -> None:
    """Class 1 has shares 0.5 and 1.0 (Jain 0.9), class 2 one session (1.0); weighted by
    priority the shares are 0.5, 1.0 and 0.4 ÷ 2 = 0.2: Jain 1.7² ÷ (3 × 1.29) = 0.7468."""
    sessions = [
        SessionOutcome("a", 1.0, delivered_wh=50.0, demand_wh=100.0),
        SessionOutcome("b", 1.0, delivered_wh=100.0, demand_wh=100.0),
        SessionOutcome("c", 2.0, delivered_wh=40.0, demand_wh=100.0),
        SessionOutcome("d", 1.0, delivered_wh=0.0, demand_wh=0.0),  # never able to draw: left out
    ]
    result = fairness(sessions)
    assert result["fairness_by_priority"] == {"1": 0.9, "2": 1.0}
    assert result["fairness"] == 0.9
    assert result["fairness_weighted"] == pytest.approx(1.7**2 / (3 * 1.29), abs=1e-4)


def test_shortfall_by_hand() -> None:
    """Needed 1000 Wh, could take 800, got 500: 300 Wh short. No departure time: not counted.
    Got more than needed: 0."""
    sessions = [
        SessionOutcome("a", 1.0, delivered_wh=500.0, demand_wh=800.0, needed_wh=1000.0),
        SessionOutcome("b", 1.0, delivered_wh=0.0, demand_wh=800.0, needed_wh=None),
        SessionOutcome("c", 1.0, delivered_wh=900.0, demand_wh=950.0, needed_wh=600.0),
    ]
    assert shortfall_kwh(sessions) == 0.3


def test_recovery_time_by_hand() -> None:
    """Disturbance at 1 s: over at 2–3 s, under from 4 s → 3 s. Disturbance at 5 s: never over
    → 0. Disturbance at 7 s: over until the end → None (not recovered)."""
    run = samples(90, 95, 104, 103, 99, 98, 97, 101, 102)
    result = recovery_times(LIMIT, run, [1.0, 5.0, 7.0], 1.0)
    assert result == [
        {"at_s": 1.0, "recover_s": 3.0},
        {"at_s": 5.0, "recover_s": 0.0},
        {"at_s": 7.0, "recover_s": None},
    ]


def test_recovery_counts_past_the_next_disturbance() -> None:
    """Over from 1 s to 3 s across a second disturbance at 2 s: the first recovers at 4 s − 1 s."""
    result = recovery_times(LIMIT, samples(90, 104, 104, 104, 99), [1.0, 2.0], 1.0)
    assert result == [{"at_s": 1.0, "recover_s": 3.0}, {"at_s": 2.0, "recover_s": 2.0}]


def test_overshoot_by_hand() -> None:
    """Peaks 4 A and 1 A over 100 A on L1, a second each: 5 A·s × 230 V = 1150 J."""
    result = overshoot(LIMIT, samples(90, 104, 101, 99), 1.0)
    assert result["peak_over_limit_a"] == 4.0
    assert result["peak_over_limit_a_per_phase"] == [4.0, 0.0, 0.0]
    assert result["peak_over_limit_kw"] == 0.0  # no power limit
    assert result["energy_over_limit_kwh"] == pytest.approx(1150 / 3.6e6, abs=1e-6)


def test_samples_after_a_limit_change_are_judged_by_the_new_limit() -> None:
    """The manager cuts 100 A to 80 A at 2 s: 90 A is fine before, 10 A over after; the cut is
    the disturbance, so the site recovers 2 s after it."""
    cut = SiteLimit(max_current_a=80.0, max_power_w=None, margin_a=2.0, voltage_v=230.0)
    run = [
        dataclasses.replace(s, limit=cut if s.t >= 2 else None)
        for s in samples(90, 90, 90, 90, 75, 75)
    ]
    assert overshoot(LIMIT, run, 1.0)["peak_over_limit_a"] == 10.0
    assert recovery_times(LIMIT, run, [2.0], 1.0) == [{"at_s": 2.0, "recover_s": 2.0}]
    summary = summarize(run, LIMIT, 1.0, [2.0], allowance_s=0.5)
    assert summary.seconds_over_limit == 2.0
    assert summary.seconds_over_limit_unexplained == 1.0  # the sample at 3 s, 1 s after the cut


def test_a_limit_event_becomes_a_limit_action() -> None:
    """A scenario's limit change reaches the runner with the values it gave."""
    data = copy.deepcopy(MINIMAL)
    data["timeline"].append({"at_s": 5, "event": "limit", "max_power_kw": 50})
    (action,) = [a for a in expand(parse_scenario(data)) if a.kind == "limit"]
    assert (action.at_s, action.limit_a, action.limit_kw) == (5, None, 50.0)
    assert action.label == "limit set to 50 kW"


def test_a_controller_restart_becomes_a_site_wide_action() -> None:
    """The restart reaches the runner with its downtime; a negative one is refused."""
    data = copy.deepcopy(MINIMAL)
    data["timeline"].append({"at_s": 5, "event": "controller_restart", "down_s": 3})
    (action,) = [a for a in expand(parse_scenario(data)) if a.kind == "controller_restart"]
    assert (action.at_s, action.delay_s, action.charger_id) == (5, 3.0, "")
    data["timeline"][-1]["down_s"] = -1
    with pytest.raises(ConfigError, match="down_s"):
        parse_scenario(data)


def test_power_overshoot_counts_the_larger_excess() -> None:
    """With a 60 kW limit, 300 A × 230 V = 69 kW is 9 kW over; the per-phase excess is none."""
    limit = SiteLimit(max_current_a=None, max_power_w=60_000.0, margin_a=0.0, voltage_v=230.0)
    run = [Sample(0.0, (100.0, 100.0, 100.0), (0.0, 0.0, 0.0), 0.0, 0.0, 0)]
    result = overshoot(limit, run, 2.0)
    assert result["peak_over_limit_kw"] == 9.0
    assert result["energy_over_limit_kwh"] == pytest.approx(9000 * 2 / 3.6e6, abs=1e-6)


def test_commands_and_peak_window() -> None:
    """60 commands to 10 chargers in a minute is 360 per charger per hour; a short run's
    billing window is a quarter of it, and the peak is the best mean over that window."""
    assert commands_per_charger_per_hour(60, 10, 60.0) == 360.0
    assert peak_window_s(60.0) == 15.0
    assert peak_window_s(7200.0) == 900.0
    run = samples(0, 0, 30, 30, 0)  # L1 30 A plus 100 A on L2+L3 for 2 s
    # means over 2 samples: (100+100)/2, (100+130)/2, 130, (130+100)/2 → best 130 A × 230 V
    assert peak_mean_kw(run, 230.0, 2.0, 1.0) == pytest.approx(29.9)


def test_assertions_are_judged() -> None:
    """Each assertion passes or fails on its KPI; a KPI missing from the run fails."""
    results = judge(["utilization >= 0.8", "peak_over_limit_a < 1", "fairness > 0"], {
        "utilization": 0.85,
        "peak_over_limit_a": 2.5,
    })  # fmt: skip
    assert [(r.kpi, r.passed, r.actual) for r in results] == [
        ("utilization", True, 0.85),
        ("peak_over_limit_a", False, 2.5),
        ("fairness", False, None),
    ]


def test_limit_use_counts_only_samples_where_the_evs_were_short() -> None:
    """Two samples with EVs short of what they could take (L1 at 98 A and 49 A of 98 A usable,
    1.0 and 0.5), one where they took all they could (left out): limit use 0.75."""
    run = [
        Sample(0.0, (98.0, 20.0, 20.0), (0.0, 0.0, 0.0), 10_000.0, 20_000.0, 1),
        Sample(1.0, (49.0, 20.0, 20.0), (0.0, 0.0, 0.0), 10_000.0, 20_000.0, 1),
        Sample(2.0, (10.0, 20.0, 20.0), (0.0, 0.0, 0.0), 20_000.0, 20_000.0, 1),
    ]
    assert limit_use(LIMIT, run) == 0.75
    assert limit_use(LIMIT, run[2:]) == 1.0


def test_a_charger_group_may_speak_2_0_1() -> None:
    """``ocpp: "2.0.1"`` gives a group of 2.0.1 stations, ``ocpp: 1.6`` (a YAML number) or
    nothing 1.6 charge points; the controller's config does not see the key."""
    data = copy.deepcopy(MINIMAL)
    data["devices"]["chargers"] = [
        {"id": "old", "ocpp": 1.6},
        {"id": "plain"},
        {"id": "new", "count": 2, "ocpp": "2.0.1"},
    ]
    scenario = parse_scenario(data)
    sims = {c.settings.id: c for c in scenario.chargers()}
    assert {k: s.ocpp for k, s in sims.items()} == {
        "old": "1.6",
        "plain": "1.6",
        "new-01": "2.0.1",
        "new-02": "2.0.1",
    }
    kinds = {k: type(_charge_point(s, "ws://127.0.0.1:1/ocpp", 230.0)) for k, s in sims.items()}
    assert kinds["old"] is SimulatedChargePoint
    assert kinds["plain"] is SimulatedChargePoint
    assert kinds["new-01"] is SimulatedStation
    config = scenario.controller_config(meter_port=1)
    assert [c.id for c in config.chargers] == ["old", "plain", "new-01", "new-02"]
