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
  serving a stale register would not. The chargers' draw counts from
  ``report_lag_s`` after the values last changed (:func:`report_lag_s`: the
  MeterValues interval Headroom asks chargers for, ``ocpp.meter_values_interval_s``):
  a change the meter has just seen reaches the chargers' reports up to one
  report interval later, and that late report is no move *while* the meter
  stood still (on ``slow_evs`` 60 s of a steady site held the controller for
  15 s, and the hold paused every car, because a car's report came 1 s after
  the meter saw it step up). At most half of ``frozen_s``, so the window still
  compares the chargers' draw over its second half: a window shorter than two
  report intervals (an operator who wants a frozen meter caught sooner) still
  catches one, at the risk of taking a late report for a move, a needless hold,
  the safe side. A lag of the whole window would never catch one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.model import PhaseValues

FROZEN_CHARGER_MOVE_A = 2.0
"""How much the chargers' summed draw must move for an unchanged meter to be suspect."""

UNSET_INTERVAL_S = 10.0
"""The report interval taken for chargers left on their own setting
(``ocpp.meter_values_interval_s: 0``): the one Headroom asks for by default."""


def report_lag_s(meter_values_interval_s: float, frozen_s: float) -> float:
    """How long after the meter's values changed the chargers' reports may still tell of that
    change: one MeterValues interval (:data:`UNSET_INTERVAL_S` for 0, the chargers' own), at
    most half of ``frozen_s``."""
    return min(meter_values_interval_s or UNSET_INTERVAL_S, frozen_s / 2)


@dataclass(frozen=True, slots=True)
class MeterHistory:
    """What the judge remembers between readings."""

    last_good: PhaseValues | None = None
    rejected_jump: PhaseValues | None = None
    same_since: float | None = None
    same_values: tuple[PhaseValues, float | None] | None = None
    chargers_low_a: float | None = None
    chargers_high_a: float | None = None
    """The chargers' summed draw while the values stood, from the report lag after they
    last changed (``None`` until then)."""


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
    meter_values_interval_s: float = UNSET_INTERVAL_S,
) -> tuple[str, MeterHistory]:
    """A problem with this reading (empty if none) and the history to judge the next one by.

    ``chargers_a`` is the chargers' summed measured draw when the reading arrived;
    ``meter_values_interval_s`` how often they report it (:func:`report_lag_s`).
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
        low, high = history.chargers_low_a, history.chargers_high_a
        if at - since >= report_lag_s(meter_values_interval_s, frozen_s):
            low = chargers_a if low is None else min(low, chargers_a)
            high = chargers_a if high is None else max(high, chargers_a)
            history = replace(history, chargers_low_a=low, chargers_high_a=high)
        moved_a = high - low if high is not None and low is not None else 0.0
        if moved_a > FROZEN_CHARGER_MOVE_A and at - since >= frozen_s:
            return (
                f"frozen: the same values for {at - since:.0f} s while the "
                f"chargers' draw moved by {moved_a:.0f} A",
                history,
            )
    else:
        history = replace(
            history,
            same_values=values,
            same_since=at,
            chargers_low_a=None,
            chargers_high_a=None,
        )
    return "", replace(history, last_good=current_a, rejected_jump=None)
