"""Which setpoints to send, in which order. Pure: targets and held setpoints in, changes out.

Rules this module owns:

* A change that lowers a limit is a **decrease** and always goes out, however
  small: the allocation kept the site under its limit only if it is followed.
* A change that raises a limit goes out only if it is larger than the
  deadband (it suppresses noise-driven chatter), only when
  :mod:`controller.pacing` lets it (the charger's response time since its last
  change, the ramp step) and only after every decrease has been acknowledged
  (:mod:`controller.dispatcher` enforces the order).
* A session without a held setpoint runs on its fail-safe default, so its
  first setpoint is compared with the fail-safe current.
* A held setpoint is **renewed** once half its lease has passed, so the lease
  never runs out while the controller lives (invariant 3), and at once when it
  is only the most its charger may hold (``Held.unsure``, after a reconnect).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from controller.pacing import Pace, imposed, release_at, step_a
from controller.targets import Target


class ChangeKind(enum.Enum):
    """Why a setpoint goes out."""

    DECREASE = "decrease"
    INCREASE = "increase"
    RENEW = "renew"


@dataclass(frozen=True, slots=True)
class Held:
    """A setpoint a charger acknowledged, with the transaction it belongs to."""

    limit_a: float
    acked_at: float
    transaction_id: int
    changed_at: float = float("-inf")
    """When the charger accepted the last change of the limit (a renewal is no change)."""
    increased_at: float = float("-inf")
    """When the charger accepted the last increase."""
    imposed: bool = False
    """The limit was imposed by a fault (:func:`controller.pacing.imposed`)."""
    unsure: bool = False
    """Not acknowledged as such: the most the charger may hold after it came back without
    booting (:func:`controller.rejoin.rejoined_held`). Sent again at once."""
    sent_at: float | None = None
    """When the frame of the last change went out (``changed_at`` when not known, e.g. a
    setpoint from before a restart)."""

    @property
    def change_sent_at(self) -> float:
        """When the car could start to follow the last change: its frame went out then.
        Response times are learned from it and increases paced from it
        (:mod:`controller.settling`): the acceptance comes a round trip later, and a slow
        one while learning would make the learned time short of the car's by that much."""
        return self.changed_at if self.sent_at is None else self.sent_at


@dataclass(frozen=True, slots=True)
class Change:
    """One setpoint to send."""

    key: str
    target: Target
    old_a: float
    kind: ChangeKind


def plan_changes(
    targets: Mapping[str, Target],
    held: Mapping[str, Held],
    now: float,
    failsafe_a: float,
    deadband_a: float,
    renew_after_s: float,
    min_increase_interval_s: float = 0.0,
    pace: Pace | None = None,
) -> list[Change]:
    """Every change to send now: decreases first, then increases, then renewals.

    An increase waits as :mod:`controller.pacing` says (without ``pace``: only
    ``min_increase_interval_s`` since the connector's last accepted increase): the
    car needs time to follow, and chasing every wobble of the estimate makes a
    site oscillate. It goes out as one ramp step at most.
    """
    pace = pace or Pace(min_interval_s=min_increase_interval_s)
    changes = []
    for key, target in targets.items():
        previous = held.get(key)
        if previous is not None and previous.transaction_id != target.transaction_id:
            previous = None  # a new transaction: the old TxProfile ended with the old one
        old_a = previous.limit_a if previous else failsafe_a
        new_a = target.limit_a
        if new_a < old_a - 1e-9:
            kind = ChangeKind.DECREASE
        elif new_a > old_a + deadband_a or (old_a == 0.0 and new_a > 0.0):
            resume = old_a == 0.0  # a paused car may go again at once: long pauses lose cars
            # A fault imposed the held limit (recovery is not slowed), or imposes this one
            # (a restored setpoint re-asserted as it was: what the charger holds already).
            was_imposed = (previous is not None and previous.imposed) or imposed(target.reason)
            # A paused car resumes without the minimum interval (long pauses lose cars), but
            # not before it has followed its pause.
            since_up = float("-inf") if resume else previous.increased_at if previous else 0.0
            if previous is not None and now < release_at(
                pace, key, target.charger_id, previous.change_sent_at, since_up, was_imposed
            ):
                continue
            kind = ChangeKind.INCREASE
            stepped_a = step_a(pace, old_a, new_a, was_imposed)
            if stepped_a < new_a:
                if stepped_a <= old_a + deadband_a:
                    continue
                target = replace(target, limit_a=stepped_a, reason=f"{target.reason} (ramping)")
        elif previous is None or previous.unsure or now - previous.acked_at >= renew_after_s:
            # No TxProfile yet (the charger runs on its default), its lease is half gone, or
            # the charger came back holding one of two limits: send the held value again.
            kind = ChangeKind.RENEW
            new_a = old_a if previous else new_a
            target = replace(target, limit_a=new_a)
        else:
            continue
        changes.append(Change(key, target, old_a, kind))
    order = {ChangeKind.DECREASE: 0, ChangeKind.INCREASE: 1, ChangeKind.RENEW: 2}
    changes.sort(key=lambda c: (order[c.kind], c.key))
    return changes
