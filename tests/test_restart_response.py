"""A charger's learned response time is not forgotten because the controller restarted.

`headroom run` is a separate process; the charger and the meter live in the test's
process. The car takes 8 s to follow each new setpoint: the first controller learns
it and stores it. The controller is killed (SIGKILL) and restarted; before the
charger is back, the API already reports the learned time. The car is then made
slower than its charger's learned time (30 s), so it cannot show it followed within
the test: an increase held back for a change it has not followed can only be
released by the learned time. Without it (``response_time_max_s``, 40 s, until a
time is learned again) the next increase would wait for the car, 30 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.api.auth import sha256_hex
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite, WiredCharger
from tests.rig import until
from tests.test_restart import free_port, listening, start_controller, stop, write_config

TOOK_S = 8.0
"""How long the car takes to follow a setpoint while the first controller runs."""
VIEWER = {"Authorization": "Bearer ops-token"}


def configure(config: Path, ports: dict[str, int], tmp_path: Path) -> None:
    """One charger; an increase waits for the car or its charger's response time; a car
    gets 20 s before its draw teaches what it takes (so a slow car is not taken for one
    that wants less during the test); the API on."""
    write_config(config, ports, tmp_path, lease_s=120)
    keys = yaml.safe_load(config.read_text(encoding="utf-8"))
    keys["chargers"] = [{"id": "cp-0"}]
    keys["control"].update(response_time_s=2, response_time_max_s=40, ev_settle_s=20)
    keys["api"] = {
        "host": "127.0.0.1",
        "port": ports["api"],
        "tokens": [{"name": "ops", "role": "viewer", "token_sha256": sha256_hex("ops-token")}],
    }
    config.write_text(yaml.safe_dump(keys), encoding="utf-8")


def charger_view(api_port: int) -> dict[str, Any]:
    """GET /api/v1/sites/k/chargers/cp-0, or {} while the API does not answer."""
    try:
        response = httpx.get(
            f"http://127.0.0.1:{api_port}/api/v1/sites/k/chargers/cp-0", headers=VIEWER, timeout=5
        )
    except httpx.TransportError:
        return {}
    return response.json() if response.status_code == 200 else {}


def response_metric(port: int) -> float | None:
    """headroom_charger_response_seconds of cp-0, scraped from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return next(
        (
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "headroom_charger_response_seconds"
            and sample.labels.get("charger") == "cp-0"
        ),
        None,
    )


def learned(view: dict[str, Any]) -> bool:
    return bool(view.get("response_learned")) and abs(view["response_time_s"] - TOOK_S) <= 1.0


async def test_a_learned_response_time_paces_increases_after_a_restart(tmp_path: Path) -> None:
    """After kill -9 and a restart the API reports the charger's ~8 s response time as
    learned before the charger is back; the metric shows it; an increase held back for a
    change the car has not followed goes ~8 s after that change, not when the car follows."""
    base_a = [40.0, 40.0, 40.0]
    site = SimulatedSite(lambda _t: (base_a[0], base_a[1], base_a[2]), [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    ports = {"ocpp": free_port(), "meter": meter.port, "metrics": free_port(), "api": free_port()}
    config, log = tmp_path / "site.yaml", tmp_path / "controller.log"
    configure(config, ports, tmp_path)
    url = f"ws://127.0.0.1:{ports['ocpp']}/ocpp"
    cp = SimulatedChargePoint("cp-0", url, meter_interval_s=0.25)
    site.chargers.append(WiredCharger(cp))
    ev = EV(response_delay_s=TOOK_S)
    process = start_controller(config, log)
    try:
        await listening(ports["ocpp"])
        await cp.start()
        await cp.plug_in(1, ev)
        # 63 − 1 − 40 = 22 A; the car follows the change to it 8 s late.
        await until(lambda: learned(charger_view(ports["api"])), 30, "~8 s learned")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert cp.offered_a(1) == 22.0  # within its lease: the car stays at 22 A

        ev.response_delay_s = 30.0  # slower than its charger's learned time, from now on
        process = start_controller(config, log)
        await listening(ports["ocpp"])
        view = await asyncio.to_thread(charger_view, ports["api"])
        assert learned(view), view  # before the charger is back: from the state store
        await until(
            lambda: abs((response_metric(ports["metrics"]) or 0.0) - TOOK_S) <= 1.0,
            10,
            "the restored time in /metrics",
        )
        since = len(cp.received_profiles)
        await cp.reconnect()
        await until(lambda: len(cp.received_profiles) > since, 10, "the charger set up again")
        await asyncio.sleep(1.0)  # a report or two: the restored session is confirmed

        # Two increases, neither of which the car follows within the test: each may wait
        # for the charger's response time after the change before it, no longer.
        base_a[:] = [34.0, 34.0, 34.0]
        asked_at = time.monotonic()
        await until(lambda: cp.offered_a(1) == 28.0, 15, "the increase to 28 A")
        increased_at = time.monotonic()
        assert increased_at - asked_at <= TOOK_S + 3.0
        base_a[:] = [20.0, 20.0, 20.0]
        await until(lambda: cp.offered_a(1) == 32.0, 25, "the increase to 32 A")
        waited_s = time.monotonic() - increased_at
        assert TOOK_S - 1.5 <= waited_s <= TOOK_S + 3.0, waited_s
        assert max(ev.draw_a()) < 28.0  # released by the learned time, not by the car
    finally:
        stop(process)
        await cp.stop()
        await meter.stop()
