"""Keeping Python's cycle collector out of the reaction to an over-limit reading.

A decision at depot scale allocates a lot (a snapshot, the problem, the
allocation, a thousand commands), so the collector used to run many times
inside it, and the full collections it triggered took up to ~100 ms at 1,000
chargers: the tail of the reaction latency. While a decision runs and until
its setpoint frames are handed to the sockets, the collector is held off; it
runs right after, on what the decision left behind. Reference counting still
frees everything that is not in a cycle meanwhile. Figures:
docs/benchmarks.md, "Reaction latency".
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

_holds = 0  # decisions (of any site in this process) holding the collector off


@contextmanager
def held_until_frames_written() -> Iterator[None]:
    """Hold the collector off for the block and the event loop's next pass.

    The dispatcher's tasks write their frames in that next pass; the collector
    is enabled again by a callback queued behind them. If the collector was
    already disabled (by the embedding application), it is left alone.
    """
    global _holds
    if _holds == 0 and not gc.isenabled():
        yield
        return
    _holds += 1
    gc.disable()
    try:
        yield
    finally:
        try:
            asyncio.get_running_loop().call_soon(_release)
        except RuntimeError:  # no event loop: nothing is written later
            _release()


def _release() -> None:
    global _holds
    _holds -= 1
    if _holds == 0:
        gc.enable()
