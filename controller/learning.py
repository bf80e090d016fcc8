"""What a session teaches us about its car, learned from measured current.

Pure functions: a measurement and the previous belief in, the new belief out.

* **Phases**: a car on a three-phase charger may draw on one, two or three
  phases. Until it draws, we assume every phase of the charger (the safe
  guess: it reserves more than the car can take). Once it draws, the phases
  that carry current are the phases it uses, so a single-phase car stops
  holding capacity on the other two.
* **EV maximum**: a car that draws clearly less than it is offered, after it
  has had time to follow, cannot take more (onboard-charger limit, taper,
  a full battery). Its maximum becomes what it draws plus a small probe, so
  the spare current goes to the others. A car that draws up to that cap gets
  the probe again every settle period: it can show that it takes more.
* A car that has **not started** (never drawn ``DRAWING_A`` in its session) teaches
  nothing; one that starts after its settle time ran out gets it again from its
  start. Its response time is its own, not the charger's last car's (on
  ``slow_evs`` a car 22 s slow, on a
  charger whose previous car had taught 20 s, was taken at 0 A + probe, paused
  and never charged: a paused car cannot show it wants more; and the share it
  had been offered, which it drew 22 s later, went to the others and took the
  site over its limit). A car plugged in full or on a start timer keeps its
  share until it starts or leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.model import PhaseValues

DRAWING_A = 3.0
"""Below this total per-phase draw the car is not charging in earnest: learn nothing."""

PHASE_SHARE = 0.2
"""A phase carrying less than this share of the largest phase current is not used."""

AT_CAP_TOLERANCE_A = 0.5
"""Drawing within this of the cap counts as drawing up to the cap."""


@dataclass(frozen=True, slots=True)
class EvBelief:
    """What we believe about the car on a connector, in charger phases (0=L1)."""

    phases: tuple[int, ...] | None = None
    ev_max_a: float | None = None
    offered_a: float | None = None
    offered_since: float = 0.0
    probed_at: float = 0.0


def learn_phases(current_a: PhaseValues) -> tuple[int, ...] | None:
    """The charger phases that carry current, or None while the car draws too little."""
    values = [value or 0.0 for value in current_a]
    largest = max(values)
    if largest < DRAWING_A:
        return None
    floor = max(1.0, PHASE_SHARE * largest)
    return tuple(i for i, value in enumerate(values) if value >= floor)


def observe(
    belief: EvBelief,
    current_a: PhaseValues,
    offered_a: float | None,
    at: float,
    settle_s: float,
    probe_a: float,
) -> EvBelief:
    """The belief after one measurement taken at ``at`` (controller monotonic seconds)."""
    phases = learn_phases(current_a) or belief.phases
    if offered_a is None:
        return replace(belief, phases=phases)
    drawn = max(value or 0.0 for value in current_a)
    started = belief.phases is not None  # it drew in earnest before this report
    if belief.offered_a is None or abs(offered_a - belief.offered_a) > 0.05:
        # The offer changed: the car needs time to follow before it says anything,
        # unless it draws well below both the old and the new offer: then it is
        # limited by itself either way, and the time it has shown that still counts.
        limited = (
            belief.offered_a is not None and drawn < min(offered_a, belief.offered_a) - probe_a
        )
        since = belief.offered_since if limited else at
        return replace(belief, phases=phases, offered_a=offered_a, offered_since=since)
    if not started:
        if phases is None:
            return belief  # not started: its response time is its own, a pause would strand it
        # Just started: on time, its settle time from the offer stands; later than that (a
        # car slower than the charger's last one), it gets its settle time from now.
        since = belief.offered_since if at - belief.offered_since < settle_s else at
        return replace(belief, phases=phases, offered_since=since)
    belief = replace(belief, phases=phases)
    settled = at - max(belief.offered_since, belief.probed_at) >= settle_s
    if not settled or offered_a < DRAWING_A:
        return belief
    if drawn < offered_a - probe_a:
        return replace(belief, ev_max_a=drawn + probe_a, probed_at=at)
    if belief.ev_max_a is not None and drawn >= belief.ev_max_a - AT_CAP_TOLERANCE_A:
        return replace(belief, ev_max_a=belief.ev_max_a + probe_a, probed_at=at)
    return belief
