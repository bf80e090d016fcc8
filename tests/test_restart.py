"""Kill -9 of the controller mid-session, then a restart: the site stays safe throughout.

The controller runs as a real `headroom run` process against simulated chargers
and a simulated meter in the test's process. When it is killed, each charger
falls back to its fail-safe by itself once its lease runs out; the audit log
keeps every decision up to the kill; after the restart the sessions are
adopted from the chargers' meter values and their setpoints resumed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite, WiredCharger
from tests.rig import until

LIMIT_A = 63.0
BASE_A = (20.0, 20.0, 20.0)  # with two 32 A cars unmanaged the site would draw 84 A


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_controller(config: Path) -> subprocess.Popen[bytes]:
    """`headroom run --config` as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def listening(port: int) -> None:
    """Wait until the controller accepts connections on its OCPP port."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"the controller never listened on port {port}")


async def test_kill_9_and_restart_keep_the_site_safe(tmp_path: Path) -> None:
    """Leases expire to the fail-safe while the controller is dead, the site never goes over
    its limit, the audit log has the decisions made before the kill, and after a restart the
    running sessions are steered again."""
    site = SimulatedSite(lambda _t: BASE_A, [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    ocpp_port = free_port()
    audit = tmp_path / "audit.db"
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": {
                    "id": "k",
                    "max_current_a": LIMIT_A,
                    "safety_margin_a": 1,
                    "failsafe_current_a": 6,
                },
                "control": {"interval_s": 0.5, "lease_s": 3, "min_increase_interval_s": 1},
                "ocpp": {"host": "127.0.0.1", "port": ocpp_port},
                "meter": {"host": "127.0.0.1", "port": meter.port, "poll_interval_s": 0.25},
                "audit": {"path": str(audit)},
                "chargers": [{"id": "cp-0"}, {"id": "cp-1"}],
            }
        ),
        encoding="utf-8",
    )
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    cps = [SimulatedChargePoint(f"cp-{i}", url, meter_interval_s=0.25) for i in range(2)]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    worst_a = 0.0
    sampling = True

    async def sample() -> None:
        nonlocal worst_a
        while sampling:
            worst_a = max(worst_a, *site.site_a())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    processes = [start_controller(config)]
    try:
        await listening(ocpp_port)
        for cp in cps:
            await cp.start()
            await cp.plug_in(1, EV(response_delay_s=0.2))
        # 63 − 1 − 20 = 42 A for two cars: 21 A each.
        await until(
            lambda: all(abs(cp.offered_a(1) - 21.0) <= 1.0 for cp in cps),
            15,
            "both cars at their share",
        )
        os.kill(processes[0].pid, signal.SIGKILL)
        processes[0].wait(timeout=10)
        killed_at = time.monotonic()
        took_s = await until(
            lambda: all(cp.offered_a(1) == 6.0 for cp in cps),
            10,
            "both chargers on their fail-safe",
        )
        assert took_s <= 3.5  # the lease, plus a poll
        with sqlite3.connect(audit) as db:
            decisions = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
            commands = db.execute(
                "SELECT COUNT(*) FROM commands WHERE status = 'Accepted'"
            ).fetchone()[0]
        assert decisions >= 5
        assert commands >= 4  # two fail-safes and at least one setpoint each
        processes.append(start_controller(config))
        await listening(ocpp_port)
        for cp in cps:
            await cp.reconnect()  # the old connection died with the old process
        await until(
            lambda: all(abs(cp.offered_a(1) - 21.0) <= 1.0 for cp in cps),
            15,
            "setpoints resumed after the restart",
        )
        assert time.monotonic() - killed_at > 0
    finally:
        sampling = False
        await asyncio.gather(sampler, return_exceptions=True)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await meter.stop()
    assert worst_a <= LIMIT_A
