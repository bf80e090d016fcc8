"""The Modbus TCP meter reader against the simulated SDM630 over loopback, and its pure parts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient

from controller.clock import ManualClock, SystemClock
from controller.meters import (
    DecodeError,
    ModbusMeter,
    RegisterMap,
    UnknownMapError,
    decode,
    load_builtin_map,
    read_plan,
)
from controller.meters.modbus import RECONNECT_MAX_S, RECONNECT_MIN_S, reconnect_delay_s
from controller.model import Event, MeterFailed, MeterReading, Quality
from hil.meter import MeterValues, SimulatedMeter

HOST = "127.0.0.1"


@dataclass
class Site:
    """What the simulated meter measures; tests change it between polls."""

    values: MeterValues


@pytest.fixture
def site() -> Site:
    return Site(MeterValues(current_a=(10.5, 20.25, 7.0), power_w=9876.5))


@pytest.fixture
async def sim(site: Site) -> AsyncIterator[SimulatedMeter]:
    meter = SimulatedMeter(lambda: site.values)
    await meter.start()
    yield meter
    await meter.stop()


@pytest.fixture
def events() -> list[Event]:
    return []


def make_reader(port: int, events: list[Event], **kwargs: Any) -> ModbusMeter:
    options: dict[str, Any] = {"clock": SystemClock(), "timeout_s": 0.3} | kwargs
    sdm630 = load_builtin_map("sdm630")
    return ModbusMeter("site-meter", HOST, port, 1, sdm630, events.append, **options)


@pytest.fixture
async def reader(sim: SimulatedMeter, events: list[Event]) -> AsyncIterator[ModbusMeter]:
    meter = make_reader(sim.port, events)
    yield meter
    await meter.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def poll_until_good(meter: ModbusMeter, within_s: float = 4.0) -> MeterReading:
    """Poll every 50 ms until a GOOD reading comes; fail the test after ``within_s``."""
    async with asyncio.timeout(within_s):
        while True:
            event = await meter.poll_once()
            if isinstance(event, MeterReading) and event.quality is Quality.GOOD:
                return event
            await asyncio.sleep(0.05)


def good(event: MeterReading | MeterFailed) -> MeterReading:
    assert isinstance(event, MeterReading), event
    assert event.quality is Quality.GOOD, event.detail
    return event


# --- reading over TCP -------------------------------------------------------


async def test_reads_phase_currents_and_total_power(
    reader: ModbusMeter, events: list[Event]
) -> None:
    """A poll returns the meter's per-phase currents and total power, and emits the same event."""
    reading = good(await reader.poll_once())
    assert reading.current_a == (10.5, 20.25, 7.0)
    assert reading.power_w == 9876.5
    assert reading.meter_id == "site-meter"
    assert events == [reading]


async def test_export_is_negative_power_and_phases_stay_apart(
    reader: ModbusMeter, site: Site
) -> None:
    """Export reads as negative power; unbalanced phases keep their own values, L1..L3 in order."""
    site.values = MeterValues(current_a=(0.0, 31.5, 2.25), power_w=-4200.0)
    reading = good(await reader.poll_once())
    assert reading.current_a == (0.0, 31.5, 2.25)
    assert reading.power_w == -4200.0


async def test_new_values_are_seen_at_the_next_poll(reader: ModbusMeter, site: Site) -> None:
    """Every poll reads the meter's values of that moment, not a cached copy."""
    first = good(await reader.poll_once())
    site.values = MeterValues(current_a=(1.5, 2.5, 3.5), power_w=1234.0)
    second = good(await reader.poll_once())
    assert first.power_w == 9876.5
    assert second.current_a == (1.5, 2.5, 3.5)
    assert second.power_w == 1234.0


async def test_reading_time_comes_from_the_injected_clock(
    sim: SimulatedMeter, events: list[Event]
) -> None:
    """``at`` is the controller clock's monotonic time when the answer arrived."""
    clock = ManualClock(start=500.0)
    meter = make_reader(sim.port, events, clock=clock)
    try:
        assert good(await meter.poll_once()).at == 500.0
    finally:
        await meter.close()


