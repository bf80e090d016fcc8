"""The MQTT meter through a real Mosquitto broker, and its pure parts with a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import pytest
from pydantic import ValidationError

from controller.clock import ManualClock, SystemClock
from controller.meters.mqtt import MqttMeter, MqttMeterSettings, parse_message, reconnect_delay_s
from controller.meters.payload import PayloadError, bare_number, field_value, number, timestamp
from controller.model import Event, MeterFailed, MeterReading, Quality
from hil.meter import MeterValues
from hil.mqtt_meter import SimulatedMqttMeter
from tests.conftest import Mosquitto

JSON_QUANTITIES: dict[str, Any] = {
    "current_l1": {"field": "current.0", "unit": "A"},
    "current_l2": {"field": "current.1", "unit": "A"},
    "current_l3": {"field": "current.2", "unit": "A"},
    "power_total": {"field": "data.power.total", "unit": "kW"},
}
PER_TOPIC_QUANTITIES: dict[str, Any] = {
    "current_l1": {"topic": "site/meter/l1", "unit": "mA"},
    "current_l2": {"topic": "site/meter/l2", "unit": "mA"},
    "current_l3": {"topic": "site/meter/l3", "unit": "mA"},
    # This source counts export positive: the settings flip it to import positive.
    "power_total": {"topic": "site/meter/power", "unit": "W", "sign": -1},
}


@dataclass
class Site:
    """What the simulated meter measures; tests change it while it publishes."""

    values: MeterValues


def settings(broker: Mosquitto | None = None, **overrides: Any) -> MqttMeterSettings:
    """Meter settings for one JSON topic ``site/meter``, overridable key by key."""
    base: dict[str, Any] = {
        "id": "grid",
        "host": broker.host if broker else "127.0.0.1",
        "port": broker.port if broker else 1883,
        "topic": "site/meter",
        "max_age_s": 2.0,
        "quantities": JSON_QUANTITIES,
    }
    return MqttMeterSettings.model_validate(base | overrides)


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    """Wait until ``check()`` holds; fail the test naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.02)


def good(events: list[Event]) -> list[MeterReading]:
    """The GOOD readings among ``events``."""
    return [e for e in events if isinstance(e, MeterReading) and e.quality is Quality.GOOD]


def failures(events: list[Event]) -> list[MeterFailed]:
    """The MeterFailed events among ``events``."""
    return [e for e in events if isinstance(e, MeterFailed)]


@contextlib.asynccontextmanager
async def running(*parts: MqttMeter | SimulatedMqttMeter) -> AsyncIterator[None]:
    """Run each meter and simulator as a task for the block; cancel them all after."""
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        done, pending = await asyncio.wait(tasks, timeout=10)
        assert not pending, f"still running 10 s after cancel: {pending}"
        for task in done:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def site() -> Site:
    return Site(MeterValues(current_a=(10.5, 20.25, 7.125), power_w=9876.0))


# --- through a real broker ----------------------------------------------------


async def test_json_topic_gives_phase_currents_and_power(mosquitto: Mosquitto, site: Site) -> None:
    """One JSON topic with field paths and power in kW reads as A per phase and W."""
    events: list[Event] = []
    config = settings(mosquitto)
    meter = MqttMeter(config, events.append, SystemClock())
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    async with running(meter, sim):
        await until(lambda: bool(good(events)), 3, "a good reading")
    reading = good(events)[0]
    assert reading.meter_id == "grid"
    assert reading.current_a == pytest.approx((10.5, 20.25, 7.125))
    assert reading.power_w == pytest.approx(9876.0)


async def test_per_phase_topics_with_units_and_sign(mosquitto: Mosquitto, site: Site) -> None:
    """Bare numbers on one topic per quantity: mA become A; an export-positive source is flipped."""
    site.values = MeterValues(current_a=(0.0, 31.5, 2.25), power_w=-4200.0)  # exporting
    config = settings(mosquitto, topic=None, quantities=PER_TOPIC_QUANTITIES)
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    assert sim.payloads() == {
        "site/meter/l1": b"0.0",
        "site/meter/l2": b"31500.0",
        "site/meter/l3": b"2250.0",
        "site/meter/power": b"4200.0",
    }
    events: list[Event] = []
    async with running(MqttMeter(config, events.append, SystemClock()), sim):
        await until(lambda: bool(good(events)), 3, "a good reading")
    reading = good(events)[0]
    assert reading.current_a == pytest.approx((0.0, 31.5, 2.25))
    assert reading.power_w == pytest.approx(-4200.0)


