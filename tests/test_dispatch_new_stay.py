"""A new car on a connector takes none of the last car's change times.

A departure and an arrival within one decision leave the last car's setpoint held when the
new car's first profile goes out (its key, ``charger/connector``, is live throughout). Its
acceptance starts the new stay: a change now (its car has to follow it; the next increase
is paced from it), no increase before it. Over a real websocket to a bare OCPP 1.6 charger.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controller.clock import SystemClock
from controller.dispatch import Change, ChangeKind, Held
from controller.dispatcher import Dispatcher
from controller.targets import Target
from tests.ocpp_site import Site, running_site
from tests.test_ocpp_server import raw_charger

KEY = "raw-1/1"


def accept(message: list[Any]) -> list[Any]:
    return [3, message[1], {"status": "Accepted"}]


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with running_site(call_timeout_s=1.0) as running:
        yield running


@pytest.mark.parametrize("kind", [ChangeKind.RENEW, ChangeKind.DECREASE])
async def test_the_first_profile_of_a_new_transaction_is_a_change_of_its_own(
    site: Site, kind: ChangeKind
) -> None:
    charger = await raw_charger(site, accept)
    clock = SystemClock()
    dispatcher = Dispatcher(site.server.link, clock, 6.0, 120.0)
    long_ago = clock.monotonic() - 1000.0
    dispatcher.held[KEY] = Held(16.0, long_ago, 4, changed_at=long_ago, increased_at=long_ago)
    limit_a = 6.5 if kind is ChangeKind.RENEW else 5.0  # from the fail-safe 6 A
    try:
        sent_at = clock.monotonic()
        dispatcher.submit([Change(KEY, Target("raw-1", 1, 5, limit_a, "test"), 6.0, kind)])
        await dispatcher.drain()
        held = dispatcher.held[KEY]
        assert (held.limit_a, held.transaction_id) == (limit_a, 5)
        assert held.changed_at >= sent_at
        assert held.increased_at == -math.inf
    finally:
        await dispatcher.close()
        await charger.close()