@pytest.mark.parametrize(
    ("current_a", "power_w", "named"),
    [
        pytest.param((10.0, math.nan, 5.0), 1000.0, "current_l2 is nan", id="nan-current"),
        pytest.param((10.0, 10.0, 10.0), math.inf, "power_total is inf", id="inf-power"),
        pytest.param((20_000.0, 1.0, 1.0), 1000.0, "current_l1 = 20000 A", id="current-too-high"),
        pytest.param((1.0, 1.0, 1.0), -5e7, "power_total = -5e+07 W", id="export-too-high"),
    ],
)
async def test_implausible_values_are_invalid_and_named(
    reader: ModbusMeter,
    site: Site,
    current_a: tuple[float, float, float],
    power_w: float,
    named: str,
) -> None:
    """NaN, infinity or values beyond physical bounds give an INVALID reading naming them."""
    site.values = MeterValues(current_a=current_a, power_w=power_w)
    reading = await reader.poll_once()
    assert isinstance(reading, MeterReading)
    assert reading.quality is Quality.INVALID
    assert named in reading.detail


async def test_invalid_reading_never_turns_nan_into_zero(reader: ModbusMeter, site: Site) -> None:
    """The value the meter sent as NaN stays NaN in the reading: it is never replaced by 0."""
    site.values = MeterValues(current_a=(math.nan, 4.0, 4.0), power_w=math.nan)
    reading = await reader.poll_once()
    assert isinstance(reading, MeterReading)
    assert math.isnan(reading.current_a[0] or 0.0)  # `or 0.0` fails the test on None
    assert math.isnan(reading.power_w or 0.0)


# --- failures and recovery --------------------------------------------------


async def test_stopped_meter_fails_then_recovers_on_the_same_port(
    reader: ModbusMeter, sim: SimulatedMeter, site: Site, events: list[Event]
) -> None:
    """A stopped server gives MeterFailed (no exception); a server back on its port is read."""
    good(await reader.poll_once())
    port = sim.port
    await sim.stop()
    failures = [await reader.poll_once() for _ in range(2)]
    assert all(isinstance(f, MeterFailed) for f in failures)
    assert f"{HOST}:{port}" in failures[0].detail
    revived = SimulatedMeter(lambda: site.values, port=port)
    await revived.start()
    try:
        site.values = MeterValues(current_a=(3.0, 3.0, 3.0), power_w=2070.0)
        assert (await poll_until_good(reader)).power_w == 2070.0
    finally:
        await revived.stop()
    assert events[1:3] == failures


async def test_closed_port_fails_with_connect_detail(events: list[Event]) -> None:
    """With nothing listening, a poll returns MeterFailed saying it could not connect."""
    port = free_port()
    meter = make_reader(port, events)
    try:
        failed = await meter.poll_once()
        again = await meter.poll_once()
    finally:
        await meter.close()
    assert isinstance(failed, MeterFailed)
    assert failed.detail == f"cannot connect to {HOST}:{port}: refused or unreachable"
    assert isinstance(again, MeterFailed)
    assert "next attempt in" in again.detail  # the reconnect backs off


async def test_exception_response_fails_and_clears(
    reader: ModbusMeter, sim: SimulatedMeter
) -> None:
    """A Modbus exception answer gives MeterFailed naming the code; the next good answer is read."""
    sim.fault = "exception"
    failed = await reader.poll_once()
    assert isinstance(failed, MeterFailed)
    assert "exception response 4 (DEVICE_FAILURE)" in failed.detail
    assert "input registers 6..53 of unit 1" in failed.detail
    sim.fault = None
    good(await reader.poll_once())


@pytest.mark.parametrize(
    ("fault", "delay_s"), [("silent", 0.0), (None, 0.6)], ids=["silent", "slow"]
)
async def test_no_answer_in_time_fails_then_recovers(
    reader: ModbusMeter, sim: SimulatedMeter, fault: str | None, delay_s: float
) -> None:
    """A meter silent past the timeout gives MeterFailed, and is read once it answers."""
    sim.fault = "silent" if fault else None
    sim.delay_s = delay_s
    failed = await reader.poll_once()
    assert isinstance(failed, MeterFailed)
    assert "no valid answer within 0.3 s" in failed.detail
    sim.fault, sim.delay_s = None, 0.0
    await asyncio.sleep(delay_s)  # let the late answer go before the server is reused
    await poll_until_good(reader)


async def test_run_polls_at_a_fixed_rate(sim: SimulatedMeter, events: list[Event]) -> None:
    """``run`` polls every interval until cancelled and closes its connection on the way out."""
    meter = make_reader(sim.port, events, poll_interval_s=0.1)
    task = asyncio.create_task(meter.run())
    await asyncio.sleep(0.45)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    readings = [e for e in events if isinstance(e, MeterReading) and e.quality is Quality.GOOD]
    assert len(readings) == len(events)
    assert 4 <= len(readings) <= 6
    gaps = [b.at - a.at for a, b in itertools.pairwise(readings)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.1, abs=0.03)


