"""The cycle collector is held off during a decision and its writes, and while setpoint calls
wait for their answers; it always comes back, at the latest after HOLD_MAX_S."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from controller import collector
from controller.collector import held_until_answered, held_until_frames_written
from hil.ev import EV
from tests.rig import rig, until


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


async def test_held_for_the_block_and_the_next_pass_of_the_loop() -> None:
    seen_in_next_pass: list[bool] = []
    with held_until_frames_written():
        assert not gc.isenabled()
        # A task created in the block, like the dispatcher's, runs in the next pass.
        task = asyncio.ensure_future(_note(seen_in_next_pass))
    assert not gc.isenabled()
    await task
    assert seen_in_next_pass == [False]
    await asyncio.sleep(0)
    assert gc.isenabled()


async def _note(into: list[bool]) -> None:
    into.append(gc.isenabled())


async def test_two_holds_release_only_when_both_are_done() -> None:
    with held_until_frames_written():
        with held_until_frames_written():
            pass
        await asyncio.sleep(0)
        assert not gc.isenabled()  # the outer hold is still open
    await asyncio.sleep(0)
    assert gc.isenabled()


async def test_a_collector_disabled_by_the_application_stays_disabled() -> None:
    gc.disable()
    with held_until_frames_written():
        pass
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not gc.isenabled()


def test_without_an_event_loop_the_collector_is_back_at_the_end() -> None:
    with held_until_frames_written():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_in_the_block_still_releases() -> None:
    with pytest.raises(ZeroDivisionError), held_until_frames_written():
        _ = 1 / 0
    assert gc.isenabled()


async def test_held_while_calls_wait_for_answers_back_when_the_last_is_answered() -> None:
    answers = [asyncio.get_running_loop().create_future() for _ in range(3)]

    async def call(answer: asyncio.Future[None]) -> None:
        with held_until_answered():
            await answer

    calls = [asyncio.ensure_future(call(a)) for a in answers]
    await asyncio.sleep(0)
    for answer in answers[:2]:
        answer.set_result(None)
    await asyncio.sleep(0)
    assert not gc.isenabled()  # one call still waits
    answers[2].set_result(None)
    await asyncio.gather(*calls)
    assert gc.isenabled()


async def test_a_call_cancelled_while_it_waits_releases() -> None:
    async def call() -> None:
        with held_until_answered():
            await asyncio.sleep(10)

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0)
    assert not gc.isenabled()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.isenabled()


async def test_holds_that_last_too_long_let_the_collector_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A charger that never answers (or calls always in flight) must not stop it for good."""
    monkeypatch.setattr(collector, "HOLD_MAX_S", 0.05)
    with held_until_answered():
        assert not gc.isenabled()
        await asyncio.sleep(0.1)
        assert gc.isenabled()
        with held_until_answered():  # a call starting now does not hold it off again
            assert gc.isenabled()
    with held_until_answered():  # a new stretch of holds does
        assert not gc.isenabled()
    assert gc.isenabled()


async def test_a_decision_holds_it_even_while_overdue_calls_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls in flight for longer than HOLD_MAX_S let the collector run, but a decision
    (whose allocations made the long pauses) still holds it until its frames are written."""
    monkeypatch.setattr(collector, "HOLD_MAX_S", 0.05)
    with held_until_answered():
        await asyncio.sleep(0.1)
        assert gc.isenabled()  # the calls are overdue
        with held_until_frames_written():
            assert not gc.isenabled()
        await asyncio.sleep(0)
        assert gc.isenabled()  # the decision's frames are out; the calls still overdue
    assert gc.isenabled()


async def test_a_running_site_leaves_the_collector_on_between_decisions() -> None:
    async with rig(interval_s=0.2) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        decisions = r.controller.loop.decisions
        await until(lambda: r.controller.loop.decisions >= decisions + 3, 5, "three decisions")
        enabled = 0
        for _ in range(50):  # sampled between the loop's passes, never inside a decision
            enabled += gc.isenabled()
            await asyncio.sleep(0.01)
        assert enabled >= 45
