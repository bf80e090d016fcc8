"""The demand-charge window: keep the billed 15-minute average under a target. Pure.

Utilities bill the highest average power over fixed windows (15 minutes,
sometimes 30) aligned to the clock: 00, 15, 30, 45. What was drawn earlier
in the window is spent; what is left of the budget, spread over what is
left of the window, is the power the site may still draw on average:

    allowed_w = (target_w × window_s − energy_so_far_j) / remaining_s

The loop applies it as one more power limit (a node named ``demand window``
above the chargers), so it binds only when it is lower than the site's own
limit, and the explanation says so. After a start in the middle of a window
the part before the first reading is counted at the target average.
Energy is integrated from the grid
meter's power readings (trapezoids; a gap longer than ``MAX_GAP_S`` is
counted at the higher of its two ends, the safe side for a bill).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_GAP_S = 10.0
"""A gap in readings longer than this is bridged at the higher reading, not the mean."""

MIN_REMAINING_S = 30.0
"""The budget is spread over at least this long, so the last seconds of a window cannot
ask for an absurd burst (or a hard stop) from a small rounding of energy."""


@dataclass
class DemandWindow:
    """Energy drawn in the current billing window; times are epoch seconds (wall clock)."""

    window_s: float = 900.0
    start_s: float | None = None
    energy_j: float = 0.0
    last_s: float | None = None
    last_w: float = 0.0
    known_from_s: float | None = None

    def window_start(self, t_s: float) -> float:
        """The start of the billing window holding ``t_s`` (aligned to the clock)."""
        return t_s - (t_s % self.window_s)

    def add(self, t_s: float, power_w: float) -> None:
        """A grid power reading at ``t_s``."""
        if self.known_from_s is None:
            self.known_from_s = t_s
        start = self.window_start(t_s)
        if self.start_s != start:
            # A new window: only the part of the last interval inside it counts.
            carried_s = t_s - start if self.last_s is not None and self.last_s < start else 0.0
            self.start_s, self.energy_j = start, 0.0
            if carried_s and carried_s <= MAX_GAP_S:
                self.energy_j = max(power_w, self.last_w) * carried_s
        elif self.last_s is not None and t_s > self.last_s:
            dt_s = t_s - self.last_s
            mean_w = (power_w + self.last_w) / 2 if dt_s <= MAX_GAP_S else max(power_w, self.last_w)
            self.energy_j += mean_w * dt_s
        self.last_s, self.last_w = t_s, power_w

    def allowed_power_w(self, t_s: float, target_w: float) -> float:
        """The average power the site may draw for the rest of the window."""
        if self.start_s is None or self.window_start(t_s) != self.start_s:
            return target_w  # nothing drawn in this window yet
        remaining_s = max(self.start_s + self.window_s - t_s, MIN_REMAINING_S)
        # Before the first reading (a start mid-window) the draw is unknown: count it at
        # the target average, neither using budget that may be gone nor wasting it.
        unknown_s = max((self.known_from_s or self.start_s) - self.start_s, 0.0)
        budget_j = target_w * (self.window_s - unknown_s) - self.energy_j
        return max(budget_j / remaining_s, 0.0)