async def test_run_ends_when_a_read_swallowed_the_cancellation(events: list[Event]) -> None:
    """A cancellation that lands with a Modbus answer still ends ``run``.

    pymodbus waits with ``asyncio.wait_for``, which on Python 3.11 drops a
    cancellation that races the answer; the poll here does the same, on purpose.
    """
    meter = make_reader(free_port(), events, poll_interval_s=0.05)
    reading = asyncio.Event()

    async def poll_that_swallows() -> MeterFailed:
        if not reading.is_set():
            reading.set()
            # the answer comes in the same instant as the cancellation: wait_for returns it
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
        return MeterFailed("site-meter", 0.0, "answer")

    meter.poll_once = poll_that_swallows  # type: ignore[method-assign]
    task = asyncio.create_task(meter.run())
    await reading.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    task.cancel()  # without the fix the loop polls on; a second request is not swallowed
    assert task in done


async def test_run_survives_an_unreachable_meter(events: list[Event]) -> None:
    """Against a dead address ``run`` keeps emitting MeterFailed and never raises."""
    meter = make_reader(free_port(), events, poll_interval_s=0.05)
    task = asyncio.create_task(meter.run())
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(events) >= 4
    assert all(isinstance(e, MeterFailed) for e in events)


def test_reconnect_backoff_grows_with_jitter_and_is_capped() -> None:
    """The reconnect delay doubles per failure, is jittered to 50–100 %, and stays under the cap."""
    assert reconnect_delay_s(1, 0.0) == RECONNECT_MIN_S * 0.5
    assert reconnect_delay_s(2, 0.999) == pytest.approx(2 * RECONNECT_MIN_S, rel=1e-3)
    assert all(reconnect_delay_s(n, 0.999) <= RECONNECT_MAX_S for n in range(1, 100))
    assert reconnect_delay_s(50, 0.999) > RECONNECT_MAX_S * 0.99


# --- the simulator's bytes, checked by hand ----------------------------------


async def test_simulated_meter_sends_float32_high_word_first(
    sim: SimulatedMeter, site: Site
) -> None:
    """The simulator's raw registers match float32 big-endian words computed by hand.

    230.5 = 1.80078125 × 2^7: sign 0, exponent 127 + 7 = 0x86, fraction
    0.80078125 × 2^23 = 0x668000, so 0x43668000 → registers 0x4366, 0x8000.
    −4200 = −1.025390625 × 2^12: sign 1, exponent 0x8B, fraction 0x034000,
    so 0xC5834000 → 0xC583, 0x4000. 1.0 is 0x3F800000.
    """
    site.values = MeterValues(current_a=(230.5, 1.0, 0.0), power_w=-4200.0)
    client = AsyncModbusTcpClient(HOST, port=sim.port, timeout=1, retries=0)
    try:
        assert await client.connect()
        phases = await client.read_input_registers(0x0006, count=6, device_id=1)
        power = await client.read_input_registers(0x0034, count=2, device_id=1)
    finally:
        client.close()
    assert phases.registers == [0x4366, 0x8000, 0x3F80, 0x0000, 0x0000, 0x0000]
    assert power.registers == [0xC583, 0x4000]


# --- pure parts: read plan, decode, maps -------------------------------------


def plain_map(**quantities: dict[str, Any]) -> RegisterMap:
    """A register map from plain data, with map-level keys overridable via ``_map``."""
    top = quantities.pop("_map", {})
    return RegisterMap.model_validate(
        {"name": "test", "function": "holding", **top, "quantities": quantities}
    )


def test_sdm630_is_read_in_one_request() -> None:
    """The SDM630 map needs one read, 0x0006..0x0035 (48 registers)."""
    assert read_plan(load_builtin_map("sdm630")) == [(0x0006, 48)]


def test_read_plan_splits_on_gaps_and_block_size() -> None:
    """Reads merge across small gaps but split past ``max_gap_registers`` or 125 registers."""
    spread = {
        "current_l1": {"address": 6, "unit": "A"},
        "current_l2": {"address": 8, "unit": "A"},
        "current_l3": {"address": 10, "unit": "A"},
        "power_total": {"address": 52, "unit": "W"},
    }
    assert read_plan(plain_map(_map={"max_gap_registers": 0}, **spread)) == [(6, 6), (52, 2)]
    assert read_plan(plain_map(_map={"max_gap_registers": 40}, **spread)) == [(6, 48)]
    far = {"current_l1": {"address": 0, "unit": "A"}, "power_total": {"address": 123, "unit": "W"}}
    assert read_plan(plain_map(_map={"max_gap_registers": 500}, **far)) == [(0, 125)]
    far["power_total"]["address"] = 124
    assert read_plan(plain_map(_map={"max_gap_registers": 500}, **far)) == [(0, 2), (124, 2)]


