"""A running controller against simulated devices over loopback, for the loop's tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from controller.config import HeadroomConfig, parse_config
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.charge_point_201 import SimulatedStation
from hil.meter import SimulatedMeter
from hil.quirks import Quirks
from hil.site import SimulatedSite, WiredCharger


def config_for(
    meter_port: int,
    chargers: int = 1,
    metrics: bool = False,
    audit_path: str | None = None,
    telemetry: tuple[str, int] | None = None,
    site_keys: dict[str, Any] | None = None,
    config_keys: dict[str, Any] | None = None,
    **control: Any,
) -> HeadroomConfig:
    """A 3-phase 63 A site with fast timings so the tests run in seconds."""
    return parse_config(
        {
            "audit": {"path": audit_path} if audit_path else None,
            "telemetry": {"host": telemetry[0], "port": telemetry[1]} if telemetry else None,
            "metrics": {"host": "127.0.0.1", "port": 0} if metrics else None,
            "site": {
                "id": "t",
                "max_current_a": 63,
                "safety_margin_a": 1,
                "failsafe_current_a": 6,
                **(site_keys or {}),
            },
            "control": {
                "interval_s": 0.5,
                "meter_stale_s": 1.0,
                "failsafe_after_s": 2.0,
                "min_increase_interval_s": 0.5,
                "base_load_window_s": 0.5,
                **control,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 2},
            "meter": {"host": "127.0.0.1", "port": meter_port, "poll_interval_s": 0.25},
            "chargers": [{"id": f"cp-{i}", "max_current_a": 32} for i in range(chargers)],
            **(config_keys or {}),
        }
    )


@dataclass
class Rig:
    """A running controller with its simulated site."""

    controller: SiteController
    meter: SimulatedMeter
    site: SimulatedSite
    charge_points: list[SimulatedChargePoint]
    base_a: list[float]


@asynccontextmanager
async def rig(
    chargers: int = 1,
    metrics: bool = False,
    audit_path: str | None = None,
    telemetry: tuple[str, int] | None = None,
    site_keys: dict[str, Any] | None = None,
    quirks: dict[int, Quirks] | None = None,
    ocpp201: frozenset[int] = frozenset(),
    config_keys: dict[str, Any] | None = None,
    **control: Any,
) -> AsyncIterator[Rig]:
    """Start meter, controller and chargers; stop all of them afterwards.

    The chargers whose index is in ``ocpp201`` speak OCPP 2.0.1, the others 1.6J.
    """
    base_a = [10.0, 10.0, 10.0]
    site = SimulatedSite(lambda _t: (base_a[0], base_a[1], base_a[2]), [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    controller = SiteController(
        config_for(
            meter.port, chargers, metrics, audit_path, telemetry, site_keys, config_keys, **control
        )
    )
    await controller.start()
    url = f"ws://127.0.0.1:{controller.ocpp.port}/ocpp"
    cps = [
        (SimulatedStation if i in ocpp201 else SimulatedChargePoint)(
            f"cp-{i}", url, meter_interval_s=0.25, quirks=(quirks or {}).get(i)
        )
        for i in range(chargers)
    ]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    try:
        await asyncio.gather(*(cp.start() for cp in cps))
        yield Rig(controller, meter, site, cps, base_a)
    finally:
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await controller.stop()
        await meter.stop()


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Wait until ``condition()`` holds; the seconds it took. Fails naming ``what``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start
