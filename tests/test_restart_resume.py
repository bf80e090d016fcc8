"""A car that charges through a controller restart keeps its setpoint: no pause, no cut.

`headroom run` is a separate process; the charger and the meter live in the test's
process. The car draws 22 A on a setpoint with a 120 s lease when the controller is
killed (SIGKILL). The charger holds that TxProfile whatever happens to the
controller; the restarted controller knows it from its state store. When the charger
reconnects it is given its fail-safe default again, and the restored session is
confirmed by the charger's reports: from then on the session counts as held at its
22 A (the charger still holds it) rather than as one with no limit acknowledged yet,
whose rating would be reserved and which would be told the fail-safe current, or be
paced up from the fail-safe current step by step.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.quirks import Quirks
from hil.site import SimulatedSite, WiredCharger
from tests.rig import until
from tests.test_restart import (
    LIMIT_A,
    free_port,
    listening,
    log_lines,
    start_controller,
    stop,
    stored_sessions,
    write_config,
)

BASE_A = (40.0, 40.0, 40.0)
SHARE_A = LIMIT_A - 1 - BASE_A[0]
"""22 A: what the one car may have beside the base load."""


def configure(config: Path, ports: dict[str, int], tmp_path: Path) -> None:
    """One 32 A charger (its rating does not fit beside the base load); a small ramp step,
    so a car paced up from the fail-safe current would take many steps to get back."""
    write_config(config, ports, tmp_path, lease_s=120)
    keys = yaml.safe_load(config.read_text(encoding="utf-8"))
    keys["chargers"] = [{"id": "cp-0"}]
    keys["control"].update(ramp_step_a=4, response_time_s=2, response_time_max_s=10)
    config.write_text(yaml.safe_dump(keys), encoding="utf-8")


@pytest.mark.parametrize("slow_ack_s", [0.0, 2.0], ids=["prompt", "slow-to-answer"])
async def test_a_charging_car_keeps_its_setpoint_through_a_restart(
    tmp_path: Path, slow_ack_s: float
) -> None:
    """After kill -9 and a restart within the lease, the charger is never sent a limit below
    the car's 22 A share (neither the fail-safe current nor a pause), its offer never drops,
    the car keeps drawing about 22 A, and the site stays under its limit throughout. Also
    for a charger that answers each command 2 s late after the restart: its fail-safe
    default is in only ~10 s after it is back, long after its reports confirm the session."""
    site = SimulatedSite(lambda _t: BASE_A, [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    ports = {"ocpp": free_port(), "meter": meter.port, "metrics": free_port()}
    config, log, state = tmp_path / "site.yaml", tmp_path / "controller.log", tmp_path / "state.db"
    configure(config, ports, tmp_path)
    url = f"ws://127.0.0.1:{ports['ocpp']}/ocpp"
    cp = SimulatedChargePoint("cp-0", url, meter_interval_s=0.25)
    site.chargers.append(WiredCharger(cp))
    ev = EV(response_delay_s=0.5)
    worst_a, lowest_offer_a, lowest_draw_a = 0.0, 99.0, 99.0
    watching = False

    async def sample() -> None:
        nonlocal worst_a, lowest_offer_a, lowest_draw_a
        while True:
            worst_a = max(worst_a, *site.site_a())
            if watching:
                lowest_offer_a = min(lowest_offer_a, cp.offered_a(1))
                lowest_draw_a = min(lowest_draw_a, max(ev.draw_a()))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    process = start_controller(config, log)
    try:
        await listening(ports["ocpp"])
        await cp.start()
        tx = await cp.plug_in(1, ev)
        await until(lambda: cp.offered_a(1) == SHARE_A, 30, "the car at its share")
        await until(
            lambda: (
                (stored_sessions(state).get("cp-0/1", {}).get("setpoint") or {}).get("limit_a")
                == SHARE_A
            ),
            10,
            "its setpoint in the state store",
        )
        await until(lambda: max(ev.draw_a()) >= SHARE_A - 0.5, 10, "the car drawing its share")
        watching = True
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        cp.quirks = Quirks(slow_ack_s=slow_ack_s)

        process = start_controller(config, log)
        await listening(ports["ocpp"])
        since = len(cp.received_profiles)
        await cp.reconnect()
        await until(lambda: log_lines(log, "restored session confirmed"), 15, "confirmed")

        def purposes() -> list[str]:
            return [p["chargingProfilePurpose"] for _, p in cp.received_profiles[since:]]

        await until(lambda: "TxDefaultProfile" in purposes(), 30, "the fail-safe default in")
        await asyncio.sleep(3.0 + 2 * slow_ack_s)  # a few decisions, a command answered late
        sent = [
            (p["chargingProfilePurpose"], p.get("transactionId"), p["chargingSchedule"])
            for _, p in cp.received_profiles[since:]
        ]
        tx_limits = [
            schedule["chargingSchedulePeriod"][0]["limit"]
            for purpose, transaction_id, schedule in sent
            if purpose == "TxProfile" and transaction_id == tx
        ]
        assert [purpose for purpose, _, _ in sent].count("TxProfile") == len(tx_limits), sent
        assert min(tx_limits, default=SHARE_A) >= SHARE_A, sent
        assert lowest_offer_a >= SHARE_A, lowest_offer_a
        assert lowest_draw_a >= SHARE_A - 1.0, lowest_draw_a
        assert cp.offered_a(1) == SHARE_A
        [held] = log_lines(log, "restored setpoint held")
        assert (held["session"], held["limit_a"]) == ("cp-0/1", SHARE_A)
    finally:
        sampler.cancel()
        stop(process)
        await cp.stop()
        await meter.stop()
    assert worst_a <= LIMIT_A
