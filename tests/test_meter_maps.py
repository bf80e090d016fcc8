"""Every built-in register map, and a custom one, read over real Modbus TCP from the simulator."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from controller.clock import SystemClock
from controller.meters import (
    ModbusMeter,
    RegisterMap,
    SunSpecError,
    SunSpecScan,
    builtin_map_names,
    decode,
    load_builtin_map,
    load_map_file,
    locate,
    locate_sunspec_map,
    read_plan,
    relocate,
)
from controller.model import Event, MeterFailed, MeterReading, Quality
from hil.meter import MeterValues, SimulatedMeter

HOST = "127.0.0.1"
BUILTIN = [
    "em24",
    "em340",
    "janitza_umg96rm",
    "schneider_iem3000",
    "sdm630",
    "sunspec_203",
    "sunspec_213",
]
IMPORTING = MeterValues(current_a=(10.5, 20.25, 7.125), power_w=9876.0)
EXPORTING = MeterValues(current_a=(0.0, 31.5, 2.25), power_w=-4200.0)


@dataclass
class Site:
    """What the simulated meter measures; tests change it between polls."""

    values: MeterValues


@dataclass
class Rig:
    """A simulated meter serving a map and a reader polling it with the same map."""

    site: Site
    sim: SimulatedMeter
    reader: ModbusMeter
    events: list[Event]


async def start_rig(
    served: RegisterMap, read_with: RegisterMap | None = None, values: MeterValues = IMPORTING
) -> Rig:
    """Serve ``served`` and read it with ``read_with`` (the same map unless given)."""
    site = Site(values)
    sim = SimulatedMeter(lambda: site.values, register_map=served)
    await sim.start()
    events: list[Event] = []
    reader = ModbusMeter(
        "site-meter",
        HOST,
        sim.port,
        1,
        read_with or served,
        events.append,
        SystemClock(),
        timeout_s=0.5,
    )
    return Rig(site, sim, reader, events)


@pytest.fixture(params=BUILTIN)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    r = await start_rig(load_builtin_map(request.param))
    yield r
    await r.reader.close()
    await r.sim.stop()


def good(event: MeterReading | MeterFailed) -> MeterReading:
    """The event as a GOOD reading; fails the test otherwise."""
    assert isinstance(event, MeterReading), event
    assert event.quality is Quality.GOOD, event.detail
    return event


def approx(values: MeterValues) -> tuple[Any, Any]:
    """The expected currents and power within each map's resolution.

    The coarsest here is SunSpec 203's int16 power at scale factor 0 (1 W);
    float32 kW carries ~1e-7 relative error.
    """
    return pytest.approx(values.current_a, abs=1e-6), pytest.approx(values.power_w, abs=0.5)


# --- every built-in map -------------------------------------------------------


def test_the_shipped_maps_are_all_tested() -> None:
    """The maps in the package are exactly the ones this module reads over TCP."""
    assert builtin_map_names() == BUILTIN


async def test_import_reads_phase_currents_and_power(rig: Rig) -> None:
    """Per-phase currents in A and total power in W, import positive, whatever the encoding."""
    reading = good(await rig.reader.poll_once())
    currents, power = approx(IMPORTING)
    assert reading.current_a == currents
    assert reading.power_w == power
    assert rig.events == [reading]


async def test_export_reads_as_negative_power(rig: Rig) -> None:
    """Export reads as negative power; unbalanced phases keep their own values in order."""
    rig.site.values = EXPORTING
    reading = good(await rig.reader.poll_once())
    currents, power = approx(EXPORTING)
    assert reading.current_a == currents
    assert reading.power_w == power


async def test_not_available_values_are_invalid_never_zero(rig: Rig) -> None:
    """NaN, or an integer meter's "not available" value, makes the reading INVALID; none is 0."""
    rig.sim.fault = "nan"
    reading = await rig.reader.poll_once()
    assert isinstance(reading, MeterReading)
    assert reading.quality is Quality.INVALID
    assert "current_l1" in reading.detail
    assert 0.0 not in (*reading.current_a, reading.power_w)


async def test_frozen_meter_repeats_itself_then_moves_on(rig: Rig) -> None:
    """A frozen meter keeps answering the values of the moment it froze; then it follows again."""
    rig.sim.fault = "frozen"
    first = good(await rig.reader.poll_once())
    rig.site.values = EXPORTING
    again = good(await rig.reader.poll_once())
    assert again.source_at is not None  # the poll's receive time
    assert again == MeterReading(
        first.meter_id,
        rig.events[-1].at,
        first.current_a,
        first.power_w,
        source_at=again.source_at,
    )
    rig.sim.fault = None
    assert good(await rig.reader.poll_once()).power_w == approx(EXPORTING)[1]


