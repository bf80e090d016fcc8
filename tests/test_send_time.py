"""Response times run from when a change was sent, not from its acceptance.

A car cannot start to follow a setpoint before its frame goes out; the charger's
acceptance comes a round trip (or a slow charger's while) later. Learned from the
acceptance, a slow one shortens the learned time by that latency, and a later change
accepted quickly was then paced from its acceptance with that short time: the next
increase could go before the car had followed. From the send, the learned time bounds
the car's, and the send plus it is when the car has followed at the latest.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.clock import SystemClock
from controller.config import ControlSettings
from controller.dispatch import Change, ChangeKind, Held, plan_changes
from controller.dispatcher import Dispatcher
from controller.settling import Settling
from controller.targets import Target
from tests.ocpp_site import Site, running_site
from tests.test_ocpp_server import raw_charger
from tests.test_settling import session

KEY = "cp-1/1"


def test_a_slow_acceptance_while_learning_does_not_shorten_the_response_time() -> None:
    """Sent at 10 s, accepted at 12 s, followed at 16 s: the car took 6 s from the frame
    (the acceptance's 2 s included), not 4 s; a report between send and acceptance is the
    car on its way."""
    settling = Settling(ControlSettings(response_time_s=5.0))
    held = {KEY: Held(20.0, 12.0, 1, changed_at=12.0, increased_at=12.0, sent_at=10.0)}
    reports = [(9.0, 6.0), (11.0, 9.0)]
    settling.observe([session(reports)], held, 6.0)
    assert settling.pace().following == {KEY}
    settling.observe([session([*reports, (16.0, 19.6)])], held, 6.0)
    assert settling.learned() == {"cp-1": 6.0}


def test_the_next_increase_waits_from_the_send_the_learned_time() -> None:
    """The car takes 6 s from a frame. Learned with a slow acceptance, then cut with a fast
    one (sent at 30 s, accepted at 30.2 s): it has followed by 36 s at the latest, and the
    increase after the cut is held back until then (from the acceptance with a time learned
    from it, it went at 34.2 s)."""
    control = ControlSettings(response_time_s=5.0, min_increase_interval_s=0.0)
    settling = Settling(control)
    up = {KEY: Held(20.0, 12.0, 1, changed_at=12.0, increased_at=12.0, sent_at=10.0)}
    reports = [(9.0, 6.0), (16.0, 19.6), (29.0, 19.8)]
    settling.observe([session(reports)], up, 6.0)
    down = {KEY: Held(12.0, 30.2, 1, changed_at=30.2, increased_at=12.0, sent_at=30.0)}
    reports = [*reports, (31.0, 19.7)]
    settling.observe([session(reports)], down, 6.0)
    assert settling.learned() == {"cp-1": 6.0}
    assert settling.pace().following == {KEY}

    targets = {KEY: Target("cp-1", 1, 1, 20.0, "share")}
    assert settling.next_release(targets, down, set(), 0.5) == 36.0

    def plan(now: float) -> list[Change]:
        return plan_changes(targets, down, now, 6.0, 0.5, 60.0, pace=settling.pace())

    assert plan(35.9) == []
    assert [c.kind for c in plan(36.0)] == [ChangeKind.INCREASE]


@given(st.floats(1.0, 30.0), st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_no_increase_before_a_car_could_follow_whatever_the_acceptance_latencies(
    response_s: float, learning_ack_s: float, later_ack_s: float
) -> None:
    """A car that follows ``response_s`` after each frame: however late either change is
    accepted, the increase after a cut it has not shown to follow is held back until it has
    followed, and no longer than that (the raising speed is the car's)."""
    settling = Settling(ControlSettings(response_time_s=5.0, min_increase_interval_s=0.0))
    sent = 10.0
    up = {KEY: Held(20.0, sent + learning_ack_s, 1, sent_at=sent, changed_at=sent + learning_ack_s)}
    reports = [(9.0, 6.0), (sent + response_s, 20.0), (sent + 40.0, 19.8)]
    settling.observe([session(reports)], up, 6.0)
    cut = sent + 41.0
    down = {KEY: Held(12.0, cut + later_ack_s, 1, sent_at=cut, changed_at=cut + later_ack_s)}
    settling.observe([session(reports)], down, 6.0)
    release = settling.next_release({KEY: Target("cp-1", 1, 1, 20.0, "share")}, down, set(), 0.5)
    assert release >= cut + response_s - 1e-9
    assert release == pytest.approx(cut + response_s)


def test_a_car_cut_counts_at_its_draw_until_the_learned_time_after_the_send() -> None:
    """Under followed mode a car coming down holds its draw in the room until it follows or
    its response time has passed: from the send, as it is learned."""
    settling = Settling(ControlSettings(response_time_s=5.0, increases_wait_for="followed"))
    up = {KEY: Held(20.0, 12.0, 1, changed_at=12.0, increased_at=12.0, sent_at=10.0)}
    reports = [(9.0, 6.0), (16.0, 19.6), (29.0, 19.8)]
    settling.observe([session(reports)], up, 6.0)
    down = {KEY: Held(12.0, 30.2, 1, changed_at=30.2, increased_at=12.0, sent_at=30.0)}
    settling.observe([session(reports)], down, 6.0)
    sessions = [session(reports)]
    assert settling.committed(sessions, down, {}, 6.0, 35.9) == {KEY: 19.8}
    assert settling.committed(sessions, down, {}, 6.0, 36.0) == {KEY: 12.0}


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with running_site(call_timeout_s=1.0) as running:
        yield running


async def test_the_dispatcher_records_when_the_frame_went_out(site: Site) -> None:
    """Over a real websocket to a bare OCPP 1.6 charger that answers late: the held
    setpoint's send time is before the charger got the frame, its acceptance after."""
    clock = SystemClock()
    received: list[float] = []

    def slow_accept(message: list[Any]) -> list[Any]:
        received.append(clock.monotonic())
        time.sleep(0.05)  # a slow charger: the answer comes well after the frame
        return [3, message[1], {"status": "Accepted"}]

    charger = await raw_charger(site, slow_accept)
    dispatcher = Dispatcher(site.server.link, clock, 6.0, 120.0)
    try:
        dispatcher.submit(
            [Change("raw-1/1", Target("raw-1", 1, 5, 16.0, "t"), 6.0, ChangeKind.INCREASE)]
        )
        await dispatcher.drain()
        held = dispatcher.held["raw-1/1"]
        assert held.sent_at is not None
        assert held.sent_at <= received[-1] < held.changed_at
        assert held.change_sent_at == held.sent_at
        renewed = Change("raw-1/1", Target("raw-1", 1, 5, 16.0, "t"), 16.0, ChangeKind.RENEW)
        dispatcher.submit([renewed])
        await dispatcher.drain()
        assert dispatcher.held["raw-1/1"].sent_at == held.sent_at  # a renewal is no change
    finally:
        await dispatcher.close()
        await charger.close()
