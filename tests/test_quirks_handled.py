"""Chargers of every temperament, over real websockets: each quirk detected or worked around,
and the site kept under its limit."""

from __future__ import annotations

import asyncio

from controller.model import ProfilePurpose
from hil.ev import EV
from hil.quirks import Quirks
from tests.rig import rig, until


def near(value_a: float, expected_a: float) -> bool:
    """Within 1 A: the base-load estimate moves by a few tenths between decisions."""
    return abs(value_a - expected_a) <= 1.0


def site_l1_a(r: object) -> float:
    """The simulated site's true L1 current."""
    return r.site.site_a()[0]  # type: ignore[attr-defined]


async def test_charger_refusing_tx_profiles_is_steered_by_tx_default() -> None:
    """A charger that refuses every TxProfile still follows the loop, through TxDefaultProfile."""
    async with rig(chargers=2, quirks={0: Quirks(rejects_tx_profile=True)}) as r:
        stubborn, normal = r.charge_points
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(
            lambda: (
                r.controller.dispatcher.routes.get("cp-0") is not None
                and r.controller.dispatcher.routes["cp-0"].purpose is ProfilePurpose.TX_DEFAULT
            ),
            10,
            "cp-0 stepped down to TxDefault",
        )
        # 63 − 1 margin − 10 base = 52 A shared by two 3-phase cars: 26 A each.
        await until(
            lambda: near(stubborn.offered_a(1), 26.0) and near(normal.offered_a(1), 26.0),
            10,
            "both cars at their share",
        )
        assert site_l1_a(r) <= 63.0 + 1.0


async def test_charger_ignoring_profiles_is_flagged_and_its_rating_reserved() -> None:
    """A charger that accepts and ignores profiles draws its rating; it is flagged after the
    compliance timeout and the other car is held so that the site stays under its limit."""
    async with rig(
        chargers=2, quirks={0: Quirks(ignores_profiles=True)}, compliance_timeout_s=2
    ) as r:
        _deaf, normal = r.charge_points
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        loop = r.controller.loop
        await until(lambda: "cp-0/1" in loop.noncompliant, 10, "cp-0 flagged non-compliant")
        # Its 32 A rating is reserved: 63 − 1 − 10 − 32 = 20 A for the other car.
        await until(lambda: near(normal.offered_a(1), 20.0), 5, "the other car at 20 A")
        await until(lambda: near(max(normal.draw_a()), 20.0), 5, "the other car drawing 20 A")
        assert site_l1_a(r) <= 63.0 + 1.0


async def test_reboot_that_drops_profiles_gets_them_again() -> None:
    """A charger that loses its profiles on reboot gets its fail-safe and setpoint back."""
    async with rig(quirks={0: Quirks(drops_profiles_on_reboot=True)}) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        before = len(cp.received_profiles)
        await cp.reconnect(reboot=True)
        await until(
            lambda: len(cp.received_profiles) >= before + 2, 5, "fail-safe and setpoint sent again"
        )
        purposes = [p["chargingProfilePurpose"] for _, p in cp.received_profiles[before:]]
        assert purposes[0] == "TxDefaultProfile"
        assert "TxProfile" in purposes
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A again")


async def test_slow_charger_delays_only_itself() -> None:
    """A charger that answers after 1.5 s does not hold up the other charger's setpoint."""
    async with rig(chargers=2, quirks={0: Quirks(slow_ack_s=1.5)}) as r:
        slow, quick = r.charge_points
        await quick.plug_in(1, EV(response_delay_s=0.1))
        took_s = await until(lambda: quick.offered_a(1) == 32.0, 5, "quick charger at 32 A")
        assert took_s < 1.5
        await slow.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: near(slow.offered_a(1), 26.0), 20, "slow charger at its share")


async def test_silent_charger_times_out_and_is_recorded() -> None:
    """A charger that never answers commands: each command ends as a recorded Timeout."""
    async with rig(quirks={0: Quirks(silent_to_commands=True)}) as r:  # 2 s call timeout
        results = r.controller.dispatcher.results
        await until(lambda: results["Timeout"] >= 1, 6, "a recorded timeout")
        await asyncio.sleep(0)


async def test_w_only_charger_gets_watts_and_follows() -> None:
    """A charger that takes only W (it says so in GetConfiguration) gets its limits in W, with
    numberPhases, and offers the same current as an A charger would."""
    async with rig(quirks={0: Quirks(w_only=True)}) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: near(cp.offered_a(1), 32.0), 10, "offer of 32 A")
        units = {p["chargingSchedule"]["chargingRateUnit"] for _, p in cp.received_profiles}
        assert units == {"W"}
        _, last = cp.received_profiles[-1]
        period = last["chargingSchedule"]["chargingSchedulePeriod"][0]
        assert period["numberPhases"] == 3
        assert period["limit"] == 32.0 * 230 * 3
