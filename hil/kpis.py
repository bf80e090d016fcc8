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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog


@dataclass(frozen=True, slots=True)
class EvDemand:
    """One plugged-in EV: the site phases it draws on and the most it can take per phase.

    ``group`` names the charger when several connectors share its rating
    (``available_power_w``'s ``group_limits_a``).
    """

    phases: tuple[int, ...]
    max_a: float
    group: str = ""


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
    limit: SiteLimit | None = None
    """The limit in force at ``t`` when the facility manager changed it during the run."""

    def limit_or(self, run_limit: SiteLimit) -> SiteLimit:
        """The limit this sample is judged against."""
        return self.limit or run_limit


def available_power_w(
    limit: SiteLimit,
    base_a: Sequence[float],
    evs: Sequence[EvDemand],
    group_limits_a: Mapping[str, float] | None = None,
) -> float:
    """The most EV power the limit (less margin) and the EVs' maxima allowed at this instant.

    ``group_limits_a`` caps, per phase, the EVs of one group together (a
    charger's rating shared by its connectors).
    """
    evs = [ev for ev in evs if ev.max_a > 0 and ev.phases]
    if not evs:
        return 0.0
    weights = np.array([len(ev.phases) for ev in evs], dtype=float)
    rows, bounds = [], []
    for group, group_a in (group_limits_a or {}).items():
        members = [ev for ev in evs if ev.group == group]
        if len(members) < 2:
            continue  # one EV alone is already capped by its own maximum
        for phase in range(3):
            rows.append([1.0 if ev.group == group and phase in ev.phases else 0.0 for ev in evs])
            bounds.append(group_a)
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


def limit_power_w(limit: SiteLimit) -> float:
    """The power limit in W; with a current limit only, what it allows on three phases."""
    if limit.max_power_w is not None:
        return limit.max_power_w
    return 3 * (limit.max_current_a or 0.0) * limit.voltage_v


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
    limit_w = limit_power_w(limit)
    peak_w = max((sum(s.site_a) * limit.voltage_v for s in samples), default=0.0)
    delivered_j = sum(s.ev_power_w for s in samples) * dt_s
    available_j = sum(s.available_w for s in samples) * dt_s
    intervals: list[dict[str, float]] = []
    for s in samples:
        if not over_limit(s.limit_or(limit), s.site_a):
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
    over_s = sum(1 for s in samples if over_limit(s.limit_or(limit), s.site_a)) * dt_s
    unexplained = [
        s
        for s in samples
        if over_limit(s.limit_or(limit), s.site_a)
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


# --- KPIs of issue 8: overshoot, recovery, fairness, shortfall, commands, peaks -------------


def commands_per_charger_per_hour(commands: int, chargers: int, duration_s: float) -> float:
    """The command rate of the average charger, scaled to an hour."""
    if chargers <= 0 or duration_s <= 0:
        return 0.0
    return round(commands / chargers * 3600 / duration_s, 1)


BILLING_WINDOW_S = 900.0  # demand charges bill the highest 15-min mean


def peak_window_s(duration_s: float) -> float:
    """15 min for runs of an hour or more; a quarter of a shorter run (it stands for an hour)."""
    return BILLING_WINDOW_S if duration_s >= 3600 else duration_s / 4


def peak_mean_kw(
    samples: Sequence[Sample], voltage_v: float, window_s: float, dt_s: float
) -> float:
    """The highest mean site power over any ``window_s`` of the run, in kW."""
    if not samples:
        return 0.0
    power_w = np.array([sum(s.site_a) * voltage_v for s in samples])
    n = max(1, min(len(power_w), round(window_s / dt_s)))
    means = np.convolve(power_w, np.ones(n) / n, mode="valid")
    return round(float(means.max()) / 1000, 3)


def limit_use(limit: SiteLimit, samples: Sequence[Sample], short_share: float = 0.05) -> float:
    """How full the site ran while the EVs got less than they could: the mean, over samples
    where the EVs drew more than ``short_share`` below the available power, of the binding
    limit's use (the most loaded phase ÷ (max_current_a − margin), or the power ÷ the power
    limit less the margin, whichever is higher). 1.0 when the EVs were never short.

    Unlike utilisation it does not favour 3-phase cars: on an unbalanced site a fair policy
    fills the binding phase and scores 1 here, while the power-maximising upper bound of
    utilisation would starve the 1-phase cars.
    """
    uses = []
    run_limit = limit
    for s in samples:
        if s.available_w - s.ev_power_w <= short_share * s.available_w:
            continue
        limit = s.limit_or(run_limit)
        use = 0.0
        if limit.max_current_a is not None:
            use = max(s.site_a) / (limit.max_current_a - limit.margin_a)
        if limit.max_power_w is not None:
            budget_w = limit.max_power_w - 3 * limit.margin_a * limit.voltage_v
            use = max(use, sum(s.site_a) * limit.voltage_v / budget_w)
        uses.append(use)
    return round(sum(uses) / len(uses), 4) if uses else 1.0


def seconds_in_mode(samples: Sequence[Sample], mode: str, dt_s: float) -> float:
    """How long the controller's last decision was in ``mode`` (hold, failsafe)."""
    return round(sum(1 for s in samples if s.mode == mode) * dt_s, 3)


KPI_NAMES = (
    "limit_kw",
    "peak_site_kw",
    "seconds_over_limit",
    "seconds_over_limit_unexplained",
    "delivered_kwh",
    "available_kwh",
    "utilization",
    "limit_use",
    "peak_over_limit_a",
    "peak_over_limit_kw",
    "energy_over_limit_kwh",
    "max_recovery_s",
    "disturbances_unrecovered",
    "fairness",
    "fairness_weighted",
    "energy_shortfall_kwh",
    "commands_per_charger_per_hour",
    "peak_15min_kw",
    "seconds_hold",
    "seconds_failsafe",
    "sessions",
    "increases_within_response",
)
"""The scalar KPIs a scenario's assertions may name."""
