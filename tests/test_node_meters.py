"""Meters on nodes of the limit tree, as pure data: config, state, decisions.

The end-to-end behaviour over real Modbus TCP, MQTT and OCPP is in
tests/test_site_meters.py; these check the rules one by one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import HeadroomConfig, load_config, parse_config
from controller.decide import Mode, decide
from controller.errors import ConfigError
from controller.meter_book import MeterView
from controller.meters.node_settings import ModbusNodeMeter, OcppNodeMeter
from controller.meters.ocpp_meter import as_meter_reading
from controller.model import ChargerMeasurement, MeterFailed, MeterReading, Quality
from controller.state import SiteState
from policies import Allocation, ConnectorAllocation, get_policy
from policies.verify import violations
from tests.helpers import session, snapshot

WALL0 = 1_800_000_000.0


def two_node_site(**feeder_meter: Any) -> dict[str, Any]:
    """A 100 A site with a 40 A feeder; cp-0 and cp-1 on the feeder, cp-2 on the site."""
    return {
        "site": {"id": "site", "max_current_a": 100, "failsafe_current_a": 6},
        "control": {"failsafe_after_s": 10},
        "groups": [{"id": "feeder", "max_current_a": 40}],
        "meters": [
            {"id": "grid", "source": "modbus", "host": "127.0.0.1"},
            {"id": "fm", "source": "modbus", "host": "127.0.0.1", "node": "feeder", **feeder_meter},
        ],
        "chargers": [
            {"id": "cp-0", "group": "feeder"},
            {"id": "cp-1", "group": "feeder"},
            {"id": "cp-2"},
        ],
    }


CONFIG = parse_config(two_node_site())


def problems(data: dict[str, Any]) -> list[str]:
    """The config errors for ``data``."""
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


# --- config -----------------------------------------------------------------------


def test_meters_list_attaches_each_meter_to_its_node() -> None:
    """Each entry of meters: keeps its source settings and names its node (default: site)."""
    specs = CONFIG.meter_specs()
    assert (specs["grid"].node, specs["fm"].node) == ("site", "feeder")
    assert specs["fm"].chargers == frozenset({"cp-0", "cp-1"})
    assert specs["fm"].max_step_a == 60.0  # 1.5 × the feeder's 40 A
    assert specs["grid"].stale_s == 3.0  # max(3 polls of 1 s, control.meter_stale_s)
    assert isinstance(CONFIG.node_meters()[1], ModbusNodeMeter)


def test_legacy_meter_is_the_site_meter_unchanged() -> None:
    """meter: alone still works, as the site node's meter judged exactly as before."""
    data = two_node_site()
    del data["meters"]
    data["meter"] = {"host": "127.0.0.1", "poll_interval_s": 2}
    config = parse_config(data)
    [spec] = config.meter_specs().values()
    assert (spec.meter_id, spec.node, spec.includes_chargers) == ("grid", "site", True)
    assert spec.stale_s == config.control.meter_stale_s
    assert spec.chargers is None  # every charger's draw, as before


def test_the_meters_example_loads() -> None:
    """examples/site-meters.yaml: a grid, a feeder (MQTT) and a charger's main meter."""
    config = load_config(Path(__file__).resolve().parent.parent / "examples" / "site-meters.yaml")
    specs = config.meter_specs()
    assert {s.node for s in specs.values()} == {"depot-north", "feeder-a", "hall-b"}
    assert specs["hall-b-main"].chargers == frozenset({"cp-b1", "cp-b2"})
    assert specs["grid"].stale_s == 3.0  # max(3 × 0.5 s, control.meter_stale_s)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d.update(meter={"host": "127.0.0.1"}),
            "meter and meters are two ways to set the site meter",
        ),
        (
            lambda d: d["meters"][1].update(node="nowhere"),
            "meters[1].node: 'nowhere' is neither the site nor a group",
        ),
        (
            lambda d: d["meters"][1].update(node="site"),
            "meters[1].node: 'site' already has meter 'grid' (one per node)",
        ),
        (lambda d: d["meters"][1].update(id="grid"), "meters: duplicate id(s) grid"),
        (lambda d: d["meters"].pop(0), "meters: none on the site node 'site'"),
        (
            lambda d: d["meters"].__setitem__(
                1, {"id": "x", "source": "ocpp", "charger": "cp-9", "node": "feeder"}
            ),
            "meters[1].charger: no charger 'cp-9'",
        ),
        (lambda d: d["meters"][1].update(source="zigbee"), "meters[1]: Input tag 'zigbee'"),
    ],
)
def test_broken_meter_lists_are_named(change: Any, expected: str) -> None:
    """Both forms together, unknown nodes, two meters on a node, no site meter and unknown
    chargers or sources are each refused with the key that is wrong."""
    data = two_node_site()
    change(data)
    assert any(expected in p for p in problems(data)), problems(data)


# --- state: source timestamps -----------------------------------------------------


def state_for(config: HeadroomConfig, wall: list[float]) -> SiteState:
    """A site state with the config's meters and a wall clock the test moves."""
    return SiteState(
        config.control, config.meter_max_step_a(), config.meter_specs(), "site", lambda: wall[0]
    )


