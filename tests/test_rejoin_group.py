"""A charger below a metered group goes offline: its car stays in the group's base load.

A 100 A site with a 50 A feeder that has a Modbus meter of its own; cp-0 and cp-1 are on
the feeder. The feeder's non-charger load is 4 A, so its cars share 46 A. The meters
are simulated Modbus TCP servers, the chargers OCPP clients over websockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from controller.config import parse_config
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite, WiredCharger
from tests.leaving import leave_at_share, watch
from tests.rig import until

FEEDER_A = 50.0
FEEDER_BASE_A = 4.0  # the feeder's own non-charger load (the site meter sees it too)
FEEDER_FREE_A = FEEDER_A - FEEDER_BASE_A
WINDOW_S = 15.0
"""The base-load window: long enough for cp-1 to ramp, report and leave in it."""


@dataclass
class FeederRig:
    controller: SiteController
    cps: list[SimulatedChargePoint]
    feeder: SimulatedSite


@asynccontextmanager
async def feeder_site() -> AsyncIterator[FeederRig]:
    """Both meters, the controller and the feeder's two chargers, no car plugged in yet."""
    site = SimulatedSite(lambda _t: (5.0 + FEEDER_BASE_A,) * 3, [], time.monotonic)
    feeder = SimulatedSite(lambda _t: (FEEDER_BASE_A,) * 3, [], time.monotonic)
    meters = [SimulatedMeter(source=site.meter_values), SimulatedMeter(source=feeder.meter_values)]
    for meter in meters:
        await meter.start()
    modbus = {"source": "modbus", "host": "127.0.0.1", "poll_interval_s": 0.25}
    config = {
        "site": {"id": "t", "max_current_a": 100, "safety_margin_a": 1, "failsafe_current_a": 6},
        "control": {
            "interval_s": 0.5,
            "meter_stale_s": 1.0,
            "failsafe_after_s": 2.0,
            "min_increase_interval_s": 0.5,
            "base_load_window_s": WINDOW_S,
            "lease_s": 60,
        },
        "ocpp": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 2},
        "groups": [{"id": "feeder", "max_current_a": FEEDER_A}],
        "meters": [
            {"id": "grid", **modbus, "port": meters[0].port},
            {"id": "fm", "node": "feeder", **modbus, "port": meters[1].port},
        ],
        "chargers": [{"id": "cp-0", "group": "feeder"}, {"id": "cp-1", "group": "feeder"}],
    }
    controller = SiteController(parse_config(config))
    await controller.start()
    url = f"ws://127.0.0.1:{controller.ocpp.port}/ocpp"
    cps = [SimulatedChargePoint(f"cp-{i}", url, meter_interval_s=0.25) for i in range(2)]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    feeder.chargers.extend(WiredCharger(cp) for cp in cps)
    try:
        await asyncio.gather(*(cp.start() for cp in cps))
        yield FeederRig(controller, cps, feeder)
    finally:
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await controller.stop()
        for meter in meters:
            await meter.stop()


async def test_a_feeder_charger_leaving_just_after_its_car_ramped_up_stays_in_its_estimate() -> (
    None
):
    """cp-0 charges alone at its 32 A rating on the feeder; cp-1's car plugs in and ramps up
    to its share of the feeder, and cp-1 drops off the network while a feeder reading from
    before its car was at its share is still in the window. Its car charges on: cp-0 is
    never offered more than the feeder's room beside the highest limit cp-1 may hold, the
    room is offered to cp-0, and the feeder stays under its limit."""
    async with feeder_site() as r:
        cp0, cp1 = r.cps
        await cp0.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp0.offered_a(1) == 32.0, 10, "cp-0 at 32 A")
        away_a, low_at = await leave_at_share(r.controller, cp1, FEEDER_FREE_A / 2)
        assert time.monotonic() - low_at < WINDOW_S - 1.0, "no low reading in the window"
        room_a = FEEDER_FREE_A - away_a
        highest_offer_a, worst_a = await watch(cp0, r.feeder.site_a, 5.0)
        assert highest_offer_a <= room_a + 0.1
        assert worst_a <= FEEDER_A
        assert highest_offer_a >= room_a - 1.0  # the room beside the away car is offered
