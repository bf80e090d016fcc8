"""MQTT telemetry through a real Mosquitto broker: state each decision, events, availability."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from hil.ev import EV
from tests.conftest import Mosquitto
from tests.rig import rig, until


async def collect(host: str, port: int, into: dict[str, list[Any]], ready: asyncio.Event) -> None:
    """Subscribe to everything under headroom/ and keep the payloads per topic."""
    async with aiomqtt.Client(host, port, identifier="telemetry-test") as client:
        await client.subscribe("headroom/#")
        ready.set()
        async for message in client.messages:
            payload = message.payload
            text = payload.decode() if isinstance(payload, bytes) else str(payload)
            into.setdefault(str(message.topic), []).append(text)


async def test_state_and_events_reach_a_real_broker(mosquitto: Mosquitto) -> None:
    """The site state (retained), charger status and session events arrive under headroom/t/."""
    host, port = mosquitto.host, mosquitto.port
    seen: dict[str, list[Any]] = {}
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(host, port, seen, ready))
    await asyncio.wait_for(ready.wait(), 5)
    try:
        async with rig(telemetry=(host, port)) as r:
            [cp] = r.charge_points
            await cp.plug_in(1, EV(response_delay_s=0.1))
            await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")

            def has_setpoint() -> bool:
                states = [json.loads(x) for x in seen.get("headroom/t/state", [])]
                return any(s["sessions"].get("cp-0/1", {}).get("limit_a") == 32.0 for s in states)

            await until(has_setpoint, 5, "a state message with the session's 32 A")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert seen["headroom/t/status"][0] == "online"
    events = [json.loads(x) for x in seen["headroom/t/events"]]
    types = [e["type"] for e in events]
    assert "charger_connected" in types
    assert "session_started" in types
    status = json.loads(seen["headroom/t/chargers/cp-0/status"][-1])
    assert status["connected"] is True
    state = json.loads(seen["headroom/t/state"][-1])
    assert state["mode"] == "normal"
    assert state["grid_current_a"][0] is not None


async def test_last_state_is_retained_and_broker_restart_is_survived(
    mosquitto: Mosquitto,
) -> None:
    """A dashboard connecting late gets the last state at once; after a broker restart the
    controller reconnects and publishes again."""
    host, port = mosquitto.host, mosquitto.port
    async with rig(telemetry=(host, port)) as r:
        await until(
            lambda: r.controller.telemetry is not None and r.controller.telemetry.published >= 3,
            5,
            "first messages",
        )
        await asyncio.to_thread(mosquitto.restart)
        telemetry = r.controller.telemetry
        assert telemetry is not None
        before = telemetry.published
        await until(lambda: telemetry.published > before + 2, 10, "publishing after restart")
        async with aiomqtt.Client(host, port, identifier="late-dashboard") as client:
            await client.subscribe("headroom/t/state")
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
        assert message.retain
        assert json.loads(str(message.payload.decode()))["mode"] == "normal"  # type: ignore[union-attr]