def test_read_plan_uses_zero_based_addresses_and_scale_factors() -> None:
    """1-based tables shift to 0-based reads; a SunSpec scale factor is read with its value."""
    one_based = plain_map(_map={"address_base": 1}, power_total={"address": 3060, "unit": "kW"})
    assert read_plan(one_based) == [(3059, 2)]
    sunspec = plain_map(
        current_l1={"address": 40072, "type": "int16", "unit": "A", "scale_factor_address": 40075}
    )
    assert read_plan(sunspec) == [(40072, 4)]


def test_decode_sdm630_registers() -> None:
    """Hand-made SDM630 words decode to A per phase and W, export negative."""
    block = [0] * 48
    block[0:2] = [0x4366, 0x8000]  # 230.5 A at 0x0006
    block[2:4] = [0x3F80, 0x0000]  # 1.0 A at 0x0008
    block[4:6] = [0x4000, 0x0000]  # 2.0 A at 0x000A
    block[46:48] = [0xC583, 0x4000]  # −4200 W at 0x0034
    values = decode(load_builtin_map("sdm630"), {6: block})
    assert values.current_a == (230.5, 1.0, 2.0)
    assert values.power_w == -4200.0


def test_decode_int32_low_word_first_with_units() -> None:
    """EM24-style INT32 low word first: mA become A and W × 10 become W; absent phases are None."""
    em24 = plain_map(
        current_l1={"address": 0x0C, "type": "int32", "word_order": "little", "unit": "mA"},
        power_total={
            "address": 0x28,
            "type": "int32",
            "word_order": "little",
            "scale": 0.1,
            "unit": "W",
        },
    )
    block = [0] * 30
    block[0:2] = [0x3E80, 0x0000]  # 16000 mA
    block[28:30] = [0x1DC6, 0xFFFE]  # −123450 (W × 10)
    values = decode(em24, {0x0C: block})
    assert values.current_a == (16.0, None, None)
    assert values.power_w == pytest.approx(-12345.0)


def test_decode_kw_and_sunspec_scale_factor() -> None:
    """kW become W, and an int16 is multiplied by 10 to the power of its scale factor."""
    schneider = plain_map(power_total={"address": 3059, "unit": "kW"})
    assert decode(schneider, {3059: [0x3FC0, 0x0000]}).power_w == 1500.0
    sunspec = plain_map(
        current_l1={
            "address": 40072,
            "type": "int16",
            "unit": "A",
            "scale_factor_address": 40075,
            "missing_value": -32768,
        }
    )
    assert decode(sunspec, {40072: [1234, 0, 0, 0xFFFE]}).current_a[0] == pytest.approx(12.34)
    missing = decode(sunspec, {40072: [0x8000, 0, 0, 0xFFFE]}).current_a[0]
    assert math.isnan(missing or 0.0)


def test_decode_keeps_nan_and_inf() -> None:
    """A float32 NaN or infinity from the meter is decoded as such, for the caller to reject."""
    sdm = plain_map(current_l1={"address": 0, "unit": "A"}, power_total={"address": 2, "unit": "W"})
    values = decode(sdm, {0: [0x7FC0, 0x0000, 0xFF80, 0x0000]})
    assert math.isnan(values.current_a[0] or 0.0)
    assert values.power_w == -math.inf


def test_decode_names_a_quantity_that_was_not_read() -> None:
    """Registers missing from the blocks raise DecodeError naming the quantity."""
    with pytest.raises(DecodeError, match=r"power_total: registers 52\.\.53"):
        decode(load_builtin_map("sdm630"), {6: [0] * 12})


def test_unknown_map_name_lists_known_maps() -> None:
    """Asking for a map that is not shipped names it and lists the ones that are."""
    with pytest.raises(UnknownMapError, match=r"'sdm999'.*known maps: .*sdm630"):
        load_builtin_map("sdm999")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"address": 6, "unit": "W"}, "not a unit of current", id="unit-kind"),
        pytest.param({"address": 6, "unit": "A", "scale": 0}, "scale", id="zero-scale"),
        pytest.param({"address": 6, "unit": "A", "wordorder": "big"}, "wordorder", id="typo"),
        pytest.param({"address": 6, "unit": "A", "type": "float64"}, "type", id="bad-type"),
    ],
)
def test_register_map_rejects_bad_data(spec: dict[str, Any], message: str) -> None:
    """A register map with a wrong unit, zero scale, unknown key or type fails validation."""
    with pytest.raises(ValidationError, match=message):
        plain_map(current_l1=spec)
