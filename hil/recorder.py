"""Ground truth of a run, sampled every 0.5 s, and the live progress line.

The simulator knows what the controller can only estimate: the true base
load, each EV's true draw and what it could take. :class:`Recorder` samples
that truth from a running :class:`~hil.rig.SimRig` into a time series (site
current per phase, base load, the limit, and per connector the controller's
setpoint, the charger's offer and the EV's draw) and into the
:class:`~hil.kpis.Sample` list the KPIs are computed from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controller.model import connector_key
from hil.devices import ev_cap_a
from hil.kpis import EvDemand, Sample, SiteLimit, available_power_w, limit_power_w
from hil.rig import Plug, SimRig

SAMPLE_S = 0.5


@dataclass
class ConnectorSeries:
    """One connector's time series: what the controller set, what the charger offered, the draw."""

    t: list[float] = field(default_factory=list)
    setpoint_a: list[float | None] = field(default_factory=list)
    offered_a: list[float] = field(default_factory=list)
    draw_a: list[float] = field(default_factory=list)


@dataclass
class Recorder:
    """Samples of one run, and its events (time, label)."""

    limit: SiteLimit
    dt_s: float = SAMPLE_S
    samples: list[Sample] = field(default_factory=list)
    connectors: dict[str, ConnectorSeries] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    disturbances: list[float] = field(default_factory=list)
    changed_limit: SiteLimit | None = None
    """The limit in force since the facility manager last changed it (``None``: the run's)."""
    limit_changes: list[tuple[float, SiteLimit]] = field(default_factory=list)

    def change_limit(self, t: float, limit: SiteLimit) -> None:
        """The facility manager set ``limit`` at ``t``: later samples are judged against it."""
        self.changed_limit = limit
        self.limit_changes.append((t, limit))

    @property
    def in_force(self) -> SiteLimit:
        """The limit samples are judged against now."""
        return self.changed_limit or self.limit

    def follow_operator(self, t: float, rig: SimRig) -> None:
        """A limit set through the API (not the timeline) is judged from when it took effect."""
        site = rig.controller.config.site
        now = SiteLimit(site.max_current_a, site.max_power_w, site.safety_margin_a, site.voltage_v)
        if now != self.in_force:
            self.change_limit(t, now)
            self.event(t, "limit changed by operator", disturbance=True)

    def event(self, t: float, label: str, disturbance: bool = True) -> None:
        """Note an event for the report (and, by default, as a disturbance for the KPIs)."""
        self.events.append((round(t, 2), label))
        if disturbance:
            self.disturbances.append(t)

    def take(self, rig: SimRig) -> Sample:
        """Sample the rig's ground truth now."""
        t = rig.elapsed_s()
        self.follow_operator(t, rig)
        base = rig.site.base_a()
        chargers = rig.site.chargers_a()  # steps every EV to now
        decision = rig.controller.loop.last
        targets = decision.targets if decision is not None else {}
        demands = []
        for (charger_id, connector_id), plug in rig.plugs.items():
            key = connector_key(charger_id, connector_id)
            target = targets.get(key)
            self._record_connector(key, t, rig, plug, target.limit_a if target else None)
            if t >= plug.ready_s:
                demands.append(self._demand(rig, plug))
        for real in rig.real.sessions():  # what real chargers report: no simulator knows them
            key = connector_key(real.charger_id, real.connector_id)
            target = targets.get(key)
            series = self.connectors.setdefault(key, ConnectorSeries())
            series.t.append(round(t, 3))
            series.setpoint_a.append(target.limit_a if target else None)
            series.offered_a.append(round(real.offered_a or math.nan, 2))
            series.draw_a.append(round(max(real.draw_a), 2))
            demands.append(real.demand)
        groups = {cid: c.max_current_a for cid, c in rig.settings.items() if c.connectors > 1}
        sample = Sample(
            t=t,
            site_a=(base[0] + chargers[0], base[1] + chargers[1], base[2] + chargers[2]),
            base_a=base,
            ev_power_w=sum(chargers) * rig.site.voltage_v,
            available_w=available_power_w(self.in_force, base, demands, groups),
            charging=sum(1 for p in rig.plugs.values() if p.ev.current_a() > 0.5),
            mode=decision.mode.value if decision is not None else "",
            limit=self.changed_limit,
        )
        self.samples.append(sample)
        return sample

    def _record_connector(
        self, key: str, t: float, rig: SimRig, plug: Plug, setpoint_a: float | None
    ) -> None:
        series = self.connectors.setdefault(key, ConnectorSeries())
        series.t.append(round(t, 3))
        series.setpoint_a.append(setpoint_a)
        offered = rig.charge_points[plug.charger_id].offered_a(plug.connector_id)
        series.offered_a.append(round(offered, 2))
        series.draw_a.append(round(plug.ev.current_a(), 2))

    def _demand(self, rig: SimRig, plug: Plug) -> EvDemand:
        """What the EV could take now; adds its demand over the sample (up to a full battery)."""
        settings = rig.settings[plug.charger_id]
        wiring = settings.site_phases()
        ev = plug.ev
        wants_a = min(ev_cap_a(ev), settings.max_current_a)
        room_wh = (1.0 - plug.soc_arrival) * ev.battery_kwh * 1000.0
        step_wh = wants_a * len(ev.phases) * ev.voltage_v * self.dt_s / 3600.0
        plug.demand_wh = min(room_wh, plug.demand_wh + step_wh)
        phases = tuple(sorted({wiring[p] for p in ev.phases if p < len(wiring)}))
        return EvDemand(phases, wants_a, plug.charger_id)

    def series(self) -> dict[str, Any]:
        """The time series as plain data (for report.json and the plot)."""
        return {
            "dt_s": self.dt_s,
            "t": [round(s.t, 3) for s in self.samples],
            "site_a": [[round(a, 2) for a in s.site_a] for s in self.samples],
            "base_a": [[round(a, 2) for a in s.base_a] for s in self.samples],
            "ev_power_w": [round(s.ev_power_w, 1) for s in self.samples],
            "available_w": [round(s.available_w, 1) for s in self.samples],
            "mode": [s.mode for s in self.samples],
            "limit_a": self.limit.max_current_a,
            "limit_kw": None if self.limit.max_power_w is None else self.limit.max_power_w / 1000,
            "margin_a": self.limit.margin_a,
            "voltage_v": self.limit.voltage_v,
            "limit_changes": [
                {
                    "t": round(t, 3),
                    "limit_a": lim.max_current_a,
                    "limit_kw": None if lim.max_power_w is None else lim.max_power_w / 1000,
                }
                for t, lim in self.limit_changes
            ],
            "connectors": {
                key: {
                    "t": c.t,
                    "setpoint_a": c.setpoint_a,
                    "offered_a": c.offered_a,
                    "draw_a": c.draw_a,
                }
                for key, c in sorted(self.connectors.items())
            },
            "events": [{"t": t, "label": label} for t, label in self.events],
        }


def status_line(sample: Sample, limit: SiteLimit, failing: list[str]) -> str:
    """One progress line: time, site power against the limit, phases, mode, failing assertions."""
    power_kw = sum(sample.site_a) * limit.voltage_v / 1000
    limit_kw = limit_power_w(limit) / 1000
    phases = " ".join(f"L{i + 1} {a:5.1f} A" for i, a in enumerate(sample.site_a))
    max_a = f"{limit.max_current_a:.0f} A" if limit.max_current_a is not None else "-"
    line = (
        f"t={sample.t:5.1f}s  site {power_kw:6.1f} kW / limit {limit_kw:5.1f} kW  "
        f"[{phases} / {max_a}]  charging {sample.charging}  {sample.mode}"
    )
    if failing:
        line += "  FAILING: " + ", ".join(failing)
    return line
