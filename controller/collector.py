"""Keeping Python's cycle collector out of the reaction to an over-limit reading.

A decision at depot scale allocates a lot (a snapshot, the problem, the
allocation, a thousand commands), and so does a fan-out of a thousand
setpoints while their answers come back (a task, a frame, a future and a
result per call): the collector used to run many times inside them, and the
full collections it triggered took up to ~100 ms at 1,000 chargers: the tail
of the reaction latency and of the fan-out. Two holds keep it off:

* :func:`held_until_frames_written`: while a decision runs and until its
  setpoint frames are handed to the sockets (the event loop's next pass);
* :func:`held_until_answered`: while a setpoint call waits for its answer.

The collector runs right after the last hold ends, on what was left behind;
reference counting still frees everything that is not in a cycle meanwhile.
A hold never keeps it off for longer than :data:`HOLD_MAX_S` at a stretch (a
site where some call is always in flight, or a charger that never answers,
must not stop it for good). Figures: docs/benchmarks.md, "Reaction latency"
and "OCPP at depot scale".
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

HOLD_MAX_S = 1.0
"""The longest the collector is held off at a stretch: a fan-out to 1,000 chargers is
answered in about 0.2 s, a silent charger's call only after its 10 s timeout."""

_holds = 0  # decisions and calls (of any site in this process) holding the collector off
_expiry: asyncio.TimerHandle | None = None  # ends a hold that lasts too long
_overdue = False  # the current stretch of holds lasted HOLD_MAX_S: the collector runs


def held_until_frames_written() -> AbstractContextManager[None]:
    """Hold the collector off for the block and the event loop's next pass.

    The dispatcher's tasks write their frames in that next pass; the collector
    is enabled again by a callback queued behind them. If the collector was
    already disabled (by the embedding application), it is left alone.
    """
    return _held(_release_after_next_pass)


def held_until_answered() -> AbstractContextManager[None]:
    """Hold the collector off for the block: a call from its frame to its answer.

    Left alone if the collector was already disabled by the embedding application.
    """
    return _held(_release)


@contextmanager
def _held(release: Callable[[], None]) -> Iterator[None]:
    if not _hold():
        yield
        return
    try:
        yield
    finally:
        release()


def _release_after_next_pass() -> None:
    try:
        asyncio.get_running_loop().call_soon(_release)
    except RuntimeError:  # no event loop: nothing is written later
        _release()


def _hold() -> bool:
    """Take a hold; False (none taken) when the application had disabled the collector."""
    global _holds, _expiry
    if _holds == 0:
        if not gc.isenabled():
            return False
        try:
            _expiry = asyncio.get_running_loop().call_later(HOLD_MAX_S, _expire)
        except RuntimeError:  # no event loop: the hold ends with its block
            _expiry = None
    _holds += 1
    if not _overdue:
        gc.disable()
    return True


def _release() -> None:
    global _holds, _expiry, _overdue
    _holds -= 1
    if _holds == 0:
        if _expiry is not None:
            _expiry.cancel()
            _expiry = None
        _overdue = False
        gc.enable()


def _expire() -> None:
    """Holds have kept the collector off for HOLD_MAX_S: let it run until they all end."""
    global _expiry, _overdue
    _expiry = None
    _overdue = True
    gc.enable()
