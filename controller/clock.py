"""One clock for the whole controller, so tests and scenarios can own time.

Freshness and timing decisions use :meth:`Clock.monotonic`; wall time
(:meth:`Clock.now`) is only for timestamps written on the wire or in logs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for decisions, UTC wall time for the wire."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def now(self) -> datetime:
        """The current UTC time."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds from :func:`time.monotonic`."""
        return time.monotonic()

    def now(self) -> datetime:
        """UTC now."""
        return datetime.now(UTC)


class ScaledClock:
    """Real time sped up ``scale`` times from the moment the clock is made.

    A HIL run faster than real time reads this clock, and so does its event
    loop (:class:`hil.timescale.ScaledEventLoop`), so every sleep, timeout and
    lease agrees on one scenario time. Wall time starts at the real wall time
    and advances as the scaled monotonic time does: the timestamps a run
    writes on the wire and in its report are scenario times.
    """

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self._origin = time.monotonic()
        self._wall0 = datetime.now(UTC)

    def monotonic(self) -> float:
        """Scaled seconds: the real seconds since the origin times ``scale``, from the origin."""
        return self._origin + (time.monotonic() - self._origin) * self.scale

    def now(self) -> datetime:
        """The wall time at the origin plus the scaled seconds since."""
        return self._wall0 + timedelta(seconds=self.monotonic() - self._origin)


class ManualClock:
    """A clock that moves only when told to: for tests of timing decisions."""

    def __init__(self, start: float = 1000.0, wall: datetime | None = None) -> None:
        self._t = start
        self._wall0 = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self._start = start

    def monotonic(self) -> float:
        """The current manual time."""
        return self._t

    def now(self) -> datetime:
        """Wall time advanced by as much as the monotonic time."""
        return self._wall0 + timedelta(seconds=self._t - self._start)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._t += seconds
