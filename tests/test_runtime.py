"""The event loop Headroom's processes run on: uvloop where installed, the standard one on request.

The site test runs a whole controller (OCPP over real websockets, the Modbus
meter over real TCP, MQTT telemetry through a real Mosquitto) on uvloop, the
loop ``headroom run`` uses by default.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from controller import runtime
from hil.ev import EV
from tests.conftest import Mosquitto
from tests.rig import rig, until
from tests.test_telemetry import collect


def test_the_standard_loop_on_request_and_uvloop_by_default() -> None:
    assert runtime.loop_factory("asyncio") is None
    assert runtime.run(_loop_name(), "asyncio") == "asyncio"
    assert runtime.run(_loop_name(), "auto") == "uvloop"
    assert runtime.run(_loop_name(), "uvloop") == "uvloop"


def test_an_unknown_loop_is_named_in_the_error() -> None:
    coroutine = _loop_name()
    with pytest.raises(ValueError, match="event loop 'trio' is unknown; known: auto, uvloop"):
        runtime.run(coroutine, "trio")
    assert coroutine.cr_frame is None  # closed, not left un-awaited


async def _loop_name() -> str:
    return runtime.running_loop_name()


def test_a_site_runs_on_uvloop(mosquitto: Mosquitto) -> None:
    """Boot, a session at the charger's rating, an over-limit reading answered, telemetry out."""
    runtime.run(_site_on_uvloop(mosquitto.host, mosquitto.port), "uvloop")


async def _site_on_uvloop(host: str, port: int) -> None:
    assert runtime.running_loop_name() == "uvloop"
    seen: dict[str, list[Any]] = {}
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(host, port, seen, ready))
    await asyncio.wait_for(ready.wait(), 5)
    try:
        async with rig(telemetry=(host, port), interval_s=3) as r:
            [cp] = r.charge_points
            await cp.plug_in(1, EV(response_delay_s=0.1))
            await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
            await until(lambda: max(cp.draw_a()) == 32.0, 5, "EV drawing 32 A")
            r.base_a[:] = [45.0, 10.0, 10.0]  # 45 + 32 = 77 A on L1: over 63 A
            await until(lambda: cp.offered_a(1) <= 17.0, 2, "decrease before the next tick")

            def has_state() -> bool:
                return any(
                    json.loads(x)["sessions"].get("cp-0/1") is not None
                    for x in seen.get("headroom/t/state", [])
                )

            await until(has_state, 5, "a state message with the session")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
