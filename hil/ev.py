"""A simulated EV: follows the offered current after a delay and fills its battery (pure).

No I/O and no clock: the caller passes the time to :meth:`EV.step`, so a
scenario can run faster than real time and two runs give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_CURRENT_A = 6.0
"""IEC 61851: below 6 A the PWM signal cannot offer current, so the EV stops drawing."""

PhaseDraw = tuple[float, float, float]


@dataclass
class EV:
    """An EV plugged into a charger; its draw per charger phase comes from :meth:`step`."""

    max_current_a: float = 32.0  # onboard charger limit per phase
    phases: tuple[int, ...] = (0, 1, 2)  # charger phases it draws on (0 = L1)
    response_delay_s: float = 2.0  # time to follow a new offered limit
    battery_kwh: float = 60.0
    soc: float = 0.3  # state of charge, 0..1
    voltage_v: float = 230.0
    charged_wh: float = 0.0  # energy taken since plug-in
    overshoot_a: float = 0.0  # after following an increase, draws this much above it…
    overshoot_s: float = 0.0  # …for this long (some cars overshoot a new limit briefly)
    _target_a: float = field(default=0.0, init=False, repr=False)
    _offers: list[tuple[float, float]] = field(default_factory=list, init=False, repr=False)
    _last_now: float | None = field(default=None, init=False, repr=False)
    _overshoot_until: float = field(default=float("-inf"), init=False, repr=False)
    _overshooting: bool = field(default=False, init=False, repr=False)

    def step(self, now: float, offered_a: float) -> PhaseDraw:
        """The draw per charger phase at ``now`` (s) under ``offered_a`` (A per phase).

        Energy drawn since the previous step (at the previous draw) is added
        to the battery first. The EV is a pure delay: at ``now`` it follows
        the offer that stood ``response_delay_s`` ago, so every change is
        followed, each one late.
        """
        self._integrate(now)
        if not self._offers or offered_a != self._offers[-1][1]:
            self._offers.append((now, offered_a))
        due = [i for i, (at, _) in enumerate(self._offers) if now - at >= self.response_delay_s]
        if due:
            offered_at, target_a = self._offers[due[-1]]
            if target_a > self._target_a and self.overshoot_s > 0:
                self._overshoot_until = offered_at + self.response_delay_s + self.overshoot_s
            self._target_a = target_a
            del self._offers[: due[-1]]  # keep the one in force and any still on their way
        self._overshooting = now < self._overshoot_until
        self._last_now = now
        return self.draw_a()

    def draw_a(self) -> PhaseDraw:
        """The draw per charger phase as of the last step."""
        current_a = self.current_a()
        draw = [current_a if phase in self.phases else 0.0 for phase in range(3)]
        return (draw[0], draw[1], draw[2])

    def current_a(self) -> float:
        """The current per used phase: the target capped by the onboard charger, 0 when full."""
        if self.soc >= 1.0:
            return 0.0
        current_a = min(self._target_a, self.max_current_a)
        if current_a < MIN_CURRENT_A:
            return 0.0
        return current_a + self.overshoot_a if self._overshooting else current_a

    def power_w(self) -> float:
        """The power drawn now, in W."""
        return self.current_a() * self.voltage_v * len(self.phases)

    def _integrate(self, now: float) -> None:
        """Add the energy drawn since the last step to the battery (capped at full)."""
        if self._last_now is None or now <= self._last_now:
            return
        capacity_wh = self.battery_kwh * 1000.0
        room_wh = (1.0 - self.soc) * capacity_wh
        energy_wh = self.power_w() * (now - self._last_now) / 3600.0
        if energy_wh >= room_wh:  # full: set exactly 1 so rounding cannot leave a trickle
            self.charged_wh += room_wh
            self.soc = 1.0
        else:
            self.charged_wh += energy_wh
            self.soc += energy_wh / capacity_wh
