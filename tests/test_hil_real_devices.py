"""Scenarios that name real devices: the rig finds them over the network, simulates nothing
for them, and refuses what it cannot do to them.

The "real" devices are the simulators run as a separate process
(``python -m hil.field_site``), so the rig reaches them only as it would a site's.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from controller.errors import ConfigError
from hil.real_devices import RealDeviceMissing
from hil.runner import run_scenario
from hil.scenario import load_scenario, parse_scenario

HOST = "127.0.0.1"
EXAMPLE = Path(__file__).parent.parent / "examples" / "hil_real_devices.yaml"
BASE_A = 20.0  # the field site's building load per phase
LIMIT_A = 60.0
MARGIN_A = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def real_scenario(ocpp_port: int, meter_port: int, **devices: Any) -> dict[str, Any]:
    """Two real chargers behind a real meter, on a 60 A site."""
    return {
        "name": "real-bench",
        "duration_s": 14,
        "policy": "equal_share",
        "site": {
            "id": "bench",
            "max_current_a": LIMIT_A,
            "safety_margin_a": MARGIN_A,
            "failsafe_current_a": 6,
        },
        "devices": {
            "chargers": [
                {"id": "cp-a", "max_current_a": 32, "real": True},
                {"id": "cp-b", "max_current_a": 32, "real": True},
            ],
            "meter": {"modbus": {"host": HOST, "port": meter_port, "poll_interval_s": 0.5}},
            "ocpp": {"port": ocpp_port},
            "connect_timeout_s": 20,
            **devices,
        },
        "assertions": ["seconds_over_limit_unexplained <= 0"],
    }


@pytest.fixture
async def field_site() -> AsyncIterator[tuple[int, int]]:
    """The simulated meter and chargers cp-a, cp-b in a process of their own:
    (the OCPP port they connect to, the meter's port)."""
    ocpp_port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "hil.field_site", "--ocpp-url", f"ws://{HOST}:{ocpp_port}/ocpp"),
        *("--charger", "cp-a", "--charger", "cp-b", "--base-a", str(BASE_A), "--arrive-s", "1"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert line.startswith("ready meter_port="), line
    try:
        yield ocpp_port, int(line.strip().split("=")[1])
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode in (0, -15), "the field site crashed"


@pytest.mark.slow
async def test_a_run_against_real_devices_reads_them_over_the_network(
    field_site: tuple[int, int],
) -> None:
    """The rig starts no simulator for real chargers, waits for them to connect, and judges
    the run by the real meter and the chargers' own reports: the limit holds, each car gets
    its share, and the site current the report shows is the meter's."""
    ocpp_port, meter_port = field_site
    scenario = parse_scenario(real_scenario(ocpp_port, meter_port))
    result = await run_scenario(scenario, out=lambda _line: None)
    assert result.passed, [(v.text, v.actual) for v in result.assertions]
    series = result.series
    connectors = series["connectors"]
    assert set(connectors) == {"cp-a/1", "cp-b/1"}
    share_a = (LIMIT_A - MARGIN_A - BASE_A) / 2  # 19 A each under equal_share
    for key in connectors:
        assert connectors[key]["draw_a"][-1] == pytest.approx(share_a, abs=1.5), key
        assert connectors[key]["setpoint_a"][-1] == pytest.approx(share_a, abs=1.0), key
    last_site = series["site_a"][-1]
    assert last_site == pytest.approx([BASE_A + 2 * share_a] * 3, abs=2.0)
    assert series["base_a"][-1] == pytest.approx([BASE_A] * 3, abs=2.0)
    assert max(max(a) for a in series["site_a"]) <= LIMIT_A
    assert result.kpis["commands_per_charger_per_hour"] > 0
    assert result.kpis["sessions"] == 0  # no simulated EV: the cars are the field site's


@pytest.mark.slow
async def test_a_real_charger_beside_simulated_ones_is_metered_by_what_it_reports(
    field_site: tuple[int, int],
) -> None:
    """With the simulated meter, a real charger's reported draw is part of the site the
    meter measures and the report shows, beside a simulated charger and its car."""
    ocpp_port, _ = field_site
    data = real_scenario(ocpp_port, 1)
    devices = data["devices"]
    del devices["meter"]
    devices["chargers"] = [
        {"id": "cp-a", "max_current_a": 32, "real": True},
        {"id": "sim", "max_current_a": 32},
    ]
    devices["evs"] = {"car": {"max_current_a": 32, "delay_s": 1}}
    devices["base_load"] = {"constant_a": [BASE_A, BASE_A, BASE_A]}
    data["timeline"] = [{"at_s": 1, "event": "arrive", "charger": "sim", "ev": "car"}]
    result = await run_scenario(parse_scenario(data), out=lambda _line: None)
    assert result.passed, [(v.text, v.actual) for v in result.assertions]
    connectors = result.series["connectors"]
    real_draw = connectors["cp-a/1"]["draw_a"][-1]
    sim_draw = connectors["sim/1"]["draw_a"][-1]
    assert real_draw > 6
    assert sim_draw > 6
    assert result.series["site_a"][-1] == pytest.approx([BASE_A + real_draw + sim_draw] * 3, abs=1)
    assert max(max(a) for a in result.series["site_a"]) <= LIMIT_A
    assert result.kpis["sessions"] == 1  # the simulated car; the real one is the field site's


async def test_a_real_charger_that_never_connects_is_named_with_where_it_should() -> None:
    """A real charger that does not show up ends the run with a message naming it, the
    endpoint and the time waited."""
    ocpp_port = free_port()
    data = real_scenario(ocpp_port, free_port(), connect_timeout_s=1)
    del data["devices"]["meter"]  # the simulated meter: only the chargers are missing
    scenario = parse_scenario(data)
    with pytest.raises(RealDeviceMissing) as caught:
        await run_scenario(scenario, out=lambda _line: None)
    assert str(caught.value) == (
        f"devices.chargers: real charger(s) cp-a, cp-b did not connect to "
        f"ws://127.0.0.1:{ocpp_port}/ocpp/<charger id> within 1 s"
    )


async def test_a_real_meter_that_does_not_answer_is_named_with_its_address() -> None:
    """A real meter that gives no reading ends the run with its address in the message."""
    meter_port = free_port()
    data = real_scenario(free_port(), meter_port, connect_timeout_s=1)
    scenario = parse_scenario(data)
    with pytest.raises(RealDeviceMissing, match=r"devices\.meter: the real meter at Modbus TCP "):
        await run_scenario(scenario, out=lambda _line: None)


Edit = Callable[[dict[str, Any]], None]


def _timeline(*events: dict[str, Any]) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["devices"]["evs"] = {"car": {}}
        data["timeline"] = list(events)

    return edit


def _devices(**changes: Any) -> Edit:
    return lambda data: data["devices"].update(changes)


def _simulated_charger(data: dict[str, Any]) -> None:
    data["devices"]["chargers"].append({"id": "sim", "max_current_a": 16})


def _both_meters(data: dict[str, Any]) -> None:
    data["devices"]["meter"]["mqtt"] = {
        "host": HOST,
        "topic": "m",
        "quantities": {"power_total": {"unit": "W"}},
    }


def _unknown_map(data: dict[str, Any]) -> None:
    data["devices"]["meter"]["modbus"]["map"] = "nosuchmeter"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _timeline({"at_s": 1, "event": "arrive", "charger": "cp-a", "ev": "car"}),
            "timeline[0]: arrive acts on a simulated charger; cp-a is a real charger (real: true)",
        ),
        (
            _timeline({"at_s": 1, "event": "charger_offline", "charger": "cp-b"}),
            "timeline[0]: charger_offline acts on a simulated charger; cp-b is a real charger",
        ),
        (
            _timeline({"at_s": 1, "event": "meter_fault", "mode": "silent"}),
            "timeline[0]: meter_fault acts on the simulated meter and site; devices.meter is real",
        ),
        (
            lambda data: data.update(time_scale=10),
            "time_scale: real devices (meter, cp-a, cp-b) run in real time: use 1.0",
        ),
        (_simulated_charger, "devices.meter: a real meter sees no simulated charger's draw (sim)"),
        (
            _devices(base_load={"constant_a": [1, 1, 1]}),
            "devices.base_load: the real meter measures the building: remove it",
        ),
        (
            _devices(ocpp={"port": 0}),
            "devices.ocpp.port: real chargers need a fixed port to connect to",
        ),
        (_both_meters, "devices.meter: set exactly one of modbus"),
        (_unknown_map, "devices.meter.modbus: meter.map 'nosuchmeter' is not a"),
    ],
)
def test_what_the_rig_cannot_do_to_a_real_device_is_refused(edit: Edit, expected: str) -> None:
    """Each refusal names the key and the reason; the scenario is rejected at load."""
    data = real_scenario(9000, 5020)
    edit(data)
    with pytest.raises(ConfigError) as caught:
        parse_scenario(data)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_the_example_bench_scenario_loads_with_its_real_devices() -> None:
    """examples/hil_real_devices.yaml is valid: a real meter and two real chargers."""
    scenario = load_scenario(EXAMPLE)
    assert scenario.real_devices() == ["meter", "wallbox-1", "wallbox-2"]
    config = scenario.controller_config(meter_port=1)
    assert config.meter is not None
    assert config.meter.port == 5020
    assert config.ocpp.port == 9000