def reading(meter: str, at: float, amps: float, source_at: float | None) -> MeterReading:
    """A good reading of ``amps`` on every phase."""
    return MeterReading(meter, at, (amps, amps, amps), amps * 690, Quality.GOOD, "", source_at)


def test_an_older_reading_never_replaces_a_newer_one() -> None:
    """Out of order: a reading measured before the one held is dropped, whatever it says."""
    wall = [WALL0]
    state = state_for(CONFIG, wall)
    state.apply(reading("grid", 10.0, 20.0, WALL0))
    state.apply(reading("grid", 10.1, 50.0, WALL0 - 0.5))
    assert state.snapshot(10.2).meter.current_a == (20.0, 20.0, 20.0)
    state.apply(reading("grid", 10.3, 30.0, WALL0 + 0.3))
    assert state.snapshot(10.4).meter.current_a == (30.0, 30.0, 30.0)


def test_a_value_measured_long_ago_is_stale_on_arrival() -> None:
    """Staleness counts from when the source measured, not from when it arrived."""
    wall = [WALL0]
    state = state_for(CONFIG, wall)
    state.apply(reading("grid", 100.0, 20.0, WALL0 - 5.0))  # 5 s old, stale bound 3 s
    view = state.snapshot(100.0).meter
    assert view.good_at == 95.0
    assert view.problem.startswith("stale")
    state.apply(reading("grid", 100.5, 20.0, WALL0 + 0.4))  # fresh: good again
    assert state.snapshot(100.6).meter.problem == ""


def test_each_node_keeps_its_own_view_and_doubt() -> None:
    """A failed feeder meter leaves the site's view alone, and the other way round."""
    state = state_for(CONFIG, [WALL0])
    state.apply(reading("grid", 1.0, 20.0, WALL0))
    state.apply(reading("fm", 1.0, 8.0, WALL0))
    state.apply(MeterFailed("fm", 1.5, "no valid answer within 0.5 s"))
    snap = state.snapshot(1.6)
    assert snap.meter.problem == ""
    assert snap.meter.current_a == (20.0, 20.0, 20.0)
    assert snap.meters["feeder"].problem == "no valid answer within 0.5 s"
    assert snap.meters["feeder"].problem_since == 1.5
    state.apply(reading("nope", 2.0, 1.0, WALL0))
    assert state.problems[-1] == "reading from unknown meter 'nope'"


# --- decisions per node -------------------------------------------------------------


def feeder_snapshot(
    feeder: MeterView, at: float = 100.0, held: float = 10.0
) -> tuple[Any, dict[str, float]]:
    """Sessions on cp-0, cp-1 (feeder) and cp-2 (site), each drawing ``held`` A."""
    draw = (held, held, held)
    sessions = [
        replace(session(i, measured_a=draw), draw_at_node_meter_a={"feeder": draw})
        for i in range(3)
    ]
    snap = snapshot(sessions, meter_a=(40.0, 40.0, 40.0), at=at)
    site_view = replace(snap.meter, meter_id="grid")
    snap = replace(snap, meters={"site": site_view, "feeder": feeder})
    return snap, {s.key: held for s in sessions}


GOOD_FEEDER = MeterView((25.0, 25.0, 25.0), None, 100.0, meter_id="fm")


def test_feeder_base_load_is_its_meter_minus_its_sessions() -> None:
    """Feeder meter 25 A − its two sessions' 20 A = 5 A base on the feeder: 40 − 5 = 35 A
    for its two cars, 17.5 A each; the site car is not bound by the feeder."""
    snap, held = feeder_snapshot(GOOD_FEEDER)
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), held)
    feeder = next(n for n in decision.problem.nodes if n.id == "feeder")
    assert feeder.base_load_a == (5.0, 5.0, 5.0)
    assert decision.targets["cp-0/1"].limit_a == 17.5
    assert decision.targets["cp-2/1"].limit_a == 32.0
    assert decision.node_modes["feeder"] == (Mode.NORMAL, "")


def test_a_meter_without_the_chargers_is_base_load_as_it_reads() -> None:
    """includes_chargers false: the feeder's 25 A reading is all base load: 15 A for its cars."""
    config = parse_config(two_node_site(includes_chargers=False))
    snap, held = feeder_snapshot(replace(GOOD_FEEDER, includes_chargers=False))
    decision = decide(snap, config, get_policy("weighted_fair"), held)
    feeder = next(n for n in decision.problem.nodes if n.id == "feeder")
    assert feeder.base_load_a == (25.0, 25.0, 25.0)
    assert decision.targets["cp-0/1"].limit_a == 7.5