async def test_unparsable_payload_fails_with_detail_then_recovers(
    mosquitto: Mosquitto, site: Site
) -> None:
    """A payload that is not JSON gives MeterFailed saying so; good payloads are read again."""
    events: list[Event] = []
    config = settings(mosquitto)
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    sim.fault = "garbage"
    async with running(MqttMeter(config, events.append, SystemClock()), sim):
        await until(lambda: bool(failures(events)), 3, "a failure")
        assert not good(events)
        assert failures(events)[0].detail.startswith(
            "topic site/meter: payload b'{not json' is not valid JSON"
        )
        sim.fault = None
        await until(lambda: bool(good(events)), 3, "a good reading after the fault")


async def test_missing_field_is_named(mosquitto: Mosquitto) -> None:
    """JSON without the configured field gives MeterFailed naming the field and the keys found."""
    events: list[Event] = []
    meter = MqttMeter(settings(mosquitto), events.append, SystemClock())
    async with running(meter):
        await until(lambda: meter.connected and meter.listening_since is not None, 3, "subscribed")
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            payload = b'{"current": [1, 2, 3], "data": {"energy": 5}}'
            await client.publish("site/meter", payload)
        await until(lambda: bool(failures(events)), 3, "a failure")
    assert failures(events)[0].detail == (
        "topic site/meter: field 'data.power.total': no key 'power' in data (keys: energy)"
    )


async def test_nan_is_invalid_never_zero(mosquitto: Mosquitto, site: Site) -> None:
    """NaN values give an INVALID reading that keeps NaN: nothing reads as 0."""
    events: list[Event] = []
    config = settings(mosquitto)
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    sim.fault = "nan"
    async with running(MqttMeter(config, events.append, SystemClock()), sim):
        await until(lambda: any(isinstance(e, MeterReading) for e in events), 3, "a reading")
    reading = next(e for e in events if isinstance(e, MeterReading))
    assert reading.quality is Quality.INVALID
    assert "current_l1 is nan" in reading.detail
    assert all(math.isnan(v or 0.0) for v in (*reading.current_a, reading.power_w))


async def test_silence_and_old_timestamps_fail(mosquitto: Mosquitto, site: Site) -> None:
    """A source that goes quiet, or stamps its values too old, gives MeterFailed saying how old."""
    events: list[Event] = []
    config = settings(mosquitto, max_age_s=0.5, timestamp_field="ts")
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    async with running(MqttMeter(config, events.append, SystemClock()), sim):
        await until(lambda: bool(good(events)), 3, "a good reading")
        sim.fault = "silent"
        await until(lambda: bool(failures(events)), 2, "a failure on silence")
        assert "s old (max 0.5 s)" in failures(events)[0].detail
        sim.fault, sim.timestamp_lag_s = None, 10.0
        events.clear()
        await until(lambda: bool(failures(events)), 2, "a failure on old timestamps")
        assert re.search(r"value is 10\.\d s old \(max 0\.5 s\)", failures(events)[0].detail)
        assert not good(events)


async def test_broker_restart_is_survived(mosquitto: Mosquitto, site: Site) -> None:
    """With the broker restarted mid-run, the meter reports the loss, reconnects and reads again."""
    events: list[Event] = []
    config = settings(mosquitto)
    meter = MqttMeter(config, events.append, SystemClock())
    sim = SimulatedMqttMeter(lambda: site.values, config, interval_s=0.05)
    async with running(meter, sim):
        await until(lambda: bool(good(events)), 3, "a good reading")
        mosquitto.restart()
        site.values = MeterValues(current_a=(1.5, 2.5, 3.5), power_w=1234.0)
        await until(
            lambda: any(r.power_w == pytest.approx(1234.0) for r in good(events)),
            4,
            "readings after the restart",
        )
    lost = [f for f in failures(events) if "lost" in f.detail]
    assert lost
    assert lost[0].detail.startswith(f"connection to broker {mosquitto.host}:{mosquitto.port} lost")


