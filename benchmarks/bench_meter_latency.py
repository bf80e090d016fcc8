"""Meter latency: from a value changing in a simulated meter to the controller's state holding it.

Usage::

    python benchmarks/bench_meter_latency.py [--samples 30] [--intervals 0.25 1.0]
        [--sources modbus mqtt] [--json FILE]

For each source and interval, the real adapter feeds a real
:class:`~controller.state.SiteState` through the sink, in this process:

* **modbus**: :class:`~hil.meter.SimulatedMeter` (pymodbus server on loopback)
  polled by :class:`~controller.meters.ModbusMeter` every ``interval`` s;
* **mqtt**: :class:`~hil.mqtt_meter.SimulatedMqttMeter` publishing every
  ``interval`` s through a real Mosquitto (started here on a free port) to
  :class:`~controller.meters.mqtt.MqttMeter`.

Each sample waits a random fraction of the interval (so the change falls
anywhere between two polls or publications), changes the value the simulated
meter measures (``time.monotonic()`` just before: **changed**), and records
the moment the state's site meter view first holds the new value (checked in
the sink, right after ``SiteState.apply``: **held**). The latency is held −
changed; the script prints its median and p99 (nearest rank: with fewer than
100 samples, the worst one). Expect about half an interval plus the round
trip at the median, a whole interval plus the round trip at the worst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import configure_logs, machine, percentile, scratch_file
from controller.clock import SystemClock
from controller.config import ControlSettings
from controller.meters import ModbusMeter, load_builtin_map
from controller.meters.mqtt import MqttMeter, MqttMeterSettings
from controller.model import Event
from controller.state import SiteState
from hil.meter import MeterValues, SimulatedMeter
from hil.mqtt_meter import SimulatedMqttMeter


class Probe:
    """A meter source whose value the benchmark changes, and the sink that sees it held."""

    def __init__(self) -> None:
        self.amps = 10.0
        self.changed_at: float | None = None
        self.latencies: list[float] = []
        self.state = SiteState(ControlSettings(meter_stale_s=600, meter_frozen_s=3600))
        self.held = asyncio.Event()

    def source(self) -> MeterValues:
        """What the simulated meter measures now."""
        return MeterValues((self.amps,) * 3, self.amps * 3 * 230)

    def sink(self, event: Event) -> None:
        """The controller's state takes the event; is the new value held now?"""
        self.state.apply(event)
        if self.changed_at is None:
            return
        meter = self.state.snapshot(time.monotonic()).meter
        if meter.current_a is not None and meter.current_a[0] == self.amps:
            self.latencies.append(time.monotonic() - self.changed_at)
            self.changed_at = None
            self.held.set()

    async def measure(self, samples: int, interval_s: float) -> list[float]:
        """Change the value ``samples`` times, at random phases of the interval."""
        await asyncio.sleep(3 * interval_s)  # the adapter has connected and read once
        for i in range(samples):
            await asyncio.sleep(random.uniform(0.0, interval_s))
            self.held.clear()
            # A new value each time, within one jump of the last (quality judges jumps).
            self.changed_at = time.monotonic()
            self.amps = 11.0 + (i % 7)  # never the value before it (10 A at the start)
            await asyncio.wait_for(self.held.wait(), timeout=10 * interval_s + 5)
        return self.latencies


async def run_modbus(samples: int, interval_s: float) -> list[float]:
    """Latencies through a Modbus TCP poll."""
    probe = Probe()
    meter = SimulatedMeter(source=probe.source)
    await meter.start()
    reader = ModbusMeter(
        "grid",
        "127.0.0.1",
        meter.port,
        1,
        load_builtin_map("sdm630"),
        probe.sink,
        SystemClock(),
        poll_interval_s=interval_s,
    )
    task = asyncio.create_task(reader.run())
    try:
        return await probe.measure(samples, interval_s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await meter.stop()


async def run_mqtt(samples: int, interval_s: float, broker: tuple[str, int]) -> list[float]:
    """Latencies through an MQTT publication and a real broker."""
    probe = Probe()
    settings = MqttMeterSettings.model_validate(
        {
            "host": broker[0],
            "port": broker[1],
            "topic": "bench/grid",
            "timestamp_field": "ts",
            "max_age_s": max(5.0, 4 * interval_s),
            "quantities": {
                "current_l1": {"field": "a.0", "unit": "A"},
                "current_l2": {"field": "a.1", "unit": "A"},
                "current_l3": {"field": "a.2", "unit": "A"},
                "power_total": {"field": "w", "unit": "W"},
            },
        }
    )
    publisher = SimulatedMqttMeter(probe.source, settings, interval_s=interval_s)
    reader = MqttMeter(settings, probe.sink, SystemClock())
    tasks = [asyncio.create_task(reader.run()), asyncio.create_task(publisher.run())]
    try:
        return await probe.measure(samples, interval_s)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def row(source: str, interval_s: float, latencies: list[float]) -> dict[str, Any]:
    """One result: median and p99 in ms."""
    ordered = sorted(latencies)
    return {
        "source": source,
        "interval_s": interval_s,
        "samples": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every source at every interval."""
    results = []
    broker = None
    try:
        if "mqtt" in args.sources:
            from tests.conftest import Mosquitto, _mosquitto_binary

            binary = _mosquitto_binary()
            if binary is None:
                raise SystemExit("mosquitto is not installed")
            broker = Mosquitto(binary, Path(tempfile.mkdtemp(prefix="bench-mqtt-")))
            broker.start()
        for source in args.sources:
            for interval_s in args.intervals:
                if source == "modbus":
                    latencies = await run_modbus(args.samples, interval_s)
                else:
                    assert broker is not None
                    broker_at = (broker.host, broker.port)
                    latencies = await run_mqtt(args.samples, interval_s, broker_at)
                result = row(source, interval_s, latencies)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        if broker is not None:
            broker.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--sources", nargs="+", default=["modbus", "mqtt"])
    parser.add_argument("--json", help="write the results and the machine here")
    arguments = parser.parse_args()
    configure_logs("warning", scratch_file("bench-meter-log-"))
    random.seed(1)
    rows = asyncio.run(main(arguments))
    report = {"machine": machine(), "results": rows}
    print(json.dumps(report["machine"]))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(report, indent=2))
