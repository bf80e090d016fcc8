"""When an increase may go to a connector, and how large a step it takes. Pure.

Rules this module owns (the *settling* of docs/architecture.md):

* An increase waits until the car has followed the connector's last accepted
  change, or the charger's **response time** (learned by
  :mod:`controller.response`) has passed since that change was sent (the car
  cannot start before, ``Held.change_sent_at``), whichever comes
  first; and never comes sooner than ``control.min_increase_interval_s`` after
  it (the floor between two commands to one charger: IEC 61851 lets a charger
  change its signal only every few seconds). A car that has followed has used
  its response time, so the next ramp step need not wait out the slowest one.
* With ``control.increases_wait_for: followed`` the response time does not
  release the wait: only the car following, or ``control.response_time_max_s``.
  With the default ``acknowledged``, so is a charger whose response time is not
  learned yet: ``control.response_time_s`` says nothing about a car that needs
  30 s, and an increase sent before it follows is the oscillation this prevents.
  So is a **new car** on a charger that has learned one (``Pace.unproven``): the
  time is its previous car's until this car has shown its own (on ``slow_evs`` a
  car 22 s slow was raised 20 s after its cut, its predecessor's time).
* An increase **ramps**: at most ``control.ramp_step_a`` above what the charger
  holds; the rest follows step by step, each after the response time.
* Exceptions, each a car that goes to its whole target at once: a paused car
  resuming from 0 A (a step below the 6 A minimum would stop it; long pauses lose
  cars), and a car whose held setpoint was **imposed** by a fault (fail-safe, a
  non-compliant charger, a session restored but not confirmed): recovering from a
  fault must not be slowed, and the car had followed its own level before the
  fault. Such a car waits only the minimum interval.

Decreases never wait and never ramp (:mod:`controller.dispatch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

IMPOSED_BY = ("fail-safe", "non-compliant", "restored")
"""Target reasons (their first words, :mod:`controller.decide`) that a fault imposed."""

CURRENT_STEP_A = 0.1
"""OCPP limits are multiples of 0.1 A."""


def imposed(reason: str) -> bool:
    """True when a target with ``reason`` was imposed by a fault, not allocated."""
    return reason.startswith(IMPOSED_BY)


@dataclass(frozen=True, slots=True)
class Pace:
    """What pacing needs to know this decision."""

    response_s: Mapping[str, float] = field(default_factory=dict)
    """Learned response times by charger id; a charger not in it is not learned yet."""
    default_s: float = 0.0
    following: frozenset[str] = frozenset()
    """Connector keys whose car has not followed its last change yet."""
    quiet: frozenset[str] = frozenset()
    """Connector keys whose last change did not move the car (it already kept to it): it
    cannot show it followed, so its increase waits the response time."""
    unproven: frozenset[str] = frozenset()
    """Connector keys whose car has not taught a response time yet, on a charger that has
    one from another car: paced as on an unlearned charger (``Settling.pace``)."""
    wait_for_followed: bool = False
    max_s: float = 60.0
    min_interval_s: float = 0.0
    ramp_step_a: float | None = None

    def wait_s(self, charger_id: str, key: str | None = None) -> float:
        """How long an increase waits after a change its car has not followed (or could not
        show it followed): the learned time; for an unproven car (``key``) at least the
        default, as on an unlearned charger."""
        learned_s = self.response_s.get(charger_id, self.default_s)
        return max(learned_s, self.default_s) if key in self.unproven else learned_s

    def learned(self, key: str, charger_id: str) -> bool:
        """True when the connector's car is paced by its charger's learned time."""
        return charger_id in self.response_s and key not in self.unproven


def release_at(
    pace: Pace,
    key: str,
    charger_id: str,
    changed_at: float,
    increased_at: float,
    was_imposed: bool,
) -> float:
    """When an increase may go to a connector whose last change (of either sign) was sent
    at ``changed_at`` (``Held.change_sent_at``) and last increase accepted at
    ``increased_at``."""
    floor = increased_at + pace.min_interval_s
    if key in pace.quiet and key not in pace.following and not was_imposed:
        return max(floor, changed_at + pace.wait_s(charger_id, key))
    if was_imposed or key not in pace.following:
        # Followed: the car is where it was told, its response time is spent. Imposed by a
        # fault: the car had followed its own level before the fault.
        return floor
    strict = pace.wait_for_followed or not pace.learned(key, charger_id)
    return max(floor, changed_at + (pace.max_s if strict else pace.wait_s(charger_id)))


def step_a(pace: Pace, old_a: float, new_a: float, was_imposed: bool) -> float:
    """The setpoint to send for an increase from ``old_a`` towards ``new_a``."""
    if pace.ramp_step_a is None or was_imposed or old_a <= 0.0:
        return new_a
    stepped = old_a + pace.ramp_step_a
    if stepped >= new_a:
        return new_a
    return round(int(stepped / CURRENT_STEP_A + 1e-9) * CURRENT_STEP_A, 1)
