"""Kill -9 of the controller mid-session, then a restart: the site stays safe throughout.

The controller runs as a real `headroom run` process against simulated chargers
and a simulated meter in the test's process. When it is killed, each charger
falls back to its fail-safe by itself once its lease runs out; the audit log
keeps every decision up to the kill; the restarted controller knows the sessions
from its state store before any charger reports again, re-asserts their
setpoints (no higher than the fail-safe once the lease has run out), and steers
them as before once they report.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

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


def start_controller(config: Path, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`headroom run --config` as a separate process; its JSON log lines go to ``log``."""
    with log.open("ab") if log is not None else open(os.devnull, "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
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


def write_config(path: Path, ports: dict[str, int], tmp_path: Path, lease_s: float) -> None:
    """The site: 63 A, two chargers, a meter, an audit log, a state store and /metrics."""
    path.write_text(
        yaml.safe_dump(
            {
                "site": {
                    "id": "k",
                    "max_current_a": LIMIT_A,
                    "safety_margin_a": 1,
                    "failsafe_current_a": 6,
                },
                "control": {"interval_s": 0.5, "lease_s": lease_s, "min_increase_interval_s": 1},
                "ocpp": {"host": "127.0.0.1", "port": ports["ocpp"]},
                "meter": {"host": "127.0.0.1", "port": ports["meter"], "poll_interval_s": 0.25},
                "audit": {"path": str(tmp_path / "audit.db")},
                "store": {"path": str(tmp_path / "state.db")},
                "metrics": {"host": "127.0.0.1", "port": ports["metrics"]},
                "chargers": [{"id": "cp-0"}, {"id": "cp-1"}],
            }
        ),
        encoding="utf-8",
    )


def decisions_made(port: int) -> float:
    """headroom_decisions_total, scraped from the controller's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "headroom_decisions_total"
    )


def stored_sessions(path: Path, site_id: str = "k") -> dict[str, dict[str, Any]]:
    """The session records of ``site_id`` in the state store, by connector."""
    with sqlite3.connect(path) as db:
        kind = f"session/{site_id}"
        rows = db.execute("SELECT key, value FROM state WHERE kind = ?", (kind,)).fetchall()
    return {key: json.loads(value) for key, value in rows}


def log_lines(path: Path, event: str) -> list[dict[str, Any]]:
    """The controller's JSON log lines for ``event``."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def tx_profiles(cp: SimulatedChargePoint, since: int, transaction_id: int) -> list[float]:
    """The limits of the TxProfiles for ``transaction_id`` the charger accepted after the
    first ``since`` profiles."""
    return [
        p["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for _, p in cp.received_profiles[since:]
        if p["chargingProfilePurpose"] == "TxProfile" and p.get("transactionId") == transaction_id
    ]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def test_kill_9_and_restart_keep_the_site_safe(tmp_path: Path) -> None:
    """Leases expire to the fail-safe while the controller is dead, the site never goes over
    its limit, the audit log has every decision made before the kill, the restarted
    controller knows the sessions (transaction ids, learned phases) from its store before the
    chargers report again and re-asserts their setpoints (within the lease as they were,
    after it no higher than the fail-safe), and steers them as before once they report."""
    site = SimulatedSite(lambda _t: BASE_A, [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    ports = {"ocpp": free_port(), "meter": meter.port, "metrics": free_port()}
    config, log, state = tmp_path / "site.yaml", tmp_path / "controller.log", tmp_path / "state.db"
    write_config(config, ports, tmp_path, lease_s=3)
    url = f"ws://127.0.0.1:{ports['ocpp']}/ocpp"
    cps = [SimulatedChargePoint(f"cp-{i}", url, meter_interval_s=0.25) for i in range(2)]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    worst_a, lowest_offer_a = 0.0, {cp.charger_id: 99.0 for cp in cps}
    sampling, watching_offers = True, False

    async def sample() -> None:
        nonlocal worst_a
        while sampling:
            worst_a = max(worst_a, *site.site_a())
            if watching_offers:
                for cp in cps:
                    lowest_offer_a[cp.charger_id] = min(
                        lowest_offer_a[cp.charger_id], cp.offered_a(1)
                    )
            await asyncio.sleep(0.05)

    def at_share() -> bool:
        return all(abs(cp.offered_a(1) - 21.0) <= 1.0 for cp in cps)

    async def reconnect_quietly() -> list[int]:
        """Reconnect without booting and without MeterValues for 30 s; the profile count
        of each charger before it."""
        marks = []
        for cp in cps:
            cp.meter_interval_s = 30.0
            marks.append(len(cp.received_profiles))
            await cp.reconnect()
        return marks

    def sent(marks: list[int]) -> list[list[float]]:
        """Per charger, the TxProfile limits for its session since ``marks``."""
        return [tx_profiles(cp, m, tx) for cp, m, tx in zip(cps, marks, txs, strict=True)]

    sampler = asyncio.create_task(sample())
    processes = [start_controller(config, log)]
    try:
        await listening(ports["ocpp"])
        await cps[0].start()
        tx0 = await cps[0].plug_in(1, EV(response_delay_s=0.2))
        await cps[1].start()
        tx1 = await cps[1].plug_in(1, EV(phases=(0,), response_delay_s=0.2))  # 1-phase car
        txs = (tx0, tx1)
        # 63 − 1 − 20 = 42 A on L1 for two cars: 21 A each.
        await until(at_share, 15, "both cars at their share")
        await until(
            lambda: (
                {
                    k: (r["transaction_id"], r["belief"]["phases"])
                    for k, r in stored_sessions(state).items()
                }
                == {"cp-0/1": (tx0, [0, 1, 2]), "cp-1/1": (tx1, [0])}
            ),
            10,
            "sessions and learned phases in the state store",
        )
        made = decisions_made(ports["metrics"])
        os.kill(processes[0].pid, signal.SIGKILL)
        processes[0].wait(timeout=10)
        took_s = await until(
            lambda: all(cp.offered_a(1) == 6.0 for cp in cps), 10, "both on their fail-safe"
        )
        assert took_s <= 3.5  # the lease, plus a poll
        with sqlite3.connect(tmp_path / "audit.db") as db:
            audited = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        assert audited >= made >= 5  # every decision counted before the kill was written

        # Restart 1, the leases run out: the sessions come from the store, and what is
        # re-asserted before the chargers report is no more than their fail-safe.
        write_config(config, ports, tmp_path, lease_s=20)
        processes.append(start_controller(config, log))
        await listening(ports["ocpp"])
        restored = {
            (r["charger_id"], r["transaction_id"], tuple(r["phases"]))
            for r in log_lines(log, "session restored")
        }
        assert restored == {("cp-0", tx0, (0, 1, 2)), ("cp-1", tx1, (0,))}
        marks = await reconnect_quietly()
        await until(
            lambda: all(sent(marks)), 10, "TxProfiles for the restored sessions, no MeterValues"
        )
        assert all(max(limits) <= 6.0 for limits in sent(marks))
        for cp in cps:  # the chargers report again: confirmed, steered to their share
            cp.meter_interval_s = 0.25
            await cp.reconnect()
        await until(at_share, 15, "setpoints resumed after the restart")

        # Restart 2, within the 20 s lease: the setpoints are re-asserted as they were and
        # no charger drops to its fail-safe.
        await until(
            lambda: all(
                (p := r["setpoint"])
                and p["limit_a"] == 21.0
                and p["lease_until"] - p["accepted_at"] == pytest.approx(20.0)
                for r in stored_sessions(state).values()
            ),
            10,
            "the 21 A setpoints with their 20 s lease in the store",
        )
        watching_offers = True
        os.kill(processes[1].pid, signal.SIGKILL)
        processes[1].wait(timeout=10)
        processes.append(start_controller(config, log))
        await listening(ports["ocpp"])
        marks = await reconnect_quietly()
        await until(
            lambda: all(21.0 in limits for limits in sent(marks)),
            10,
            "the 21 A setpoints re-asserted before any MeterValues",
        )
        assert all(low >= 20.0 for low in lowest_offer_a.values()), lowest_offer_a
    finally:
        sampling = False
        await asyncio.gather(sampler, return_exceptions=True)
        for process in processes:
            stop(process)
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await meter.stop()
    assert worst_a <= LIMIT_A
