"""Steps shared by the tests of a charger leaving just after its car ramped up
(tests/test_rejoin.py on the site, tests/test_rejoin_group.py below a metered group)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from tests.rig import until


async def leave_at_share(
    controller: SiteController, cp1: SimulatedChargePoint, share_a: float
) -> tuple[float, float]:
    """Plug a car into ``cp1``, wait until it charges at ``share_a`` and its last report
    says so, then take ``cp1`` off the network. Returns the highest limit ``cp1`` may hold
    while away and when its car last drew less than its share (monotonic)."""
    low_at = [time.monotonic()]

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
        seen = {s.key: s for s in controller.state.snapshot(time.monotonic()).sessions}
        reported = seen.get(f"{cp1.charger_id}/1")
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
    # Its last setpoint, or one that reached it as it left: it draws this while away.
    return max(before_a, cp1.offered_a(1)), low_at[0]


async def watch(
    cp: SimulatedChargePoint, phases_a: Callable[[], Sequence[float]], seconds: float
) -> tuple[float, float]:
    """For ``seconds``: the highest offer on ``cp``'s connector 1 and the highest of
    ``phases_a()`` (a meter's phase currents)."""
    highest_offer_a, worst_a = 0.0, 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        highest_offer_a = max(highest_offer_a, cp.offered_a(1))
        worst_a = max(worst_a, *phases_a())
        await asyncio.sleep(0.05)
    return highest_offer_a, worst_a
