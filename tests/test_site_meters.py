"""Several meters per site, end to end over real sockets.

A 63 A site with a 40 A feeder: cp-0 on the feeder, cp-1 straight on the
site. The grid meter and the feeder's meter are simulated Modbus TCP servers
(or the feeder's measurement comes from a charger's own OCPP main meter); the
chargers are OCPP clients over websockets. Each test checks what a meter on a
node means for the chargers below it, and only for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt

from controller.api.views import site_view
from controller.config import parse_config
from controller.decide import Mode
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import MeterValues, SimulatedMeter
from hil.site import SimulatedSite, WiredCharger
from tests.conftest import Mosquitto
from tests.rig import until

SITE_OTHER_A = 5.0  # the site's non-charger load outside the feeder
FEEDER_BASE_A = 25.0  # the feeder's own non-charger load (the site meter sees it too)


@dataclass
class Rig:
    """The controller, the two meters' physics and the chargers."""

    controller: SiteController
    cps: list[SimulatedChargePoint]
    feeder_meter: SimulatedMeter | None
    feeder_base_a: list[float]


def config(feeder_meter: dict[str, Any], site_meter_port: int) -> dict[str, Any]:
    """The site's config with the feeder's meter as given."""
    return {
        "site": {"id": "t", "max_current_a": 63, "safety_margin_a": 1, "failsafe_current_a": 6},
        "control": {
            "interval_s": 0.5,
            "meter_stale_s": 1.0,
            "failsafe_after_s": 2.0,
            "min_increase_interval_s": 0.5,
            "base_load_window_s": 0.5,
        },
        "ocpp": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 2},
        "groups": [{"id": "feeder", "max_current_a": 40}],
        "meters": [
            {
                "id": "grid",
                "source": "modbus",
                "host": "127.0.0.1",
                "port": site_meter_port,
                "poll_interval_s": 0.25,
            },
            {"id": "fm", "node": "feeder", **feeder_meter},
        ],
        "chargers": [{"id": "cp-0", "group": "feeder"}, {"id": "cp-1"}],
    }


@asynccontextmanager
async def two_meter_site(
    feeder_source: str = "modbus", includes_chargers: bool = True
) -> AsyncIterator[Rig]:
    """Start both meters, the controller and two chargers, each with a car charging."""
    feeder_base = [FEEDER_BASE_A]
    site = SimulatedSite(lambda _t: (SITE_OTHER_A + feeder_base[0],) * 3, [], time.monotonic)
    feeder = SimulatedSite(lambda _t: (feeder_base[0],) * 3, [], time.monotonic)
    site_meter = SimulatedMeter(source=site.meter_values)
    await site_meter.start()
    feeder_meter: SimulatedMeter | None = None
    if feeder_source == "modbus":
        source = (
            feeder.meter_values
            if includes_chargers
            else lambda: MeterValues((feeder_base[0],) * 3, feeder_base[0] * 690)
        )
        feeder_meter = SimulatedMeter(source=source)
        await feeder_meter.start()
        meter_keys: dict[str, Any] = {
            "source": "modbus",
            "host": "127.0.0.1",
            "port": feeder_meter.port,
            "poll_interval_s": 0.25,
            "includes_chargers": includes_chargers,
        }
    else:  # the feeder's head charger cp-0 measures the whole feeder on connector 0
        meter_keys = {"source": "ocpp", "charger": "cp-0", "stale_s": 1.0}
    controller = SiteController(parse_config(config(meter_keys, site_meter.port)))
    await controller.start()
    url = f"ws://127.0.0.1:{controller.ocpp.port}/ocpp"
    cps = [SimulatedChargePoint(f"cp-{i}", url, meter_interval_s=0.25) for i in range(2)]
    if feeder_source == "ocpp":
        cps[0].main_meter = feeder.site_a
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    feeder.chargers.append(WiredCharger(cps[0]))
    try:
        await asyncio.gather(*(cp.start() for cp in cps))
        for cp in cps:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        yield Rig(controller, cps, feeder_meter, feeder_base)
    finally:
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await controller.stop()
        await site_meter.stop()
        if feeder_meter is not None:
            await feeder_meter.stop()


def feeder_mode(r: Rig) -> Mode | None:
    """The feeder node's mode in the last decision."""
    last = r.controller.loop.last
    if last is None or "feeder" not in last.node_modes:
        return None
    return last.node_modes["feeder"][0]


def near(cp: SimulatedChargePoint, amps: float) -> bool:
    """The car's offer is within 1 A of ``amps`` (the base-load estimate wobbles as cars ramp)."""
    return abs(cp.offered_a(1) - amps) <= 1.0


async def settle(r: Rig, cp0_a: float, cp1_a: float) -> None:
    """Wait until the two cars hold about the expected offers."""
    await until(lambda: near(r.cps[0], cp0_a), 8, f"cp-0 at about {cp0_a} A")
    await until(lambda: near(r.cps[1], cp1_a), 8, f"cp-1 at about {cp1_a} A")