def test_doubt_on_the_feeder_holds_then_fail_safes_only_its_chargers() -> None:
    """Invariant 4 per node: a doubtful feeder meter caps its cars at what they hold, and
    after failsafe_after_s gives them the fail-safe current; the site car keeps its 32 A."""
    doubtful = replace(GOOD_FEEDER, problem="frozen", problem_since=95.0)
    snap, held = feeder_snapshot(doubtful)
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), held)
    assert decision.mode is Mode.NORMAL
    assert decision.node_modes["feeder"][0] is Mode.HOLD
    assert decision.targets["cp-0/1"].limit_a <= 10.0
    assert decision.targets["cp-2/1"].limit_a == 32.0

    snap, held = feeder_snapshot(doubtful, at=106.0)
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), held)
    assert decision.node_modes["feeder"][0] is Mode.FAILSAFE
    assert decision.targets["cp-0/1"].limit_a == 6.0
    assert decision.targets["cp-0/1"].reason.startswith("fail-safe: feeder meter fm doubtful")
    assert decision.targets["cp-2/1"].limit_a == 32.0
    # The fail-safe current of the feeder's cars is reserved on the site: 40 − 30 + 12.
    assert decision.base_load_a == (22.0, 22.0, 22.0)


def test_fail_safe_feeder_sessions_keep_their_target_when_the_policy_fails() -> None:
    """A policy answer that breaks an invariant sends the site to fail-safe; the sessions
    below the fail-safe feeder (taken out of the problem) still get their 6 A target."""
    doubtful = replace(GOOD_FEEDER, problem="frozen", problem_since=80.0)
    snap, held = feeder_snapshot(doubtful)

    def broken(problem: Any) -> Allocation:
        entries = {
            s.connector_id: ConnectorAllocation(s.connector_id, 500.0, "broken")
            for s in problem.sessions
        }
        return Allocation(entries)

    decision = decide(snap, CONFIG, broken, held)
    assert decision.mode is Mode.FAILSAFE
    assert {k: t.limit_a for k, t in decision.targets.items()} == {
        "cp-0/1": 6.0,
        "cp-1/1": 6.0,
        "cp-2/1": 6.0,
    }


def test_a_charger_main_meter_becomes_a_reading_in_site_phases() -> None:
    """Connector 0 of the named charger is its main meter; its phases follow its wiring."""
    meter = OcppNodeMeter(source="ocpp", id="cm", charger="cp-1", node="feeder")
    m = ChargerMeasurement("cp-1", 0, 5.0, current_a=(1.0, 2.0, 3.0), power_w=1380.0)
    got = as_meter_reading(m, meter, (1, 2, 0), WALL0)
    assert got is not None
    assert (got.current_a, got.power_w, got.source_at) == ((3.0, 1.0, 2.0), 1380.0, WALL0)
    assert as_meter_reading(replace(m, connector_id=1), meter, (0, 1, 2)) is None
    empty = as_meter_reading(replace(m, current_a=(None, None, None), power_w=None), meter, (0,))
    assert empty is not None
    assert empty.quality is Quality.INVALID


# --- property: invariant 4 on every node ---------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    site_doubt=st.one_of(st.none(), st.floats(0, 30)),
    feeder_doubt=st.one_of(st.none(), st.floats(0, 30)),
    held=st.lists(st.sampled_from([0.0, 6.0, 10.0, 16.0, 32.0]), min_size=3, max_size=3),
    feeder_a=st.floats(0, 60),
    site_a=st.floats(0, 120),
)
def test_every_doubtful_node_is_conservative_and_the_limits_hold(
    site_doubt: float | None,
    feeder_doubt: float | None,
    held: list[float],
    feeder_a: float,
    site_a: float,
) -> None:
    """For any doubt on the site or the feeder meter (None: good; else seconds doubtful):
    a session below a doubtful node never gets more than it holds, below a node doubtful
    past failsafe_after_s it gets exactly the fail-safe current, sessions under no
    doubt are solved normally, and every limit holds with the reservations."""
    at = 100.0
    feeder = replace(
        GOOD_FEEDER,
        current_a=(feeder_a, feeder_a, feeder_a),
        problem="" if feeder_doubt is None else "stale",
        problem_since=None if feeder_doubt is None else at - feeder_doubt,
    )
    snap, _ = feeder_snapshot(feeder, at=at)
    snap = replace(
        snap,
        meter=replace(
            snap.meter,
            current_a=(site_a, site_a, site_a),
            problem="" if site_doubt is None else "stale",
            problem_since=None if site_doubt is None else at - site_doubt,
        ),
    )
    held_a = {f"cp-{i}/1": held[i] for i in range(3)}
    decision = decide(snap, CONFIG, get_policy("weighted_fair"), held_a)
    after_s = CONFIG.control.failsafe_after_s

    def mode(doubt: float | None) -> Mode:
        if doubt is None:
            return Mode.NORMAL
        return Mode.FAILSAFE if doubt >= after_s else Mode.HOLD

    for i in range(3):
        key = f"cp-{i}/1"
        modes = [mode(site_doubt)] + ([mode(feeder_doubt)] if i < 2 else [])
        limit_a = decision.targets[key].limit_a
        if Mode.FAILSAFE in modes:
            assert limit_a == 6.0, (key, modes)
        elif Mode.HOLD in modes:
            assert limit_a <= max(held[i], 0.0), (key, modes)
    assert violations(decision.problem, decision.allocation) == []
