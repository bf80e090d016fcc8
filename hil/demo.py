"""``headroom demo``: a simulated site and the controller in one process, over loopback.

The controller is the same :class:`controller.service.SiteController` that
``headroom run`` starts; only its peers are simulated: OCPP 1.6 charge points
with EVs over real websockets, and an SDM630-like meter over real Modbus TCP.
The timeline has EVs arriving over the first half, one leaving, and the
building load stepping up and back down, so the loop visibly reacts.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controller.config import HeadroomConfig, parse_config
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.kpis import EvDemand, Sample, SiteLimit, available_power_w, summarize
from hil.meter import SimulatedMeter
from hil.site import BaseLoadStep, SimulatedSite, StepProfile, WiredCharger

SAMPLE_S = 0.5
ROTATIONS = ("L1L2L3", "L2L3L1", "L3L1L2")
EV_DELAY_S = (1.0, 5.0)  # each EV follows a new limit after a delay drawn from this range
REACTION_S = 3.0  # meter poll + MeterValues interval + one tick: how long seeing takes
BASE_BEFORE_A = (30.0, 22.0, 18.0)  # unbalanced building load
BASE_STEP_A = (50.0, 37.0, 28.0)  # the step: +20 A, +15 A, +10 A


def demo_config(chargers: int, meter_port: int, ocpp_port: int = 0) -> HeadroomConfig:
    """The demo site: 12 A per charger per phase of grid connection, the rest shared."""
    limit_a = max(80.0, 12.0 * chargers)
    return parse_config(
        {
            "site": {
                "id": "demo",
                "voltage_v": 230,
                "max_current_a": limit_a,
                "max_power_kw": round(0.9 * 3 * 230 * limit_a / 1000, 1),
                "safety_margin_a": 2,
                "failsafe_current_a": 6,
                "base_load_reserve_a": 40,
            },
            "control": {"interval_s": 1.0, "lease_s": 120, "deadband_a": 0.5, "ev_settle_s": 8},
            "ocpp": {"host": "127.0.0.1", "port": ocpp_port, "call_timeout_s": 5},
            "meter": {"host": "127.0.0.1", "port": meter_port, "poll_interval_s": 0.5},
            "chargers": [
                {"id": f"cp-{i + 1:02d}", "max_current_a": 32, "phase_rotation": ROTATIONS[i % 3]}
                for i in range(chargers)
            ],
        },
        source="demo",
    )


def demo_ev(index: int, rng: random.Random) -> EV:
    """A mix of cars: 3-phase 32 A and 16 A, and every fourth a 1-phase 32 A car."""
    delay_s = rng.uniform(*EV_DELAY_S)
    if index % 4 == 3:
        return EV(max_current_a=32.0, phases=(0,), response_delay_s=delay_s, soc=0.2)
    max_a = 16.0 if index % 4 == 1 else 32.0
    return EV(max_current_a=max_a, phases=(0, 1, 2), response_delay_s=delay_s, soc=0.3)


@dataclass
class DemoRun:
    """What the demo recorded: the timeline and the samples."""

    disturbances: list[float] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


async def run_demo(
    chargers: int = 10,
    duration_s: float = 60.0,
    report_path: str | Path | None = None,
    seed: int = 1,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo site and return (and optionally write) the report."""
    rng = random.Random(seed)
    steps = [
        BaseLoadStep(0.0, BASE_BEFORE_A),
        BaseLoadStep(0.55 * duration_s, BASE_STEP_A),
        BaseLoadStep(0.85 * duration_s, BASE_BEFORE_A),
    ]
    site = SimulatedSite(StepProfile(steps), [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    charge_points: list[SimulatedChargePoint] = []
    await meter.start()
    config = demo_config(chargers, meter.port)
    controller = SiteController(config)
    try:
        await controller.start()
        url = f"ws://127.0.0.1:{controller.ocpp.port}/ocpp"
        for c in config.chargers:
            charge_points.append(
                SimulatedChargePoint(c.id, url, max_current_a=c.max_current_a, meter_interval_s=1.0)
            )
        site.chargers.extend(
            WiredCharger(cp, c.site_phases())
            for cp, c in zip(charge_points, config.chargers, strict=True)
        )
        await asyncio.gather(*(cp.start() for cp in charge_points))
        run = DemoRun(disturbances=[s.at_s for s in steps[1:]])
        await _drive(run, site, charge_points, config, controller, duration_s, rng, out)
    finally:
        await asyncio.gather(*(cp.stop() for cp in charge_points), return_exceptions=True)
        await controller.stop()
        await meter.stop()
    report = _report(run, config, controller, duration_s)
    if report_path is not None:
        text = json.dumps(report, indent=2) + "\n"
        await asyncio.to_thread(Path(report_path).write_text, text, encoding="utf-8")
    return report


async def _drive(
    run: DemoRun,
    site: SimulatedSite,
    charge_points: list[SimulatedChargePoint],
    config: HeadroomConfig,
    controller: SiteController,
    duration_s: float,
    rng: random.Random,
    out: Callable[[str], None],
) -> None:
    n = len(charge_points)
    arrivals = {i: 0.02 * duration_s + 0.43 * duration_s * i / max(n - 1, 1) for i in range(n)}
    departure = (n // 2, 0.7 * duration_s) if n > 1 else None
    evs: dict[int, EV] = {}
    ready_at: dict[int, float] = {}
    limit = _limit(config)
    next_print = 0.0
    while (t := site.elapsed_s()) < duration_s:
        for i, at_s in list(arrivals.items()):
            if t >= at_s:
                del arrivals[i]
                evs[i] = demo_ev(i, rng)
                ready_at[i] = t + evs[i].response_delay_s  # the car's own wake-up time
                await charge_points[i].plug_in(1, evs[i])
                run.disturbances.append(site.elapsed_s())
                run.events.append(f"{t:6.1f}s EV arrives at {charge_points[i].charger_id}")
        if departure is not None and t >= departure[1] and departure[0] in evs:
            index = departure[0]
            await charge_points[index].unplug(1)
            del evs[index]
            departure = None
            run.disturbances.append(site.elapsed_s())
            run.events.append(f"{t:6.1f}s EV leaves {charge_points[index].charger_id}")
        ready = {i: ev for i, ev in evs.items() if t >= ready_at[i]}
        sample = _sample(site, ready, config, limit, controller)
        run.samples.append(sample)
        if t >= next_print:
            next_print += 1.0
            out(_status_line(sample, limit))
        await asyncio.sleep(max(0.0, SAMPLE_S - (site.elapsed_s() - t)))


def _limit(config: HeadroomConfig) -> SiteLimit:
    site = config.site
    return SiteLimit(site.max_current_a, site.max_power_w, site.safety_margin_a, site.voltage_v)


def _sample(
    site: SimulatedSite,
    ready: dict[int, EV],
    config: HeadroomConfig,
    limit: SiteLimit,
    controller: SiteController,
) -> Sample:
    """Ground truth now; only cars past their own wake-up delay count as able to charge."""
    base = site.base_a()
    demands = []
    for i, ev in ready.items():
        wiring = config.chargers[i].site_phases()
        wants_a = 0.0 if ev.soc >= 1.0 else min(ev.max_current_a, config.chargers[i].max_current_a)
        demands.append(EvDemand(tuple(sorted(wiring[p] for p in ev.phases)), wants_a))
    chargers = site.chargers_a()
    mode = controller.loop.last.mode.value if controller.loop.last else ""
    return Sample(
        t=site.elapsed_s(),
        site_a=(base[0] + chargers[0], base[1] + chargers[1], base[2] + chargers[2]),
        base_a=base,
        ev_power_w=sum(chargers) * site.voltage_v,
        available_w=available_power_w(limit, base, demands),
        charging=sum(1 for w in site.chargers if max(w.charge_point.draw_a()) > 0.5),
        mode=mode,
    )


def _status_line(sample: Sample, limit: SiteLimit) -> str:
    power_kw = sum(sample.site_a) * limit.voltage_v / 1000
    limit_kw = (limit.max_power_w or 0.0) / 1000
    phases = " ".join(f"L{i + 1} {a:5.1f} A" for i, a in enumerate(sample.site_a))
    return (
        f"t={sample.t:5.1f}s  site {power_kw:6.1f} kW / limit {limit_kw:5.1f} kW  "
        f"[{phases} / {limit.max_current_a:.0f} A]  charging {sample.charging}  {sample.mode}"
    )


def _report(
    run: DemoRun, config: HeadroomConfig, controller: SiteController, duration_s: float
) -> dict[str, Any]:
    allowance_s = EV_DELAY_S[1] + REACTION_S
    summary = summarize(run.samples, _limit(config), SAMPLE_S, run.disturbances, allowance_s)
    report = asdict(summary)
    report.update(
        {
            "chargers": len(config.chargers),
            "duration_s": duration_s,
            "limit_a": config.site.max_current_a,
            "setpoint_commands": controller.dispatcher.sent,
            "command_results": dict(controller.dispatcher.results),
            "decisions": controller.loop.decisions,
            "over_limit_allowance_s": allowance_s,
            "disturbances_s": [round(d, 2) for d in sorted(run.disturbances)],
            "events": run.events,
        }
    )
    return report