@pytest.mark.parametrize(
    ("name", "quantity", "wire_address"),
    [
        ("sdm630", "current_l1", 0x0006),
        ("sdm630", "power_total", 0x0034),
        ("em24", "current_l1", 0x000C),
        ("em24", "current_l3", 0x0010),
        ("em24", "power_total", 0x0028),
        ("em340", "power_total", 0x0028),
        ("janitza_umg96rm", "current_l2", 19014),
        ("janitza_umg96rm", "power_total", 19026),
        ("schneider_iem3000", "current_l1", 2999),  # documented as register 3000
        ("schneider_iem3000", "power_total", 3059),  # documented as register 3060
        ("sunspec_203", "current_l1", 40070 + 3),
        ("sunspec_203", "power_total", 40070 + 18),
        ("sunspec_213", "current_l3", 40070 + 8),
        ("sunspec_213", "power_total", 40070 + 28),
    ],
)
def test_maps_ask_for_the_vendor_addresses(name: str, quantity: str, wire_address: int) -> None:
    """Each map puts each quantity at the 0-based address its vendor's table gives."""
    register_map = load_builtin_map(name)
    spec = register_map.quantities[quantity]  # type: ignore[index]
    assert register_map.wire_address(spec.address) == wire_address


def test_sunspec_scale_factors_sit_beside_their_values() -> None:
    """SunSpec 203 takes A_SF at model +6 and W_SF at +22, each read with its values at once."""
    sunspec = load_builtin_map("sunspec_203")
    assert sunspec.quantities["current_l2"].scale_factor_address == 40070 + 6
    assert sunspec.quantities["power_total"].scale_factor_address == 40070 + 22
    assert read_plan(sunspec) == [(40073, 20)]


@pytest.mark.parametrize(
    ("name", "plan"),
    [
        ("em24", [(0x000C, 30)]),
        ("janitza_umg96rm", [(19012, 16)]),
        ("schneider_iem3000", [(2999, 6), (3059, 2)]),
        ("sunspec_213", [(40074, 26)]),
    ],
)
def test_maps_read_in_few_requests(name: str, plan: list[tuple[int, int]]) -> None:
    """Each map is read in one request, except where the meter refuses reads over gaps."""
    assert read_plan(load_builtin_map(name)) == plan


# --- raw registers, checked by hand --------------------------------------------


async def raw_registers(sim: SimulatedMeter, function: str, start: int, count: int) -> list[int]:
    """What the simulator answers for one read, as plain 16-bit words."""
    client = AsyncModbusTcpClient(HOST, port=sim.port, timeout=1, retries=0)
    try:
        assert await client.connect()
        read = client.read_input_registers if function == "input" else client.read_holding_registers
        response = await read(start, count=count, device_id=1)
    finally:
        client.close()
    assert not response.isError(), response
    return list(response.registers)


async def test_em24_sends_int32_low_word_first_in_ma_and_tenths_of_watts() -> None:
    """10.5 A is 10500 mA = 0x00002904 → words 0x2904, 0x0000; −4200 W × 10 = 0xFFFF5BF0."""
    r = await start_rig(load_builtin_map("em24"), values=MeterValues((10.5, 0.0, 0.0), -4200.0))
    try:
        words = await raw_registers(r.sim, "input", 0x000C, 30)
    finally:
        await r.sim.stop()
    assert words[0:2] == [0x2904, 0x0000]
    assert words[28:30] == [0x5BF0, 0xFFFF]


async def test_sunspec_203_sends_marker_models_and_scaled_integers() -> None:
    """'SunS', common model 1 (66), model 203 (105); 10.5 A as 10500 × 10^−3; −4200 W as 0xEF98."""
    r = await start_rig(
        load_builtin_map("sunspec_203"), values=MeterValues((10.5, 0.0, 0.0), -4200.0)
    )
    try:
        header = await raw_registers(r.sim, "holding", 40000, 4)
        model = await raw_registers(r.sim, "holding", 40070, 23)
        end = await raw_registers(r.sim, "holding", 40070 + 2 + 105, 2)
    finally:
        await r.sim.stop()
    assert header == [0x5375, 0x6E53, 1, 66]
    assert model[0:2] == [203, 105]
    assert model[3] == 10500
    assert model[6] == 0xFFFD  # A_SF = −3
    assert model[18] == 0xEF98  # −4200
    assert model[22] == 0  # W_SF = 0
    assert end == [0xFFFF, 0]


async def test_sunspec_scale_factors_follow_the_magnitude() -> None:
    """A 250 kW site with 400 A on L1 is sent with coarser scale factors and still reads right."""
    values = MeterValues((400.0, 200.0, 100.0), 250_000.0)
    r = await start_rig(load_builtin_map("sunspec_203"), values=values)
    try:
        reading = good(await r.reader.poll_once())
    finally:
        await r.reader.close()
        await r.sim.stop()
    assert reading.current_a == pytest.approx((400.0, 200.0, 100.0))
    assert reading.power_w == pytest.approx(250_000.0)


async def test_wrong_register_area_is_refused_by_the_meter() -> None:
    """Reading a holding-register meter's values as input registers fails with ILLEGAL_FUNCTION."""
    janitza = load_builtin_map("janitza_umg96rm")
    as_input = janitza.model_copy(update={"function": "input"})
    r = await start_rig(janitza, read_with=as_input)
    try:
        failed = await r.reader.poll_once()
    finally:
        await r.reader.close()
        await r.sim.stop()
    assert isinstance(failed, MeterFailed)
    assert "exception response 1 (ILLEGAL_FUNCTION)" in failed.detail


