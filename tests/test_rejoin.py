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

from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from tests.rig import Rig, rig, until

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
        highest_offer_a, worst_a = await _watch(r, cp1, 5.0)
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
        share_a = FREE_A / 2
        low_at = [time.monotonic()]  # when cp-1's car last drew less than its share

        async def watch_low() -> None:
            while True:
                if min(cp1.draw_a()) < share_a - 1.0:
                    low_at[0] = time.monotonic()
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch_low())
        await cp1.plug_in(1, EV(response_delay_s=0.1))

        def shared() -> bool:
            """cp-1 at its share, and its last report says so: a car still ramping when its
            charger leaves is counted twice until it has settled (its draw since its last
            report is both in the readings and in its reservation), which pauses cp-0 on
            the safe side."""
            seen = {s.key: s for s in r.controller.state.snapshot(time.monotonic()).sessions}
            reported = seen.get("cp-1/1")
            return (
                cp1.offered_a(1) >= share_a - 0.5
                and min(cp1.draw_a()) >= share_a - 0.5
                and reported is not None
                and min(reported.measured_a or (0.0,)) >= share_a - 0.5
            )

        # Its arrival may pause and resume the cars a few times first (longer under load).
        await until(shared, 30, "cp-1 ramped up to its share")
        await asyncio.sleep(0.5)
        # The over-limit reaction to its ramp may cut it for a moment: leave at its share.
        await until(shared, 15, "cp-1 back at its share")
        before_a = cp1.offered_a(1)
        await cp1.stop()
        watcher.cancel()
        # A reading from before it was at its share (its arrival, or a cut) is still in
        # the window: one the meter took at least a poll after it, with a second to spare.
        assert time.monotonic() - low_at[0] < WINDOW_S - 1.0, "no low reading in the window"
        # Its last setpoint, or one that reached it as it left: it draws this while away.
        away_a = max(before_a, cp1.offered_a(1))
        room_a = FREE_A - away_a
        highest_offer_a, worst_a = await _watch(r, cp0, 5.0)
        assert highest_offer_a <= room_a + 0.1
        assert worst_a <= 63.0
        assert highest_offer_a >= room_a - 1.0  # the room beside the away car is offered
        assert cp0.offered_a(1) >= room_a - 1.0  # and stays offered: no cut-backs


async def _watch(r: Rig, cp: SimulatedChargePoint, seconds: float) -> tuple[float, float]:
    """For ``seconds``: the highest offer on ``cp``'s connector 1 and the highest site phase."""
    highest_offer_a, worst_a = 0.0, 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        highest_offer_a = max(highest_offer_a, cp.offered_a(1))
        worst_a = max(worst_a, *r.site.site_a())
        await asyncio.sleep(0.05)
    return highest_offer_a, worst_a
