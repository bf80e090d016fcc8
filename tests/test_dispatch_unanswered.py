"""A setpoint without an answer may have been applied: the dispatcher counts it until an
acceptance says what the charger holds.

OCPP: Rejected means the charger did not apply the profile; a call that timed out (or met a
CALLERROR) leaves it unknown. Counting the charger at the lower limit it accepted before
would plan the site as if its car could not draw the higher one, and with the target back
at that lower limit nothing would be sent: the charger could keep the higher limit until
the lease renewal, half a lease later. Over a real websocket to a bare OCPP 1.6 charger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from controller.clock import SystemClock
from controller.dispatch import Change, ChangeKind, Held, plan_changes
from controller.dispatcher import Dispatcher
from controller.targets import Target
from tests.ocpp_site import Site, running_site, wait_until
from tests.test_ocpp_server import raw_charger

KEY = "raw-1/1"
TX = 5


def answer(message: list[Any]) -> list[Any] | None:
    """Accept up to 16 A, reject 20 A, stay silent above."""
    _, unique_id, _action, payload = message
    period = payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
    if period["limit"] <= 16.0:
        return [3, unique_id, {"status": "Accepted"}]
    if period["limit"] == 20.0:
        return [3, unique_id, {"status": "Rejected"}]
    return None


def change(limit_a: float, kind: ChangeKind, old_a: float) -> Change:
    return Change(KEY, Target("raw-1", 1, TX, limit_a, "test"), old_a, kind)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with running_site(call_timeout_s=0.3) as running:
        yield running


async def sent(dispatcher: Dispatcher, *changes: Change) -> None:
    dispatcher.submit(list(changes))
    await dispatcher.drain()


async def test_a_timed_out_increase_counts_until_the_charger_answers(site: Site) -> None:
    charger = await raw_charger(site, answer)
    clock = SystemClock()
    dispatcher = Dispatcher(site.server.link, clock, 6.0, 120.0)
    try:
        await sent(dispatcher, change(16.0, ChangeKind.INCREASE, 6.0))
        accepted = dispatcher.held[KEY]
        assert (accepted.limit_a, accepted.unsure) == (16.0, False)

        await sent(dispatcher, change(20.0, ChangeKind.INCREASE, 16.0))  # Rejected: not applied
        assert dispatcher.held[KEY] == accepted

        sent_from = clock.monotonic()
        await sent(dispatcher, change(32.0, ChangeKind.INCREASE, 16.0))  # no answer
        assert dispatcher.results["Timeout"] == 1
        maybe = dispatcher.held[KEY]
        assert (maybe.limit_a, maybe.unsure) == (32.0, True)
        # Not an acceptance: no lease renewed, no acceptance time moved.
        assert maybe.acked_at == float("-inf")
        assert (maybe.changed_at, maybe.increased_at) == (
            accepted.changed_at,
            accepted.increased_at,
        )
        # But a change the car may follow from when its frame went out: the next increase
        # is paced from there (controller/settling.py), not from the 16 A.
        assert sent_from <= maybe.change_sent_at <= sent_from + 0.3
        assert dispatcher.held_a()[KEY] == 32.0

        # The target back at 16 A: a decrease goes out at once, and its acceptance settles it.
        now = clock.monotonic()
        [down] = plan_changes(
            {KEY: Target("raw-1", 1, TX, 16.0, "test")},
            dispatcher.held,
            now,
            failsafe_a=6.0,
            deadband_a=1.0,
            renew_after_s=60.0,
        )
        assert (down.kind, down.target.limit_a, down.old_a) == (ChangeKind.DECREASE, 16.0, 32.0)
        await sent(dispatcher, down)
        settled = dispatcher.held[KEY]
        assert (settled.limit_a, settled.unsure) == (16.0, False)
        await wait_until(lambda: settled.acked_at > accepted.acked_at)
    finally:
        await dispatcher.close()
        await charger.close()


async def test_a_timed_out_decrease_keeps_the_higher_limit_it_held(site: Site) -> None:
    """A decrease without an answer leaves the charger at one of two limits, the higher
    the one it accepted: nothing to add, and the decrease is retried as before."""
    charger = await raw_charger(site, answer)
    dispatcher = Dispatcher(site.server.link, SystemClock(), 6.0, 120.0)
    dispatcher.held[KEY] = Held(40.0, 1.0, TX, changed_at=1.0, increased_at=1.0)
    try:
        await sent(dispatcher, change(32.0, ChangeKind.DECREASE, 40.0))
        assert dispatcher.held[KEY] == Held(40.0, 1.0, TX, changed_at=1.0, increased_at=1.0)
    finally:
        await dispatcher.close()
        await charger.close()
