"""Scenario time faster than real time: an event loop whose clock runs ``scale`` times fast.

asyncio schedules every sleep, timeout and ``call_later`` on ``loop.time()``.
:class:`ScaledEventLoop` reads a :class:`~controller.clock.ScaledClock`
there, and divides the time it waits for sockets by the scale, so a 1 s
sleep takes 1/scale s of real time while sockets stay real. The controller,
the simulated devices and the rig read the same clock (:func:`loop_clock`),
so leases, meter ages, EV response delays and OCPP timestamps all agree on
one scenario time.

What does not scale is CPU: a decision that takes 20 ms of real time takes
``20 ms × scale`` of scenario time. docs/hil.md gives the largest scale that
is reliable on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

from controller.clock import Clock, ScaledClock, SystemClock

T = TypeVar("T")


class _ScaledSelector(selectors.DefaultSelector):
    """The platform's selector, waiting real time = the loop's scaled timeout ÷ scale."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self._scale = scale

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for sockets at most ``timeout`` scenario seconds."""
        return super().select(None if timeout is None else timeout / self._scale)


class ScaledEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a :class:`ScaledClock`."""

    def __init__(self, clock: ScaledClock) -> None:
        super().__init__(_ScaledSelector(clock.scale))
        self.clock = clock

    def time(self) -> float:
        """Scenario seconds: what every sleep, timeout and call_later is measured in."""
        return self.clock.monotonic()


def loop_clock() -> Clock:
    """The clock of the running loop: its scaled clock, or the system clock (also when no
    loop runs)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return SystemClock()
    return loop.clock if isinstance(loop, ScaledEventLoop) else SystemClock()


def loop_scale() -> float:
    """How many times faster than real time the running loop's clock goes (1.0: real time)."""
    clock = loop_clock()
    return clock.scale if isinstance(clock, ScaledClock) else 1.0


def run_scaled(main: Coroutine[Any, Any, T], scale: float) -> T:
    """Run ``main`` to completion on a new loop whose time goes ``scale`` times fast
    (``asyncio.run`` for 1.0)."""
    if scale == 1.0:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=lambda: ScaledEventLoop(ScaledClock(scale))) as runner:
        return runner.run(main)
