"""What a scenario run produced: its KPIs, its verdict per assertion and its time series.

:func:`compute_kpis` gathers every KPI of :mod:`hil.kpis` and
:mod:`hil.fairness` from the recorder's samples and the rig's EV stays;
:class:`ScenarioResult` is what :func:`hil.runner.run_scenario` returns and
what :mod:`hil.report` writes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.assertions import AssertionResult
from hil.fairness import SessionOutcome, fairness, shortfall_kwh
from hil.kpis import (
    commands_per_charger_per_hour,
    limit_use,
    peak_mean_kw,
    peak_window_s,
    seconds_in_mode,
    summarize,
)
from hil.overshoot import overshoot, recovery_times
from hil.recorder import Recorder
from hil.rig import Plug

REACTION_S = 3.0  # meter poll + MeterValues interval + one tick: how long seeing takes


@dataclass
class ScenarioResult:
    """One run of one scenario under one policy."""

    scenario: str
    description: str
    policy: str
    duration_s: float
    passed: bool
    kpis: dict[str, Any]
    assertions: list[AssertionResult]
    series: dict[str, Any]
    controller: dict[str, Any]
    report_files: dict[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for report.json."""
        return {
            "scenario": self.scenario,
            "description": self.description,
            "policy": self.policy,
            "duration_s": self.duration_s,
            "passed": self.passed,
            "assertions": [asdict(a) for a in self.assertions],
            "kpis": self.kpis,
            "controller": self.controller,
            "series": self.series,
        }


def finite(data: Any) -> Any:
    """``data`` with every infinite or NaN float replaced by None (JSON has neither)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def outcome(plug: Plug) -> SessionOutcome:
    """A finished (or still running) EV stay, as the fairness KPIs see it."""
    needed = None
    if plug.departure_s is not None and plug.departed_s is not None:
        needed = max(0.0, plug.target_soc - plug.soc_arrival) * plug.ev.battery_kwh * 1000.0
    return SessionOutcome(
        key=f"{plug.charger_id}/{plug.connector_id}@{plug.arrived_s:.1f}",
        priority=plug.priority,
        delivered_wh=plug.ev.charged_wh,
        demand_wh=plug.demand_wh,
        needed_wh=needed,
    )


def compute_kpis(
    recorder: Recorder,
    plugs: list[Plug],
    commands: int,
    chargers: int,
    duration_s: float,
    allowance_s: float,
) -> dict[str, Any]:
    """Every KPI of the run (see docs/hil.md for each definition)."""
    samples, limit, dt_s = recorder.samples, recorder.limit, recorder.dt_s
    disturbances = sorted(recorder.disturbances)
    kpis: dict[str, Any] = asdict(summarize(samples, limit, dt_s, disturbances, allowance_s))
    kpis["limit_use"] = limit_use(limit, samples)
    kpis.update(overshoot(limit, samples, dt_s))
    recovery = recovery_times(limit, samples, disturbances, dt_s)
    end_s = samples[-1].t if samples else 0.0
    observed = [
        r["recover_s"] if r["recover_s"] is not None else end_s - (r["at_s"] or 0.0)
        for r in recovery
    ]
    kpis["max_recovery_s"] = round(max(observed, default=0.0), 3)
    kpis["disturbances_unrecovered"] = sum(1 for r in recovery if r["recover_s"] is None)
    kpis["recovery"] = recovery
    outcomes = [outcome(p) for p in plugs]
    kpis.update(fairness(outcomes))
    kpis["energy_shortfall_kwh"] = shortfall_kwh(outcomes)
    kpis["sessions"] = len(outcomes)
    kpis["commands_per_charger_per_hour"] = commands_per_charger_per_hour(
        commands, chargers, duration_s
    )
    window_s = peak_window_s(duration_s)
    kpis["peak_15min_kw"] = peak_mean_kw(samples, limit.voltage_v, window_s, dt_s)
    kpis["peak_window_s"] = window_s
    kpis["seconds_hold"] = seconds_in_mode(samples, "hold", dt_s)
    kpis["seconds_failsafe"] = seconds_in_mode(samples, "failsafe", dt_s)
    kpis["over_limit_allowance_s"] = allowance_s
    return kpis
