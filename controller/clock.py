"""One clock for the whole controller, so tests and scenarios can own time.

Freshness and timing decisions use :meth:`Clock.monotonic`; wall time
(:meth:`Clock.now`) is only for timestamps written on the wire or in logs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
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
        from datetime import timedelta

        return self._wall0 + timedelta(seconds=self._t - self._start)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._t += seconds
