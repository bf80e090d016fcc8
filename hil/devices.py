"""The simulated devices a scenario describes: base-load profiles and EV models. Pure.

A base load is a function from scenario time to amperes per site phase;
:class:`BaseLoad` wraps one so timeline events can scale it (the building
switching half its load on) or pin it to a value. EVs are :class:`hil.ev.EV`
objects; a model with ``taper_soc`` becomes a :class:`TaperingEV`, whose
onboard charger takes less current as the battery fills (constant current,
then constant voltage), so its unused share is there for others to take.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.ev import EV, MIN_CURRENT_A
from hil.scenario import BaseLoadSpec, CsvLoad, EvSpec
from hil.site import BaseLoadStep, StepProfile

Phases3 = tuple[float, float, float]
Profile = Callable[[float], Phases3]


class BaseLoad:
    """A base-load profile that timeline events can scale or pin."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.scale = 1.0
        self.pinned_a: Phases3 | None = None

    def __call__(self, t_s: float) -> Phases3:
        """The base load at scenario time ``t_s``."""
        base = self.pinned_a if self.pinned_a is not None else self.profile(t_s)
        return (base[0] * self.scale, base[1] * self.scale, base[2] * self.scale)


def read_load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and currents (A, one column per phase) of a recorded load.

    The file has a header row and the columns ``t_s,l1_a,l2_a,l3_a``, times
    rising. Raises ValueError naming the line of the first bad row.
    """
    times: list[float] = []
    rows: list[tuple[float, float, float]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"t_s", "l1_a", "l2_a", "l3_a"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                t = float(row["t_s"])
                values = (float(row["l1_a"]), float(row["l2_a"]), float(row["l3_a"]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"line {line}: not a number ({exc})") from exc
            if times and t <= times[-1]:
                raise ValueError(f"line {line}: t_s must rise")
            times.append(t)
            rows.append(values)
    if not times:
        raise ValueError("no data rows")
    return np.array(times), np.array(rows)


def csv_profile(spec: CsvLoad, base_dir: Path) -> Profile:
    """A recorded load, linearly interpolated, ``speed`` recording seconds per run second."""
    times, currents = read_load_csv(base_dir / spec.path)

    def profile(t_s: float) -> Phases3:
        """The recorded load at run time ``t_s``."""
        at = spec.start_s + t_s * spec.speed
        l1, l2, l3 = (float(np.interp(at, times, currents[:, p])) for p in range(3))
        return (l1, l2, l3)

    return profile


def base_load(spec: BaseLoadSpec, base_dir: Path) -> BaseLoad:
    """The base load a scenario describes."""
    if spec.csv is not None:
        return BaseLoad(csv_profile(spec.csv, base_dir))
    if spec.steps is not None:
        return BaseLoad(StepProfile([BaseLoadStep(s.at_s, s.current_a) for s in spec.steps]))
    constant = spec.constant_a or (0.0, 0.0, 0.0)
    return BaseLoad(lambda _t: constant)


@dataclass
class TaperingEV(EV):
    """An EV whose current falls linearly above ``taper_soc``, down to 6 A near full."""

    taper_soc: float = 0.8

    def cap_a(self) -> float:
        """The most this EV takes per phase now (its onboard limit, tapered)."""
        if self.soc <= self.taper_soc:
            return self.max_current_a
        share = (1.0 - self.soc) / (1.0 - self.taper_soc)
        return max(MIN_CURRENT_A, self.max_current_a * share)

    def current_a(self) -> float:
        """The current per used phase: as a plain EV, capped by the taper."""
        return min(super().current_a(), self.cap_a())


def ev_cap_a(ev: EV) -> float:
    """The most ``ev`` would take per phase now if offered everything (0 when full)."""
    if ev.soc >= 1.0:
        return 0.0
    return ev.cap_a() if isinstance(ev, TaperingEV) else ev.max_current_a


def build_ev(spec: EvSpec, rng: random.Random, soc: float | None, voltage_v: float) -> EV:
    """One EV of model ``spec``, its response delay drawn from the model's range."""
    delay = spec.delay_s
    delay_s = rng.uniform(*delay) if isinstance(delay, tuple) else delay
    ev = EV() if spec.taper_soc is None else TaperingEV(taper_soc=spec.taper_soc)
    ev.max_current_a = spec.max_current_a
    ev.phases = tuple(range(spec.phases))
    ev.response_delay_s = delay_s
    ev.overshoot_a, ev.overshoot_s = spec.overshoot_a, spec.overshoot_s
    ev.battery_kwh = spec.battery_kwh
    ev.soc = spec.soc if soc is None else soc
    ev.voltage_v = voltage_v
    return ev