async def test_unreachable_broker_fails_and_retries(mosquitto: Mosquitto) -> None:
    """With no broker listening, each attempt gives MeterFailed and the task keeps running."""
    mosquitto.stop()
    events: list[Event] = []
    async with running(MqttMeter(settings(mosquitto), events.append, SystemClock())):
        await until(lambda: len(failures(events)) >= 2, 3, "two failed attempts")
    assert failures(events)[0].detail.startswith(
        f"cannot connect to broker {mosquitto.host}:{mosquitto.port}"
    )


# --- the meter's judgement, with a manual clock ------------------------------


def manual_meter(**overrides: Any) -> tuple[MqttMeter, list[Event], ManualClock]:
    """A meter for per-topic settings, fed by hand, on a manual clock."""
    events: list[Event] = []
    clock = ManualClock(start=100.0)
    config = settings(None, topic=None, quantities=PER_TOPIC_QUANTITIES, **overrides)
    meter = MqttMeter(config, events.append, clock)
    meter.listening_since = clock.monotonic()
    return meter, events, clock


def test_reading_comes_once_every_topic_has_a_fresh_value() -> None:
    """Partial sets while the first values arrive emit nothing; the full set emits a reading."""
    meter, events, clock = manual_meter()
    assert meter.on_message("site/meter/l1", b"1000") is None
    assert meter.on_message("site/meter/l2", b"2000") is None
    assert meter.on_message("site/meter/l3", b"3000") is None
    clock.advance(0.5)
    reading = meter.on_message("site/meter/power", b"-500")
    assert isinstance(reading, MeterReading)
    assert (reading.at, reading.current_a, reading.power_w) == (100.5, (1.0, 2.0, 3.0), 500.0)
    assert events == [reading]


def test_a_topic_that_never_publishes_fails_after_the_grace_period() -> None:
    """After ``max_age_s`` with a topic still silent, each message gives MeterFailed naming it."""
    meter, _, clock = manual_meter()
    meter.on_message("site/meter/l1", b"1000")
    clock.advance(2.5)
    failed = meter.on_message("site/meter/l2", b"1000")
    assert isinstance(failed, MeterFailed)
    assert "current_l3 (topic site/meter/l3): no value received yet" in failed.detail
    assert "current_l1 (topic site/meter/l1): value is 2.5 s old (max 2 s)" in failed.detail


def test_a_bad_value_poisons_its_topic_until_a_good_one_comes() -> None:
    """After a bad payload, messages on other topics fail too: the old value is not reused."""
    meter, _, _ = manual_meter()
    for topic in ("l1", "l2", "l3", "power"):
        meter.on_message(f"site/meter/{topic}", b"1000")
    failed = meter.on_message("site/meter/l2", b"on")
    assert isinstance(failed, MeterFailed)
    assert failed.detail == "topic site/meter/l2: payload b'on' is not a number"
    again = meter.on_message("site/meter/l1", b"1000")
    assert isinstance(again, MeterFailed)
    assert "current_l2 (topic site/meter/l2): payload b'on' is not a number" in again.detail
    assert isinstance(meter.on_message("site/meter/l2", b"1000"), MeterReading)


def test_silence_check_fails_only_when_values_are_old() -> None:
    """The silence check is quiet while values are fresh and fails once they are not."""
    meter, _, clock = manual_meter()
    for topic in ("l1", "l2", "l3", "power"):
        meter.on_message(f"site/meter/{topic}", b"1000")
    assert meter.check_silence() is None
    clock.advance(3.0)
    failed = meter.check_silence()
    assert isinstance(failed, MeterFailed)
    assert "value is 3.0 s old" in failed.detail


def test_messages_on_other_topics_are_ignored() -> None:
    """A message on a topic the settings do not name emits nothing."""
    meter, events, _ = manual_meter()
    assert meter.on_message("site/other", b"1") is None
    assert events == []


