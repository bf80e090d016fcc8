"""A session whose charger rejoins is widened only from readings its reports settled.

Between a charger's reconnect and the controller's first decision on its session
(after the boot wait), the car can drop for a reason no decision of this
controller caused: the lease of a profile it never logged runs out (a previous
controller's, after a restart) and the charger falls to its fail-safe. Readings
after that drop and before the car's next report must not take its earlier,
higher report, or the base load reads low by the drop and the site is planned
over its limit.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from hil.ev import EV
from tests.leaving import leave_at_share, watch
from tests.rig import rig, until

FREE_A = 63.0 - 1.0 - 10.0
"""What the two cars may share on the rig's site: limit − margin − the building's 10 A."""


async def test_a_car_dropping_before_the_first_decision_on_it_is_not_planned_low() -> None:
    """cp-1 reconnects holding a 26 A profile that runs out 1.3 s later (its fail-safe is
    6 A); it reports 26 A at 1.2 s and next at 2.4 s; the controller takes it back at 2 s.
    The site stays under its limit and the car is offered no more than its fair share."""
    async with rig(chargers=2, lease_s=60) as r:
        cp0, cp1 = r.charge_points
        for cp in (cp0, cp1):
            await cp.plug_in(1, EV(response_delay_s=0.1))
        share_a = FREE_A / 2
        await until(lambda: min(r.site.site_a()) >= 10.0 + 2 * share_a - 0.5, 10, "both at 26 A")
        # Past the base-load window: while cp-1 is away its draw is in the base load, and
        # the readings from before its car ramped up must have left the window by then.
        await asyncio.sleep(3.5)
        cp1.meter_interval_s = 1.2
        await cp1.reconnect()
        # A profile this controller never sent: its lease runs out 1.3 s after the reconnect.
        _, sent = next(p for p in reversed(cp1.received_profiles) if p[0] == 1)
        ends = datetime.now(UTC) + timedelta(seconds=1.3)
        assert cp1.set_profile(1, sent | {"validTo": ends.isoformat()}) == "Accepted"
        highest_offer_a, worst_a = await watch(cp1, r.site.site_a, 5.0)
        assert highest_offer_a <= share_a
        assert worst_a <= 63.0
        assert cp1.offered_a(1) > 6.0  # steered again, above its fail-safe


WINDOW_S = 15.0
"""The base-load window of that test: long enough for cp-1 to ramp, report and leave in it."""


async def test_a_charger_leaving_just_after_its_car_ramped_up_is_not_planned_low() -> None:
    """cp-0 charges alone at 32 A; cp-1's car plugs in and ramps up to its share, and cp-1
    drops off the network soon after, while a reading from before its car was at its share
    is still in the base-load window. Its car charges on at its last setpoint; that reading
    must not take it lower: cp-0 is never offered more than the room beside the highest
    limit cp-1 may hold, the room is offered to cp-0, and the site stays under its limit."""
    async with rig(chargers=2, lease_s=60, base_load_window_s=WINDOW_S) as r:
        cp0, cp1 = r.charge_points
        await cp0.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: min(r.site.site_a()) >= 10.0 + 32.0 - 0.5, 10, "cp-0 at 32 A")
        away_a, low_at = await leave_at_share(r.controller, cp1, FREE_A / 2)
        # A reading from before it was at its share (its arrival, or a cut) is still in
        # the window: one the meter took at least a poll after it, with a second to spare.
        assert time.monotonic() - low_at < WINDOW_S - 1.0, "no low reading in the window"
        room_a = FREE_A - away_a
        highest_offer_a, worst_a = await watch(cp0, r.site.site_a, 5.0)
        assert highest_offer_a <= room_a + 0.1
        assert worst_a <= 63.0
        assert highest_offer_a >= room_a - 1.0  # the room beside the away car is offered
        assert cp0.offered_a(1) >= room_a - 1.0  # and stays offered: no cut-backs


async def test_a_charger_back_without_booting_cuts_no_other_car() -> None:
    """Three cars share the site; cp-2 drops its websocket and reconnects without booting
    (a network blip). It kept its profiles, so it is not planned at its 32 A rating when
    the controller takes it back (with the rating reserved, and its car still in the
    readings its limits no longer floor, cp-0 and cp-1 were paused): no other car is
    paused, cp-2 is steered again from the limit it held, and the site stays under its
    limit throughout. (The others may be cut for a moment: until cp-2's car reports after
    the decision on its return, the readings count it as 0 A, the base load's safe side.)"""
    async with rig(chargers=3, lease_s=60) as r:
        cps = r.charge_points
        for cp in cps:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        share_a = FREE_A / 3

        def settled() -> bool:
            return all(abs(cp.offered_a(1) - share_a) <= 0.5 for cp in cps) and (
                min(r.site.site_a()) >= 10.0 + 3 * share_a - 1.5
            )

        await until(settled, 20, "three cars at their share")
        await asyncio.sleep(1.0)
        await until(settled, 10, "still at their share")
        held_before = cps[2].offered_a(1)
        profiles_before = len(cps[2].received_profiles)
        lowest_a, worst_a = float("inf"), 0.0
        await cps[2].reconnect()
        # The boot wait (2 s), the decision on its return, and its answers.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            lowest_a = min(lowest_a, cps[0].offered_a(1), cps[1].offered_a(1))
            worst_a = max(worst_a, *r.site.site_a())
            await asyncio.sleep(0.02)
        assert lowest_a >= 6.0, f"another car paused: {lowest_a:.1f} A"
        assert worst_a <= 63.0
        # Taken back: its fail-safe and its setpoint sent again, at the limit it held.
        assert len(cps[2].received_profiles) >= profiles_before + 2
        assert abs(cps[2].offered_a(1) - held_before) <= 1.0
