"""Whether a grid meter reading can be believed, beyond what the meter adapter checks. Pure.

The adapters reject what is wrong in a single reading (NaN, sentinels,
values out of physical bounds). Two faults only show over time:

* **A jump no load can make**: a phase current changing by more than
  ``max_step_a`` between two readings (by default 1.5 × the site fuse: the
  whole site cannot switch on more than its fuse carries). The reading is
  rejected; the next one is judged against the last good one, so a real
  change shows again in the next reading and is accepted then if it stays.
  Only a reading that jumps back and forth is never believed.
* **A frozen meter**: the same values, to the last bit, for ``frozen_s``
  while the chargers' own measured draw moved by more than
  ``FROZEN_CHARGER_MOVE_A``. A live meter would have seen that; a gateway
  serving a stale register would not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.model import PhaseValues

FROZEN_CHARGER_MOVE_A = 2.0
"""How much the chargers' summed draw must move for an unchanged meter to be suspect."""


@dataclass(frozen=True, slots=True)
class MeterHistory:
    """What the judge remembers between readings."""

    last_good: PhaseValues | None = None
    rejected_jump: PhaseValues | None = None
    same_since: float | None = None
    same_values: tuple[PhaseValues, float | None] | None = None
    chargers_low_a: float = 0.0
    chargers_high_a: float = 0.0


def _step_a(a: PhaseValues, b: PhaseValues) -> float:
    return max(abs((x or 0.0) - (y or 0.0)) for x, y in zip(a, b, strict=True))


def judge(
    history: MeterHistory,
    current_a: PhaseValues,
    power_w: float | None,
    at: float,
    chargers_a: float,
    max_step_a: float,
    frozen_s: float,
) -> tuple[str, MeterHistory]:
    """A problem with this reading (empty if none) and the history to judge the next one by.

    ``chargers_a`` is the chargers' summed measured draw when the reading arrived.
    """
    previous = history.last_good
    if previous is not None and _step_a(current_a, previous) > max_step_a:
        confirmed = history.rejected_jump is not None and (
            _step_a(current_a, history.rejected_jump) <= max_step_a
        )
        if not confirmed:
            step = _step_a(current_a, previous)
            problem = f"jump of {step:.0f} A in one reading (over {max_step_a:.0f} A)"
            return problem, replace(history, rejected_jump=current_a)
    values = (current_a, power_w)
    since = history.same_since
    if history.same_values == values and since is not None:
        low = min(history.chargers_low_a, chargers_a)
        high = max(history.chargers_high_a, chargers_a)
        history = replace(history, chargers_low_a=low, chargers_high_a=high)
        moved = high - low > FROZEN_CHARGER_MOVE_A
        if moved and at - since >= frozen_s:
            return (
                f"frozen: the same values for {at - since:.0f} s while the "
                f"chargers' draw moved by {high - low:.0f} A",
                history,
            )
    else:
        history = replace(
            history,
            same_values=values,
            same_since=at,
            chargers_low_a=chargers_a,
            chargers_high_a=chargers_a,
        )
    return "", replace(history, last_good=current_a, rejected_jump=None)
