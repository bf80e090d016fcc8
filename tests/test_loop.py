"""The whole loop over real sockets: meter over Modbus TCP, chargers over OCPP websockets.

Each test starts a SiteController against simulated devices on loopback and
checks a safety behaviour end to end: fail-safe on boot, leases, an
immediate decrease on an over-limit reading, hold and fail-safe on a meter
outage with recovery, and chargers falling back by themselves when the
controller dies.
"""

from __future__ import annotations

import asyncio

from controller.decide import Mode
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from tests.rig import rig, until


def purposes(cp: SimulatedChargePoint) -> list[str]:
    """The purposes of the profiles a simulated charger received, in order."""
    return [p["chargingProfilePurpose"] for _, p in cp.received_profiles]


async def test_boot_gets_failsafe_then_session_gets_a_lease() -> None:
    """Invariant 3: the fail-safe default comes first; each live setpoint is a bounded lease."""
    async with rig(lease_s=60) as r:
        [cp] = r.charge_points
        await until(lambda: bool(cp.received_profiles), 5, "fail-safe profile on boot")
        connector, first = cp.received_profiles[0]
        assert (connector, first["chargingProfilePurpose"]) == (0, "TxDefaultProfile")
        assert first["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0
        assert "validTo" not in first
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: "TxProfile" in purposes(cp), 5, "a TxProfile for the session")
        _, lease = next(
            p for p in cp.received_profiles if p[1]["chargingProfilePurpose"] == "TxProfile"
        )
        assert lease["chargingSchedule"]["duration"] <= 60 + 5
        assert "validTo" in lease
        # 63 A − 1 A margin − 10 A base = 52 A free; the charger's rating is 32 A.
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")


async def test_over_limit_reading_is_answered_at_once() -> None:
    """Invariant 5: a reading over the limit triggers a decrease without waiting for a tick."""
    async with rig(interval_s=3) as r:  # the reaction must come well before the next tick
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        await until(lambda: max(cp.draw_a()) == 32.0, 5, "EV drawing 32 A")
        r.base_a[:] = [45.0, 10.0, 10.0]  # 45 + 32 = 77 A on L1: over 63 A
        took_s = await until(lambda: cp.offered_a(1) <= 17.0, 5, "decrease to 17 A")
        assert took_s < 1.5  # well before the next tick
        loop = r.controller.loop
        await until(
            lambda: loop.last is not None and loop.last.targets["cp-0/1"].reason == "site L1",
            3,
            "the site's L1 limit named as the binding constraint",
        )


async def test_meter_outage_holds_then_fails_safe_then_recovers() -> None:
    """Invariant 4: doubtful data stops increases, then fail-safe; good data brings recovery."""
    async with rig() as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        r.meter.fault = "silent"
        loop = r.controller.loop
        await until(lambda: loop.last is not None and loop.last.mode is Mode.HOLD, 3, "hold")
        await until(
            lambda: loop.last is not None and loop.last.mode is Mode.FAILSAFE, 4, "fail-safe"
        )
        await until(lambda: cp.offered_a(1) == 6.0, 3, "charger at its fail-safe 6 A")
        r.meter.fault = None
        await until(
            lambda: loop.last is not None and loop.last.mode is Mode.NORMAL, 5, "normal again"
        )
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer back to 32 A")


async def test_chargers_fall_back_by_themselves_when_the_controller_dies() -> None:
    """Invariant 3: with the controller gone, each lease runs out and the fail-safe applies."""
    async with rig(chargers=2, lease_s=2) as r:
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(
            lambda: all(cp.offered_a(1) > 6.0 for cp in r.charge_points),
            5,
            "setpoints above the fail-safe",
        )
        await r.controller.stop()  # the controller dies; nothing renews the leases
        took_s = await until(
            lambda: all(cp.offered_a(1) == 6.0 for cp in r.charge_points),
            5,
            "both chargers back on their 6 A fail-safe",
        )
        assert took_s <= 2.5


async def test_leases_are_renewed_while_the_controller_lives() -> None:
    """Invariant 3: a live controller renews each lease before it runs out."""
    async with rig(lease_s=2) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        await asyncio.sleep(3.0)  # longer than one lease
        assert cp.offered_a(1) == 32.0
        assert purposes(cp).count("TxProfile") >= 2


async def test_reconnect_without_boot_is_commanded_again() -> None:
    """A charger that reconnects without BootNotification (our restart, a network drop) gets its
    fail-safe profile all the same, within the boot wait."""
    import json

    from websockets.asyncio.client import connect

    async with rig() as r:
        # This connection replaces the rig's own cp-0, and never sends BootNotification.
        url = f"ws://127.0.0.1:{r.controller.ocpp.port}/ocpp/cp-0"
        async with connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            for _ in range(10):
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                if frame[0] == 2 and frame[2] == "SetChargingProfile":
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
                    profile = frame[3]["csChargingProfiles"]
                    assert frame[3]["connectorId"] == 0
                    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
                    return
        raise AssertionError("no fail-safe profile after a reconnect without boot")


def test_transaction_ids_rise_across_restarts() -> None:
    """A controller started later hands out higher transaction ids than one started earlier."""
    from datetime import UTC, datetime

    from controller.clock import ManualClock
    from controller.site_adapters import first_transaction_id

    early = ManualClock(wall=datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
    late = ManualClock(wall=datetime(2026, 11, 21, 10, 5, tzinfo=UTC))
    assert first_transaction_id(late) - first_transaction_id(early) == 300
    assert first_transaction_id(late) < 2**31
