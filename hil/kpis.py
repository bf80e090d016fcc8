"""KPIs of a simulated run, from ground-truth samples. Pure.

The simulator knows what the controller can only estimate: the true base
load, each EV's true draw and true maximum. These functions turn samples of
that truth into the numbers a report states.

*Available power* at an instant is what the limit and the EVs allowed: the
largest total EV power with every site phase under its limit less the
margin, the power limit likewise, and each EV at most its own maximum. It is
a linear programme (solved with HiGHS); it ignores the 6 A minimum, so it is
an upper bound and utilisation is, if anything, understated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog


@dataclass(frozen=True, slots=True)
class EvDemand:
    """One plugged-in EV: the site phases it draws on and the most it can take per phase."""

    phases: tuple[int, ...]
    max_a: float


@dataclass(frozen=True, slots=True)
class SiteLimit:
    """The limit a run is judged against."""

    max_current_a: float | None
    max_power_w: float | None
    margin_a: float
    voltage_v: float


@dataclass(frozen=True, slots=True)
class Sample:
    """The true state of the simulated site at one instant."""

    t: float
    site_a: tuple[float, float, float]
    base_a: tuple[float, float, float]
    ev_power_w: float
    available_w: float
    charging: int
    mode: str = ""


def available_power_w(limit: SiteLimit, base_a: Sequence[float], evs: Sequence[EvDemand]) -> float:
    """The most EV power the limit (less margin) and the EVs' maxima allowed at this instant."""
    evs = [ev for ev in evs if ev.max_a > 0 and ev.phases]
    if not evs:
        return 0.0
    weights = np.array([len(ev.phases) for ev in evs], dtype=float)
    rows, bounds = [], []
    if limit.max_current_a is not None:
        for phase in range(3):
            rows.append([1.0 if phase in ev.phases else 0.0 for ev in evs])
            bounds.append(max(limit.max_current_a - limit.margin_a - base_a[phase], 0.0))
    if limit.max_power_w is not None:
        rows.append(list(weights))
        budget_w = limit.max_power_w - 3 * limit.margin_a * limit.voltage_v
        bounds.append(max(budget_w / limit.voltage_v - sum(base_a), 0.0))
    result = linprog(
        -weights,
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(bounds) if rows else None,
        bounds=[(0.0, ev.max_a) for ev in evs],
        method="highs",
    )
    if not result.success:
        return 0.0
    return float(-result.fun * limit.voltage_v)


def over_limit(limit: SiteLimit, site_a: Sequence[float]) -> bool:
    """True when the true site load is above the limit itself (not the margin)."""
    if limit.max_current_a is not None and max(site_a) > limit.max_current_a + 1e-6:
        return True
    power_w = sum(site_a) * limit.voltage_v
    return limit.max_power_w is not None and power_w > limit.max_power_w + 1e-3


@dataclass
class RunSummary:
    """The numbers of a run, as written to the report."""

    limit_kw: float
    peak_site_kw: float
    seconds_over_limit: float
    delivered_kwh: float
    available_kwh: float
    utilization: float
    seconds_over_limit_unexplained: float
    over_limit_intervals: list[dict[str, float]] = field(default_factory=list)


def summarize(
    samples: Sequence[Sample],
    limit: SiteLimit,
    dt_s: float,
    disturbances: Sequence[float],
    allowance_s: float,
) -> RunSummary:
    """KPIs over a run sampled every ``dt_s``.

    Each over-limit sample is tied to the disturbance (arrival, departure, load
    step) before it; time over the limit later than ``allowance_s`` after the
    last disturbance is *unexplained*: the controller, not the EVs' response
    delay, let the site stay over.
    """
    limit_w = limit.max_power_w
    if limit_w is None and limit.max_current_a is not None:
        limit_w = 3 * limit.max_current_a * limit.voltage_v
    peak_w = max((sum(s.site_a) * limit.voltage_v for s in samples), default=0.0)
    delivered_j = sum(s.ev_power_w for s in samples) * dt_s
    available_j = sum(s.available_w for s in samples) * dt_s
    intervals: list[dict[str, float]] = []
    for s in samples:
        if not over_limit(limit, s.site_a):
            continue
        before = [d for d in disturbances if d <= s.t]
        since = s.t - max(before) if before else float("inf")
        if intervals and abs(s.t - intervals[-1]["end_s"] - dt_s) < dt_s / 2:
            intervals[-1]["end_s"] = s.t
            intervals[-1]["peak_a"] = max(intervals[-1]["peak_a"], max(s.site_a))
        else:
            intervals.append(
                {
                    "start_s": s.t,
                    "end_s": s.t,
                    "after_disturbance_s": since,
                    "peak_a": max(s.site_a),
                }
            )
    over_s = sum(1 for s in samples if over_limit(limit, s.site_a)) * dt_s
    unexplained = [
        s
        for s in samples
        if over_limit(limit, s.site_a)
        and s.t - max((d for d in disturbances if d <= s.t), default=-1e9) > allowance_s
    ]
    return RunSummary(
        limit_kw=round((limit_w or 0.0) / 1000, 3),
        peak_site_kw=round(peak_w / 1000, 3),
        seconds_over_limit=round(over_s, 3),
        delivered_kwh=round(delivered_j / 3.6e6, 4),
        available_kwh=round(available_j / 3.6e6, 4),
        utilization=round(delivered_j / available_j, 4) if available_j > 0 else 0.0,
        seconds_over_limit_unexplained=round(len(unexplained) * dt_s, 3),
        over_limit_intervals=intervals,
    )