# --- a custom map -------------------------------------------------------------

CUSTOM_MAP = """
name: acme_x1
description: a meter of our own, 1-based holding registers
function: holding
address_base: 1
max_gap_registers: 0
quantities:
  current_l1: {address: 101, type: uint32, word_order: little, unit: mA}
  current_l2: {address: 103, type: uint32, word_order: little, unit: mA}
  current_l3: {address: 105, type: uint32, word_order: little, unit: mA}
  # counts export positive, in hundredths of a kW
  power_total: {address: 201, type: int16, scale: 0.01, unit: kW, sign: -1}
"""


async def test_custom_map_from_a_yaml_file(tmp_path: Path) -> None:
    """A user's YAML map (1-based, uint32 mA, int16 kW/100, export positive) reads right."""
    path = tmp_path / "acme_x1.yaml"
    path.write_text(CUSTOM_MAP)
    custom = load_map_file(path)
    assert read_plan(custom) == [(100, 6), (200, 1)]
    r = await start_rig(custom, values=EXPORTING)
    try:
        exporting = good(await r.reader.poll_once())
        r.site.values = IMPORTING
        importing = good(await r.reader.poll_once())
        words = await raw_registers(r.sim, "holding", 200, 1)
    finally:
        await r.reader.close()
        await r.sim.stop()
    assert exporting.current_a == pytest.approx(EXPORTING.current_a)
    assert exporting.power_w == pytest.approx(-4200.0)
    assert importing.power_w == pytest.approx(9880.0)  # 0.01 kW steps: 9876 W → 9.88 kW
    assert words == [(-988) & 0xFFFF]  # import is negative on this meter's wire


# --- SunSpec sentinels and discovery --------------------------------------------


def test_sunspec_not_implemented_values_decode_as_missing() -> None:
    """int16 −32768, a −32768 scale factor and uint16 0xFFFF decode as NaN, never as 0."""
    sunspec = load_builtin_map("sunspec_203")
    block = [0] * 20
    block[0:4] = [0x8000, 1500, 1500, 0xFFFE]  # AphA not implemented; A_SF = −2
    block[15], block[19] = 5000, 0x8000  # W = 5000, W_SF not implemented
    values = decode(sunspec, {40073: block})
    assert math.isnan(values.current_a[0] or 0.0)
    assert values.current_a[1] == pytest.approx(15.0)
    assert math.isnan(values.power_w or 0.0)
    uint = RegisterMap.model_validate(
        {
            "name": "u",
            "function": "holding",
            "quantities": {
                "current_l1": {"address": 0, "type": "uint16", "unit": "A", "missing_value": 65535}
            },
        }
    )
    assert math.isnan(decode(uint, {0: [0xFFFF]}).current_a[0] or 0.0)


async def test_sunspec_discovery_finds_a_moved_model() -> None:
    """With a vendor model before it, model 203 is found from 'SunS' and read where it is."""
    standard = load_builtin_map("sunspec_203")
    moved = relocate(standard, 40122)
    r = await start_rig(moved, read_with=standard)
    try:
        located = await locate_sunspec_map(HOST, r.sim.port, 1, standard)
        reading = good(await r.reader.poll_once())
    finally:
        await r.reader.close()
        await r.sim.stop()
    assert located.sunspec is not None
    assert located.sunspec.model_address == 40122
    assert located.quantities["current_l1"].address == 40125
    currents, power = approx(IMPORTING)
    assert (reading.current_a, reading.power_w) == (currents, power)


async def test_sunspec_map_on_a_non_sunspec_meter_fails_with_reason() -> None:
    """A SunSpec map against a meter without the 'SunS' marker fails, saying so."""
    r = await start_rig(load_builtin_map("sdm630"), read_with=load_builtin_map("sunspec_213"))
    try:
        failed = await r.reader.poll_once()
    finally:
        await r.reader.close()
        await r.sim.stop()
    assert isinstance(failed, MeterFailed)
    assert "model 213 not found; models seen: none" in failed.detail
    assert "no SunSpec marker 'SunS' at holding registers 40000, 50000, 0" in failed.detail


def test_sunspec_scan_walks_the_chain() -> None:
    """The scan tries each base until 'SunS', then follows model lengths to the end marker."""
    device = {
        50000: [0x5375, 0x6E53],
        50002: [1, 66],
        50070: [203, 105],
        50177: [0xFFFF, 0],
    }
    scan = SunSpecScan()
    reads = []
    while (read := scan.next_read()) is not None:
        reads.append(read)
        scan.feed(device.get(read[0]))
    assert reads == [(40000, 2), (50000, 2), (50002, 2), (50070, 2), (50177, 2)]
    assert scan.base == 50000
    assert [(m.model_id, m.address) for m in scan.models] == [(1, 50002), (203, 50070)]
    assert scan.problem == ""
    assert locate(load_builtin_map("sunspec_203"), scan).quantities["power_total"].address == 50088
    with pytest.raises(SunSpecError, match="model 213 not found; models seen: 1, 203"):
        locate(load_builtin_map("sunspec_213"), scan)