async def test_feeder_fault_holds_then_fail_safes_only_the_feeder() -> None:
    """Two meters on two nodes. Feeder base 25 A: cp-0 gets 40 − 25 = 15 A, cp-1 the rest of
    the site's 62 − 30 = 32 A, 17 A. The feeder meter fails: cp-0 is held (a lower load on the
    feeder does not raise it), then after failsafe_after_s gets the 6 A fail-safe while cp-1
    charges on at its 32 A rating; the site stays normal; the feeder's mode is in the
    metrics and the API. When the meter answers again the feeder recovers by itself and
    the cars share again."""
    async with two_meter_site() as r:
        await settle(r, 15.0, 17.0)
        assert r.feeder_meter is not None
        r.feeder_meter.fault = "exception"
        faulted = time.monotonic()
        await until(lambda: feeder_mode(r) is Mode.HOLD, 2, "feeder held")
        r.feeder_base_a[0] = 10.0  # feeder would allow 30 A now, the site 47 A in all
        held_max = 0.0

        def failsafe() -> bool:
            nonlocal held_max
            if feeder_mode(r) is not Mode.FAILSAFE:
                held_max = max(held_max, r.cps[0].offered_a(1))
            return feeder_mode(r) is Mode.FAILSAFE

        await until(failsafe, 4, "feeder in fail-safe")
        assert held_max <= 16.0  # never increased while the feeder was doubtful
        assert time.monotonic() - faulted >= 2.0 - 0.3
        await until(lambda: r.cps[0].offered_a(1) == 6.0, 3, "cp-0 at the fail-safe 6 A")
        await until(lambda: r.cps[1].offered_a(1) == 32.0, 3, "cp-1 charging on, at 32 A")
        last = r.controller.loop.last
        assert last is not None
        assert last.mode is Mode.NORMAL
        assert "fm" in last.targets["cp-0/1"].reason
        labels = {"site": "t", "node": "feeder", "mode": "failsafe"}
        registry = r.controller.metrics.registry
        assert registry.get_sample_value("headroom_node_mode", labels) == 1.0
        api = site_view(r.controller)
        assert api.node_modes["feeder"].mode == "failsafe"
        assert api.mode == "normal"

        r.feeder_meter.fault = None
        await until(lambda: feeder_mode(r) is Mode.NORMAL, 4, "feeder recovered")
        await settle(r, 23.5, 23.5)  # the site's 47 A shared; the feeder allows 30 A


async def test_a_feeder_meter_without_the_chargers_is_its_base_load() -> None:
    """includes_chargers false: the feeder meter reads only its 25 A building load, which is
    the feeder's base load as it is: cp-0 still gets 40 − 25 = 15 A, and 10 A at 30 A."""
    async with two_meter_site(includes_chargers=False) as r:
        await settle(r, 15.0, 17.0)
        r.feeder_base_a[0] = 30.0
        await until(lambda: near(r.cps[0], 10.0), 8, "cp-0 down to 40 − 30 = 10 A")


async def test_a_charger_main_meter_measures_the_feeder() -> None:
    """cp-0's own main meter (OCPP connector 0) stands in for the feeder's meter: the same
    15 A for cp-0; when it stops reporting, the feeder alone is held then fail-safe."""
    async with two_meter_site(feeder_source="ocpp") as r:
        await settle(r, 15.0, 17.0)
        r.cps[0].main_meter = None
        await until(lambda: feeder_mode(r) is Mode.FAILSAFE, 6, "feeder in fail-safe")
        await until(lambda: r.cps[0].offered_a(1) == 6.0, 3, "cp-0 at 6 A")
        await until(lambda: near(r.cps[1], 26.0), 3, "cp-1 charging on: 32 − 6 = 26 A")


async def test_mqtt_source_timestamps_age_and_order_readings(mosquitto: Mosquitto) -> None:
    """An MQTT reading whose own timestamp is older than the stale bound is not trusted even
    though it has just arrived (hold, not normal); fresh values bring normal mode; a value
    stamped earlier than the one held never replaces it."""
    meter = {
        "id": "grid",
        "source": "mqtt",
        "host": mosquitto.host,
        "port": mosquitto.port,
        "topic": "t/grid",
        "timestamp_field": "ts",
        "max_age_s": 30,
        "stale_s": 2,
        "quantities": {"power_total": {"field": "w", "unit": "W"}},
    }
    data = config({}, 1)
    data["meters"] = [meter]
    data["groups"], data["chargers"] = [], [{"id": "cp-0"}]
    data["control"]["failsafe_after_s"] = 60
    controller = SiteController(parse_config(data))
    await controller.start()

    async def publish(client: aiomqtt.Client, watts: float, age_s: float, times: int = 5) -> None:
        for _ in range(times):
            payload = {"w": watts, "ts": time.time() - age_s}
            await client.publish("t/grid", json.dumps(payload).encode())
            await asyncio.sleep(0.1)

    def mode() -> Mode | None:
        last = controller.loop.last
        return last.mode if last else None

    def power_w() -> float | None:
        return controller.state.snapshot(time.monotonic()).meter.power_w

    try:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            meter_task = controller.meters[0]
            await until(lambda: getattr(meter_task, "listening_since", None) is not None, 5, "sub")
            await publish(client, 6900, age_s=10.0)  # well inside max_age_s, past stale_s
            await until(lambda: power_w() == 6900, 3, "the old values recorded")
            await until(lambda: mode() is Mode.HOLD, 3, "hold on 10 s old values")
            assert "stale" in controller.state.snapshot(time.monotonic()).meter.problem
            await publish(client, 6900, age_s=0.0)
            await until(lambda: mode() is Mode.NORMAL, 3, "normal on fresh values")
            await publish(client, 99_000, age_s=1.0, times=3)  # stamped before the held one
            assert power_w() == 6900
            await publish(client, 7000, age_s=0.0, times=1)
            await until(lambda: power_w() == 7000, 3, "a newer value is taken")
    finally:
        await controller.stop()