def test_future_timestamp_is_refused() -> None:
    """A timestamp far ahead of the controller's clock is refused: the clocks disagree."""
    config = settings(None, timestamp_field="ts")
    now_s = 1_800_000_000.0
    payload = b'{"ts": 1800000100, "current": [1, 2, 3], "data": {"power": {"total": 1}}}'
    with pytest.raises(PayloadError, match=r"'ts' is 100\.0 s in the future"):
        parse_message(config, "site/meter", payload, now_s)
    ok = payload.replace(b"1800000100", b"1799999997000")  # milliseconds, 3 s old
    values, age_s = parse_message(config, "site/meter", ok, now_s)
    assert age_s == pytest.approx(3.0)
    assert values["power_total"] == 1000.0


def test_reading_carries_the_payload_timestamp_as_source_at() -> None:
    """With a timestamp field, a reading's source_at is the payload's own time (UNIX s);
    without one, none (the state then ages it by arrival)."""
    clock = ManualClock(start=100.0)
    events: list[Event] = []
    meter = MqttMeter(settings(None, timestamp_field="ts", max_age_s=30), events.append, clock)
    meter.listening_since = clock.monotonic()
    stamp = clock.now().timestamp() - 4.0
    payload = {"ts": stamp, "current": [1, 2, 3], "data": {"power": {"total": 1}}}
    reading = meter.on_message("site/meter", json.dumps(payload).encode())
    assert isinstance(reading, MeterReading)
    assert reading.source_at == pytest.approx(stamp)
    bare, _, _ = manual_meter()
    for topic in ("l1", "l2", "l3", "power"):
        last = bare.on_message(f"site/meter/{topic}", b"1000")
    assert isinstance(last, MeterReading)
    assert last.source_at is None


# --- payloads and settings, pure ------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "value"),
    [(b"12.5", 12.5), (b" -3 \n", -3.0), (b"1e3", 1000.0)],
)
def test_bare_numbers_parse(payload: bytes, value: float) -> None:
    """Bare payloads are numbers with optional whitespace and exponent."""
    assert bare_number(payload) == value


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        ({"a": [1, 2]}, "a.5", r"field 'a.5': a is a list of 2, no item '5'"),
        ({"a": 3}, "a.b", r"field 'a.b': a is a int, not an object"),
        ({}, "x", r"field 'x': no key 'x' in the document \(keys: none\)"),
    ],
)
def test_field_paths_fail_precisely(document: Any, path: str, message: str) -> None:
    """A field path that does not fit the document says where it broke."""
    with pytest.raises(PayloadError, match=message):
        field_value(document, path)


@pytest.mark.parametrize(
    ("value", "message"),
    [(True, "a boolean True"), (None, "null None"), ("abc", "the string 'abc'")],
)
def test_non_numbers_are_refused(value: Any, message: str) -> None:
    """Booleans, nulls and words are not numbers, whatever Python would coerce."""
    with pytest.raises(PayloadError, match=message):
        number(value, "field 'x'")


def test_timestamps_parse_iso_and_unix() -> None:
    """ISO 8601 with an offset and Unix seconds parse; a naive ISO time is ambiguous."""
    assert timestamp("2026-01-01T00:00:00Z", "ts").timestamp() == 1767225600.0
    assert timestamp(1767225600, "ts").timestamp() == 1767225600.0
    with pytest.raises(PayloadError, match="no UTC offset"):
        timestamp("2026-01-01T00:00:00", "ts")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"topic": "site/+/meter"}, "wildcard"),
        ({"topic": None}, "no topic"),
        ({"quantities": {"power_total": {"unit": "A"}}}, "not a unit of power"),
        (
            {"quantities": {"current_l1": {"unit": "A"}, "power_total": {"unit": "W"}}},
            "each needs a JSON `field`",
        ),
    ],
)
def test_settings_reject_ambiguous_topics(overrides: dict[str, Any], message: str) -> None:
    """Wildcards, missing topics, wrong units and bare numbers sharing a topic are refused."""
    with pytest.raises(ValidationError, match=message):
        settings(None, **overrides)


def test_reconnect_backoff_is_jittered_and_capped() -> None:
    """Broker reconnects back off from 0.1–0.2 s, doubling, to at most 5 s."""
    assert reconnect_delay_s(1, 0.0) == pytest.approx(0.1)
    assert reconnect_delay_s(3, 0.999) == pytest.approx(0.8, rel=1e-3)
    assert max(reconnect_delay_s(n, 0.999) for n in range(1, 50)) <= 5.0
