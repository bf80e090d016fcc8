"""A charger caught ignoring its setpoints is not trusted again because the controller restarted.

`headroom run` is a separate process; the chargers and the meter live in the test's
process. One charger accepts every profile and ignores it (its car draws its 32 A
rating): the first controller flags it after the compliance timeout and reserves its
rating. The controller is killed (SIGKILL) and restarted with a compliance timeout far
longer than the test, so only the state store can tell it about that charger: it must
reserve the rating from its first decision, and the other car must never be offered
the share it could take beside a charger that follows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import yaml

from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.quirks import Quirks
from hil.site import SimulatedSite, WiredCharger
from tests.rig import until
from tests.test_restart import (
    BASE_A,
    LIMIT_A,
    free_port,
    listening,
    log_lines,
    start_controller,
    stop,
    stored_sessions,
    write_config,
)

HELD_A = LIMIT_A - 1 - BASE_A[0] - 32.0
"""What the obedient car may have beside the deaf charger's reserved 32 A rating."""
TRUSTED_SHARE_A = (LIMIT_A - 1 - BASE_A[0]) / 2
"""What it would be offered if the deaf charger were trusted to follow its share."""


def with_compliance_timeout(config: Path, timeout_s: float) -> None:
    keys = yaml.safe_load(config.read_text(encoding="utf-8"))
    keys["control"]["compliance_timeout_s"] = timeout_s
    config.write_text(yaml.safe_dump(keys), encoding="utf-8")


async def test_a_flagged_charger_stays_flagged_across_a_restart(tmp_path: Path) -> None:
    """The flag is stored with the session; after kill -9 and a restart the deaf charger's
    rating is reserved at once: the other car is held at what is left beside it, and the
    site stays under its limit, although the new controller could not catch it again."""
    site = SimulatedSite(lambda _t: BASE_A, [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    ports = {"ocpp": free_port(), "meter": meter.port, "metrics": free_port()}
    config, log, state = tmp_path / "site.yaml", tmp_path / "controller.log", tmp_path / "state.db"
    write_config(config, ports, tmp_path, lease_s=3)
    with_compliance_timeout(config, 2)
    url = f"ws://127.0.0.1:{ports['ocpp']}/ocpp"
    deaf = SimulatedChargePoint(
        "cp-0", url, meter_interval_s=0.25, quirks=Quirks(ignores_profiles=True)
    )
    obedient = SimulatedChargePoint("cp-1", url, meter_interval_s=0.25)
    cps = [deaf, obedient]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    process = start_controller(config, log)
    try:
        await listening(ports["ocpp"])
        for cp in cps:
            await cp.start()
            await cp.plug_in(1, EV(response_delay_s=0.2))
        await until(
            lambda: stored_sessions(state).get("cp-0/1", {}).get("noncompliant") is not None,
            15,
            "the deaf charger's flag in the state store",
        )
        # Its composite schedule or its draw gives it away, whichever is seen first.
        why = stored_sessions(state)["cp-0/1"]["noncompliant"]
        await until(lambda: abs(obedient.offered_a(1) - HELD_A) <= 1.0, 10, "the other car held")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

        with_compliance_timeout(config, 600)
        process = start_controller(config, log)
        await listening(ports["ocpp"])
        [restored] = [r for r in log_lines(log, "session restored") if r["charger_id"] == "cp-0"]
        assert restored["noncompliant"] == why
        for cp in cps:
            await cp.reconnect()
        highest_offer_a, worst_a = 0.0, 0.0
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            highest_offer_a = max(highest_offer_a, obedient.offered_a(1))
            worst_a = max(worst_a, *site.site_a())
            await asyncio.sleep(0.05)
        # Trusted, the deaf charger would have left the other car half the room (21 A). The
        # restarted controller starts from what it knows (readings before its first decision
        # on a session count that car as 0 A: its old lease may have run out onto the
        # fail-safe unseen) and widens to the 10 A left beside the rating, never beyond.
        assert highest_offer_a < TRUSTED_SHARE_A - 1.0
        assert highest_offer_a <= HELD_A + 1.0
        assert worst_a <= LIMIT_A
        assert stored_sessions(state)["cp-0/1"]["noncompliant"] is not None  # still flagged
    finally:
        stop(process)
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        await meter.stop()
