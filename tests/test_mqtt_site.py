"""A site whose grid meter is read over MQTT, through a real Mosquitto, end to end."""

from __future__ import annotations

import asyncio
import time

from controller.config import parse_config
from controller.decide import Mode
from controller.meters.mqtt_settings import MqttMeterSettings
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.mqtt_meter import SimulatedMqttMeter
from hil.site import SimulatedSite, WiredCharger
from tests.conftest import Mosquitto
from tests.rig import until


async def test_mqtt_grid_meter_feeds_the_loop(mosquitto: Mosquitto) -> None:
    """Readings published to the broker reach the loop: it leaves fail-safe and gives the car
    what the limit allows (63 A − 1 A margin − 40 A base = 22 A)."""
    meter_keys = {
        "host": mosquitto.host,
        "port": mosquitto.port,
        "topic": "site/grid",
        "quantities": {
            "current_l1": {"field": "a.0", "unit": "A"},
            "current_l2": {"field": "a.1", "unit": "A"},
            "current_l3": {"field": "a.2", "unit": "A"},
            "power_total": {"field": "w", "unit": "W"},
        },
    }
    config = parse_config(
        {
            "site": {"id": "m", "max_current_a": 63, "safety_margin_a": 1, "failsafe_current_a": 6},
            "control": {
                "interval_s": 0.5,
                "min_increase_interval_s": 0.5,
                "base_load_window_s": 0.5,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0},
            "mqtt_meter": meter_keys,
            "chargers": [{"id": "cp-0"}],
        }
    )
    site = SimulatedSite(lambda _t: (40.0, 40.0, 40.0), [], time.monotonic)
    publisher = SimulatedMqttMeter(
        site.meter_values, MqttMeterSettings.model_validate(meter_keys), interval_s=0.2
    )
    publishing = asyncio.create_task(publisher.run())
    controller = SiteController(config)
    await controller.start()
    cp = SimulatedChargePoint(
        "cp-0", f"ws://127.0.0.1:{controller.ocpp.port}/ocpp", meter_interval_s=0.25
    )
    site.chargers.append(WiredCharger(cp))
    try:
        await cp.start()
        await cp.plug_in(1, EV(response_delay_s=0.1))
        loop = controller.loop
        await until(
            lambda: loop.last is not None and loop.last.mode is Mode.NORMAL,
            5,
            "normal mode on MQTT readings",
        )
        await until(lambda: cp.offered_a(1) == 22.0, 5, "the car at 22 A")
    finally:
        await cp.stop()
        await controller.stop()
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
