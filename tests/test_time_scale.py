"""Scenario time faster than real time: the scaled event loop, and runs at time_scale 10.

The loop's own behaviour is checked with bounds far from the figures (a 1 s
sleep at 20× must take well under 1 s of real time). The scenario test runs a
small site at 1.0 and at 10 and compares: wall time, and the KPIs within the
tolerance that the runs at 1.0 themselves spread over (docs/hil.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from controller.clock import ScaledClock
from hil.runner import run_scenario
from hil.scenario import parse_scenario
from hil.timescale import ScaledEventLoop, loop_clock, loop_scale, run_scaled


def test_a_sleep_takes_scenario_seconds_not_real_ones() -> None:
    """A 1 s sleep on a 20× loop ends after ≥ 1 scenario second and well under 1 real one."""

    async def sleep_one() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0, real0 = loop.time(), time.monotonic()
        await asyncio.sleep(1.0)
        return loop.time() - t0, time.monotonic() - real0

    scenario_s, real_s = run_scaled(sleep_one(), 20.0)
    assert scenario_s >= 1.0
    assert real_s < 0.5


def test_timeouts_and_the_loop_clock_agree_on_scenario_time() -> None:
    """``asyncio.timeout`` fires after its scenario seconds, and the clock the rig and
    controller read is the loop's: monotonic and wall time advance together."""

    async def time_out() -> tuple[float, float, float]:
        clock = loop_clock()
        assert isinstance(clock, ScaledClock)
        assert loop_scale() == 10.0
        t0, wall0 = clock.monotonic(), clock.now()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3.0):
                await asyncio.Event().wait()
        waited = clock.monotonic() - t0
        return waited, (clock.now() - wall0).total_seconds(), asyncio.get_running_loop().time()

    waited_s, wall_s, loop_t = run_scaled(time_out(), 10.0)
    assert 3.0 <= waited_s < 4.5
    assert wall_s == pytest.approx(waited_s, abs=0.2)
    assert loop_t > 0


def test_sockets_stay_real_on_a_scaled_loop() -> None:
    """A TCP round trip over loopback works on the scaled loop (only waiting is scaled)."""

    async def echo() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        answer = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return answer

    assert run_scaled(echo(), 50.0) == b"ping\n"


def test_the_loop_is_a_scaled_one_only_when_asked() -> None:
    """Scale 1.0 runs on the standard loop and the system clock."""

    async def which() -> tuple[bool, float]:
        return isinstance(asyncio.get_running_loop(), ScaledEventLoop), loop_scale()

    assert run_scaled(which(), 1.0) == (False, 1.0)
    assert run_scaled(which(), 4.0) == (True, 4.0)


def small_site(time_scale: float) -> dict[str, Any]:
    """Six cars on a 100 A site whose building load steps up by half, then back."""
    return {
        "name": "scaled",
        "duration_s": 30,
        "time_scale": time_scale,
        "seed": 2,
        "policy": "weighted_fair",
        # Arrivals a second apart cut cars before they drew their first offer: the room
        # they may still draw is held until they follow (controller/room.py).
        "control": {"increases_wait_for": "followed"},
        "site": {
            "id": "s",
            "max_current_a": 100,
            "safety_margin_a": 2,
            "failsafe_current_a": 6,
            "base_load_reserve_a": 20,
        },
        "devices": {
            "chargers": [{"id": "cp", "count": 6, "max_current_a": 32}],
            "evs": {"car": {"max_current_a": 32, "battery_kwh": 60, "delay_s": [1, 3]}},
            "base_load": {"constant_a": [30, 30, 30]},
        },
        "timeline": [
            {"at_s": 2, "event": "arrive", "chargers": "all", "ev": "car", "stagger_s": 1},
            {"at_s": 15, "event": "base_load", "scale": 1.5},
            {"at_s": 23, "event": "base_load", "scale": 1.0},
        ],
        # The peak is the building's 15 A step on a site held at its limit less the 2 A
        # margin: up to 13 A until the cars follow their cut (the arrivals stay under it).
        "assertions": ["seconds_over_limit_unexplained <= 0", "peak_over_limit_a <= 14"],
    }


@pytest.mark.slow
async def test_three_times_faster_gives_the_same_run_in_a_third_of_the_time() -> None:
    """At time_scale 3 the run takes about a third of its real-time wall time, its safety
    assertions pass, and its KPIs agree with the real-time run within the largest gaps
    measured between 1× and 10× over 18 paired runs of the CI scenarios: time over the
    limit within 2 s, utilisation within 0.08, recovery within 3 s. Scaled, the
    controller's CPU time counts N times: it reads as a slightly slower controller. With
    both cores busy with other work, 5× ran up to 0.095 lower in utilisation than 1× (a CI
    run failed so); 3× stayed within 0.04 (docs/hil.md, *time_scale*)."""
    results, walls = {}, {}
    for scale in (1.0, 3.0):
        started = time.perf_counter()
        result = await run_scenario(parse_scenario(small_site(scale)), out=lambda _line: None)
        walls[scale] = time.perf_counter() - started
        assert result.passed, (scale, [(v.text, v.actual) for v in result.assertions])
        results[scale] = result.kpis
    assert walls[3.0] < walls[1.0] / 2  # a third, plus the start and stop that do not scale
    real, fast = results[1.0], results[3.0]
    assert fast["seconds_over_limit"] == pytest.approx(real["seconds_over_limit"], abs=2.0)
    assert fast["utilization"] == pytest.approx(real["utilization"], abs=0.08)
    assert fast["max_recovery_s"] == pytest.approx(real["max_recovery_s"], abs=3.0)
    assert fast["seconds_failsafe"] == real["seconds_failsafe"] == 0
