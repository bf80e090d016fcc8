"""Deadlines for the solver: what time is left, and whether a solve will fit in it.

This module owns the timing rules of :mod:`policies.optimal`. HiGHS checks
its own time limit only now and then (measured here: up to 15 ms late at
1,000 connectors), so a time limit alone cannot keep a call on time: a solve
that is not expected to end before the deadline is not started at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

RESERVE_S = 0.002
"""Kept back from every solve's time limit for rounding, checking and wording the answer."""


@dataclass(slots=True)
class Pace:
    """How long the first LP takes per nonzero on this machine, learnt from the last solve.

    Before a solve the time is estimated from the model's size, so a solve
    that cannot end in time is not started (HiGHS may pass its own limit by
    the length of one simplex run). The estimate starts at twice what this
    project's 2-core benchmark machine measured (about 1 µs per nonzero and
    1 ms per solve) and follows the machine after that.
    """

    per_nonzero_s: float = 2e-6
    fixed_s: float = 0.002

    def lp_s(self, nonzeros: int) -> float:
        """The expected time of the first LP of a model with ``nonzeros`` limit entries."""
        return self.fixed_s + self.per_nonzero_s * nonzeros

    def learn(self, nonzeros: int, took_s: float) -> None:
        """Follow the last measurement, with a margin of half again."""
        self.per_nonzero_s = max(1.5 * (took_s - self.fixed_s) / max(nonzeros, 1), 1e-7)


PACE = Pace()
"""The pace of this process's machine, shared by every call."""


@dataclass(slots=True)
class Clock:
    """The deadline, and how long the first LP took (the yardstick for the solves after it)."""

    deadline: float
    lp_s: float = 0.0

    def left_s(self) -> float:
        """Seconds left, less a reserve for the work after a solve returns."""
        return self.deadline - time.perf_counter() - RESERVE_S

    def affords(self, times_lp: float) -> bool:
        """Is a solve expected to take ``times_lp`` × the first LP's time likely to end in time?

        HiGHS checks its own time limit only now and then (measured: up to
        15 ms late at 1,000 connectors), so a solve that would not fit is not
        started at all.
        """
        return times_lp * self.lp_s < self.left_s()
