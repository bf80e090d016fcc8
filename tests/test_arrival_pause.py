"""A car that arrives does not pause the car already charging when the site can keep it.

On a tight site a newcomer's car may ramp before the present car follows its cut:
the meter reads over the limit, and that reading, less what the cars reported
before it, is the most the building can have drawn then. Planned from that bound
both cars keep their minimum. What the cars answer to that reading (the cuts
they report after it), and a newer reading taken while they ramp back, must not
read as building load: they paused the present car ("minimum not available")
and resumed it a moment later (controller/over_limit.py).
"""

from __future__ import annotations

import asyncio
import time

from hil.ev import EV
from tests.rig import rig, until

LIMIT_A = 35.0
"""The site's limit; the rig's margin is 1 A and its building draws 10 A."""
FREE_A = LIMIT_A - 1.0 - 10.0
"""What the cars may share: 24 A, one car at its 32 A rating would be cut to it."""
MIN_A = 6.0


async def test_an_arriving_car_does_not_pause_the_car_already_charging() -> None:
    """cp-0 charges alone at 24 A and has reported it; cp-1's car arrives and follows its
    12 A at once, cp-0's car its cut to 12 A only 0.5 s later (the site reads 46 A, over
    its 35 A limit). Taking cp-0 at its 24 A report and cp-1 at nothing, that reading's
    building is at most 22 A: 12 A are left, both cars' minimum. cp-0 is never paused,
    and both share the room once the reports catch up."""
    async with rig(
        chargers=2,
        lease_s=60,
        base_load_window_s=15.0,
        site_keys={"max_current_a": LIMIT_A},
    ) as r:
        cp0, cp1 = r.charge_points
        await cp0.plug_in(1, EV(response_delay_s=0.5))
        await until(lambda: min(r.site.site_a()) >= 10.0 + FREE_A - 0.5, 10, "cp-0 at 24 A")
        await asyncio.sleep(1.0)  # its reports say so
        await cp1.plug_in(1, EV(response_delay_s=0.1))
        lowest_a = cp0.offered_a(1)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            lowest_a = min(lowest_a, cp0.offered_a(1))
            await asyncio.sleep(0.02)
        assert lowest_a >= MIN_A, "cp-0 paused by cp-1's arrival"
        await until(
            lambda: min(cp.offered_a(1) for cp in (cp0, cp1)) >= FREE_A / 2 - 1.0,
            10,
            "both cars at their share",
        )
