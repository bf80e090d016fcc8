"""OCPP 2.0.1 stations in a running site, beside 1.6J chargers, over real websockets.

The loop, the dispatcher, leases, the fallback ladder and the compliance check
are the ones 1.6 uses; these tests show they hold the site under its limit
with 2.0.1 stations of every temperament.
"""

from __future__ import annotations

import asyncio

from controller.model import ProfilePurpose
from hil.charge_point_201 import SimulatedStation
from hil.ev import EV
from hil.quirks import Quirks
from tests.rig import Rig, rig, until

LIMIT_A = 63.0


def near(value_a: float, expected_a: float) -> bool:
    """Within 1 A: the base-load estimate moves by a few tenths between decisions."""
    return abs(value_a - expected_a) <= 1.0


def worst_phase_a(r: Rig) -> float:
    """The simulated site's highest phase current now."""
    return max(r.site.site_a())


async def watch_under_limit(r: Rig, seconds: float) -> float:
    """Sample the site for ``seconds``; the highest phase current seen."""
    worst = 0.0
    for _ in range(int(seconds / 0.05)):
        worst = max(worst, worst_phase_a(r))
        await asyncio.sleep(0.05)
    return worst


async def test_mixed_site_stays_under_its_limit() -> None:
    """One 1.6J charger and two 2.0.1 stations share 52 A (63 − 1 margin − 10 base) while
    the loop runs: each car gets its third, and no phase goes over the limit."""
    async with rig(chargers=3, ocpp201=frozenset({1, 2})) as r:
        assert [type(cp) is SimulatedStation for cp in r.charge_points] == [False, True, True]
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.2))
        share = (LIMIT_A - 1 - 10) / 3
        await until(
            lambda: all(near(cp.offered_a(1), share) for cp in r.charge_points),
            10,
            "every car at its share",
        )
        assert await watch_under_limit(r, 2.0) <= LIMIT_A
        protocols = {c.charger_id: c.subprotocols for c in r.charge_points[1:]}
        assert all(p == ["ocpp2.0.1"] for p in protocols.values())


async def test_external_limit_caps_the_allocation() -> None:
    """A station told by a local EMS to keep EVSE 1 at 10 A (NotifyChargingLimit) gets at
    most 10 A from the loop; the other car takes what is left; clearing lifts the cap."""
    async with rig(chargers=2, ocpp201=frozenset({0})) as r:
        station, other = r.charge_points
        assert isinstance(station, SimulatedStation)
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: near(station.offered_a(1), 26.0), 10, "an even split first")
        await station.notify_charging_limit(1, 10.0, source="EMS")
        await until(lambda: station.offered_a(1) <= 10.0, 5, "station capped at 10 A")
        await until(lambda: near(other.offered_a(1), 32.0), 5, "the other car at its rating")
        decision = r.controller.loop.last
        assert decision is not None
        assert decision.targets["cp-0/1"].limit_a <= 10.0
        await station.cleared_charging_limit(1, source="EMS")
        await until(lambda: near(station.offered_a(1), 26.0), 10, "cap lifted")


async def test_stopped_controller_leaves_stations_on_their_fail_safe() -> None:
    """With the controller gone, each 2.0.1 station's leased TxProfile runs out and it falls
    back to its 6 A fail-safe default by itself, within the lease."""
    lease_s = 3.0
    async with rig(chargers=2, ocpp201=frozenset({0, 1}), lease_s=lease_s) as r:
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(
            lambda: all(near(cp.offered_a(1), 26.0) for cp in r.charge_points), 10, "setpoints"
        )
        await r.controller.stop()
        took_s = await until(
            lambda: all(cp.offered_a(1) == 6.0 for cp in r.charge_points),
            lease_s + 2,
            "every station at its fail-safe",
        )
        assert took_s <= lease_s + 0.5


