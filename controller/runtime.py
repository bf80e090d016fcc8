"""Which asyncio event loop Headroom's processes run on.

``uvloop`` (libuv) moves sockets, timers and callbacks out of the Python
event loop's own code; for a controller that answers a thousand chargers'
MeterValues every second and writes a thousand SetChargingProfile frames at
once, that is where much of the time goes (figures: docs/benchmarks.md).
Headroom uses it where it is installed (a dependency on Linux and macOS) and
falls back to the standard loop elsewhere, or when asked with
``--event-loop asyncio``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")
EventLoopName = Literal["auto", "uvloop", "asyncio"]
EVENT_LOOPS: tuple[str, ...] = get_args(EventLoopName)


def loop_factory(name: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner``: uvloop's, or ``None`` for the standard loop.

    ``auto`` takes uvloop when it can be imported; ``uvloop`` insists on it.
    """
    if name not in EVENT_LOOPS:
        raise ValueError(f"event loop {name!r} is unknown; known: {', '.join(EVENT_LOOPS)}")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ValueError("event loop 'uvloop' asked for, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], event_loop: str = "auto") -> T:
    """Run ``main`` to completion on a new loop of the chosen kind, like ``asyncio.run``."""
    try:
        factory = loop_factory(event_loop)
    except ValueError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: what the running loop is (for logs and benchmarks)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
