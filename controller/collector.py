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
"""The longest calls hold the collector off at a stretch: a fan-out to 1,000 chargers is
answered in about 0.2 s, a silent charger's call only after its 10 s timeout."""

_decisions = 0  # decisions (of any site in this process) until their frames are written
_calls = 0  # setpoint calls waiting for their answers
_expiry: asyncio.TimerHandle | None = None  # ends a stretch of call holds that lasts too long
_overdue = False  # the current stretch of call holds lasted HOLD_MAX_S: calls hold no more


def held_until_frames_written() -> AbstractContextManager[None]:
    """Hold the collector off for the block and the event loop's next pass.

    The dispatcher's tasks write their frames in that next pass; the collector
    is enabled again by a callback queued behind them. If the collector was
    already disabled (by the embedding application), it is left alone. A
    decision's hold is short and always taken, even while calls no longer hold.
    """
    return _held(_hold_decision, _release_after_next_pass)


def held_until_answered() -> AbstractContextManager[None]:
    """Hold the collector off for the block: a call from its frame to its answer.

    Calls hold it for at most :data:`HOLD_MAX_S` at a stretch (from the first call in
    flight until none is): a site where some call is always in flight, or a charger
    that never answers, must not stop it for good. Left alone if the collector was
    already disabled by the embedding application.
    """
    return _held(_hold_call, _release_call)


@contextmanager
def _held(hold: Callable[[], bool], release: Callable[[], None]) -> Iterator[None]:
    if not hold():
        yield
        return
    try:
        yield
    finally:
        release()


def _ours() -> bool:
    """False when the application, not a hold of ours, had disabled the collector."""
    return _decisions + _calls > 0 or gc.isenabled()


def _hold_decision() -> bool:
    global _decisions
    if not _ours():
        return False
    _decisions += 1
    _apply()
    return True


def _release_decision() -> None:
    global _decisions
    _decisions -= 1
    _apply()


def _release_after_next_pass() -> None:
    try:
        asyncio.get_running_loop().call_soon(_release_decision)
    except RuntimeError:  # no event loop: nothing is written later
        _release_decision()


def _hold_call() -> bool:
    global _calls, _expiry
    if not _ours():
        return False
    if _calls == 0:
        try:
            _expiry = asyncio.get_running_loop().call_later(HOLD_MAX_S, _expire)
        except RuntimeError:  # no event loop: the hold ends with its block
            _expiry = None
    _calls += 1
    _apply()
    return True


def _release_call() -> None:
    global _calls, _expiry, _overdue
    _calls -= 1
    if _calls == 0:
        if _expiry is not None:
            _expiry.cancel()
            _expiry = None
        _overdue = False
    _apply()


def _expire() -> None:
    """Calls have held the collector off for HOLD_MAX_S: they hold no more until none is
    in flight."""
    global _expiry, _overdue
    _expiry = None
    _overdue = True
    _apply()


def _apply() -> None:
    """The collector is off while a decision holds it, or calls do and are not overdue."""
    if _decisions > 0 or (_calls > 0 and not _overdue):
        gc.disable()
    else:
        gc.enable()