async def test_station_refusing_tx_profiles_is_steered_by_tx_default() -> None:
    """A 2.0.1 station that refuses TxProfiles steps down to TxDefaultProfile and follows."""
    async with rig(
        chargers=2, ocpp201=frozenset({0}), quirks={0: Quirks(rejects_tx_profile=True)}
    ) as r:
        stubborn, normal = r.charge_points
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        routes = r.controller.dispatcher.routes
        await until(
            lambda: "cp-0" in routes and routes["cp-0"].purpose is ProfilePurpose.TX_DEFAULT,
            10,
            "cp-0 stepped down to TxDefault",
        )
        await until(
            lambda: near(stubborn.offered_a(1), 26.0) and near(normal.offered_a(1), 26.0),
            10,
            "both cars at their share",
        )
        assert worst_phase_a(r) <= LIMIT_A + 1.0


async def test_station_ignoring_profiles_is_flagged_and_its_rating_reserved() -> None:
    """A 2.0.1 station that accepts and ignores profiles is flagged non-compliant; its 32 A
    are reserved and the other car is held to 63 − 1 − 10 − 32 = 20 A."""
    async with rig(
        chargers=2,
        ocpp201=frozenset({0}),
        quirks={0: Quirks(ignores_profiles=True)},
        compliance_timeout_s=2,
    ) as r:
        _deaf, normal = r.charge_points
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: "cp-0/1" in r.controller.loop.noncompliant, 10, "cp-0 flagged")
        await until(lambda: near(normal.offered_a(1), 20.0), 5, "the other car at 20 A")


async def test_station_dropping_profiles_on_reboot_gets_them_again() -> None:
    """A 2.0.1 station that forgets its profiles on reboot gets fail-safe and setpoint back."""
    async with rig(ocpp201=frozenset({0}), quirks={0: Quirks(drops_profiles_on_reboot=True)}) as r:
        [station] = r.charge_points
        assert isinstance(station, SimulatedStation)
        await station.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: station.offered_a(1) == 32.0, 5, "offer of 32 A")
        before = len(station.received_201)
        await station.reconnect(reboot=True)
        await until(lambda: len(station.received_201) >= before + 2, 5, "profiles sent again")
        purposes = [p["chargingProfilePurpose"] for _, p in station.received_201[before:]]
        assert purposes[0] == "TxDefaultProfile"
        assert "TxProfile" in purposes
        await until(lambda: station.offered_a(1) == 32.0, 5, "offer of 32 A again")


async def test_slow_station_delays_only_itself() -> None:
    """A 2.0.1 station answering 1.5 s late does not hold up the 1.6 charger's setpoint."""
    async with rig(chargers=2, ocpp201=frozenset({0}), quirks={0: Quirks(slow_ack_s=1.5)}) as r:
        slow, quick = r.charge_points
        await quick.plug_in(1, EV(response_delay_s=0.1))
        took_s = await until(lambda: quick.offered_a(1) == 32.0, 5, "quick charger at 32 A")
        assert took_s < 1.5
        await slow.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: near(slow.offered_a(1), 26.0), 10, "slow station at its share")


async def test_silent_station_times_out_and_is_recorded() -> None:
    """A 2.0.1 station that never answers commands: each ends as a recorded Timeout."""
    async with rig(ocpp201=frozenset({0}), quirks={0: Quirks(silent_to_commands=True)}) as r:
        results = r.controller.dispatcher.results
        await until(lambda: results["Timeout"] >= 1, 8, "a recorded timeout")


async def test_w_only_and_a_only_stations_get_their_unit() -> None:
    """RateUnit W alone → limits in W with numberPhases; A alone → A; both offer the same."""
    async with rig(
        chargers=2,
        ocpp201=frozenset({0, 1}),
        quirks={0: Quirks(w_only=True), 1: Quirks(a_only=True)},
    ) as r:
        watts, amps = r.charge_points
        assert isinstance(watts, SimulatedStation)
        assert isinstance(amps, SimulatedStation)
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(
            lambda: near(watts.offered_a(1), 26.0) and near(amps.offered_a(1), 26.0), 10, "shares"
        )
        w_units = {p["chargingSchedule"][0]["chargingRateUnit"] for _, p in watts.received_201}
        a_units = {p["chargingSchedule"][0]["chargingRateUnit"] for _, p in amps.received_201}
        assert (w_units, a_units) == ({"W"}, {"A"})
        period = watts.received_201[-1][1]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        assert period["numberPhases"] == 3
