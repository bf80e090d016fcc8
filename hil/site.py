"""A simulated site: base load, chargers with EVs, and the grid meter that sees them all.

The meter reading is the physics of the site: the non-controllable base load
plus every charger's draw, mapped through its phase rotation onto the site
phases. :class:`SimulatedSite` is the ``source`` of a
:class:`hil.meter.SimulatedMeter`, so every Modbus poll sees the site as it
is at that instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hil.charge_point import SimulatedChargePoint
from hil.meter import MeterValues

Phases3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class BaseLoadStep:
    """From ``at_s`` on, the base load is ``current_a`` per site phase."""

    at_s: float
    current_a: Phases3


class StepProfile:
    """A base load that changes in steps (the building switching loads on and off)."""

    def __init__(self, steps: Sequence[BaseLoadStep]) -> None:
        self.steps = sorted(steps, key=lambda s: s.at_s)

    def __call__(self, t_s: float) -> Phases3:
        """The base load at scenario time ``t_s``."""
        current = self.steps[0].current_a
        for step in self.steps:
            if step.at_s <= t_s:
                current = step.current_a
        return current


@dataclass
class WiredCharger:
    """A simulated charger and the site phases its L1, L2, L3 are wired to."""

    charge_point: SimulatedChargePoint
    site_phases: tuple[int, ...] = (0, 1, 2)


def to_site_phases(draw_a: Sequence[float], site_phases: Sequence[int]) -> Phases3:
    """A charger's per-phase draw (its L1..L3) on the site phases."""
    site = [0.0, 0.0, 0.0]
    for charger_phase, site_phase in enumerate(site_phases):
        site[site_phase] += draw_a[charger_phase]
    return (site[0], site[1], site[2])


class SimulatedSite:
    """Base load plus chargers, as the grid meter measures them."""

    def __init__(
        self,
        base_load: Callable[[float], Phases3],
        chargers: Sequence[WiredCharger],
        clock: Callable[[], float],
        voltage_v: float = 230.0,
        reported_a: Callable[[], Phases3] | None = None,
    ) -> None:
        self.base_load = base_load
        self.chargers = list(chargers)
        self.reported_a = reported_a
        """The draw of chargers no simulator plays (real ones), as they report it."""
        self._clock = clock
        self._t0 = clock()
        self.voltage_v = voltage_v

    def elapsed_s(self) -> float:
        """Scenario time: seconds since the site was built."""
        return self._clock() - self._t0

    def base_a(self) -> Phases3:
        """The base load now."""
        return self.base_load(self.elapsed_s())

    def chargers_a(self) -> Phases3:
        """All chargers' draw now, on site phases (real ones as they report it)."""
        total = list(self.reported_a()) if self.reported_a is not None else [0.0, 0.0, 0.0]
        for wired in self.chargers:
            site = to_site_phases(wired.charge_point.draw_a(), wired.site_phases)
            for phase in range(3):
                total[phase] += site[phase]
        return (total[0], total[1], total[2])

    def site_a(self) -> Phases3:
        """What the grid meter measures per phase now."""
        base, chargers = self.base_a(), self.chargers_a()
        return (base[0] + chargers[0], base[1] + chargers[1], base[2] + chargers[2])

    def meter_values(self) -> MeterValues:
        """The source for a simulated grid meter (import positive, unity power factor)."""
        site = self.site_a()
        return MeterValues(current_a=site, power_w=sum(site) * self.voltage_v)
