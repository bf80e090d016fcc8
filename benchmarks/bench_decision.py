"""CPU time of one control-loop decision at depot scale, without sockets.

Usage::

    python benchmarks/bench_decision.py [--chargers 1000] [--cycles 20]
        [--profile cprofile --profile-out FILE] [--json FILE]

The real :class:`~controller.loop.ControlLoop` (snapshot, base-load estimate,
the policy, the plan, the dispatcher's submit) decides for a site of
``--chargers`` three-phase 32 A chargers on a manual clock: each charger
reports its draw once a second at its own phase of the second, the site meter
reads every 0.25 s (the base load plus every car's last report, as in
``bench_reaction.py``), a decision runs every 1 s tick and at once on an
over-limit reading. The links accept every setpoint at once and each car
draws what it was last given. Every ``--cycles`` the base load steps up by
1 A per charger (the urgent decision) and down again.

What it prints is CPU time (``time.process_time``) per decision, split into
the urgent decisions (the first after an over-limit reading: the one the
reaction latency waits for) and the ticks, and the base-load estimate's share
of each. CPU time does not depend on what else runs on the machine; compare
it before and after a change to the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Profile, configure_logs, machine, percentile
from benchmarks.site import BASE_LOW_A, STEP_A, bench_config
from controller.base_load import BaseLoadEstimate
from controller.clock import ManualClock
from controller.dispatcher import Dispatcher
from controller.loop import ControlLoop
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerMeasurement,
    CommandResult,
    CommandStatus,
    MeterReading,
    ProfileCommand,
    ProfilePurpose,
    SessionStarted,
)
from controller.state import SiteState
from controller.urgency import over_limit
from policies import get_policy

QUARTERS = 4  # meter readings per second


class AcceptingLink:
    """A charger that accepts every profile at once; its car draws the last TxProfile's limit."""

    def __init__(self, charger_id: str) -> None:
        self.charger_id = charger_id
        self.draw_a = 0.0

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        if command.purpose is ProfilePurpose.TX:
            self.draw_a = min(command.limit_a, 32.0)
        return CommandResult(command, CommandStatus.ACCEPTED, 0.0)

    async def prepare(self) -> None:
        return None


class TimedEstimate(BaseLoadEstimate):
    """The loop's estimate, its CPU time kept per call."""

    def __init__(self, window_s: float) -> None:
        super().__init__(window_s)
        self.last_cpu_s = 0.0

    def estimate(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return super().estimate(*args, **kwargs)
        finally:
            self.last_cpu_s = time.process_time() - t0


class DecisionBench:
    """The site, its loop and the simulated fleet on one manual clock."""

    def __init__(self, chargers: int) -> None:
        self.config = bench_config(1, chargers)
        self.clock = ManualClock(start=1000.0)
        config = self.config
        self.state = SiteState.for_site(config, lambda: self.clock.now().timestamp())
        self.links = {f"cp-{i}": AcceptingLink(f"cp-{i}") for i in range(chargers)}
        self.dispatcher = Dispatcher(
            links=self.links.get,
            clock=self.clock,
            failsafe_a=config.site.failsafe_current_a,
            lease_s=config.control.lease_s,
        )
        self.loop = ControlLoop(
            config, self.state, get_policy(config.control.policy), self.dispatcher, self.clock
        )
        self.estimate = TimedEstimate(config.control.base_load_window_s)
        self.loop._base = self.estimate  # the benchmark's probe on the estimate
        self.meter_id = next(iter(config.meter_specs()))
        self.base_a = BASE_LOW_A
        self.ids = list(self.links)
        self.samples: dict[str, list[tuple[float, float]]] = {"urgent": [], "tick": []}

    async def start(self) -> None:
        now = self.clock.monotonic()
        for i, cid in enumerate(self.ids):
            self.state.apply(ChargerConnected(cid, now))
            self.state.apply(ChargerBooted(cid, now))
            self.state.apply(SessionStarted(cid, 1, i + 1, now))

    async def decide(self, kind: str) -> None:
        t0 = time.process_time()
        self.loop.decide_once()
        cpu_s = time.process_time() - t0
        self.samples[kind].append((cpu_s, self.estimate.last_cpu_s))
        for _ in range(3):  # the dispatcher's tasks send and record
            await asyncio.sleep(0)

    async def second(self, record: bool) -> None:
        """One simulated second: reports spread over it, four meter readings, one tick."""
        per_quarter = len(self.ids) // QUARTERS
        for q in range(QUARTERS):
            self.clock.advance(0.25 / (per_quarter + 1))
            for cid in self.ids[q * per_quarter : (q + 1) * per_quarter]:
                draw = self.links[cid].draw_a
                self.state.apply(
                    ChargerMeasurement(
                        cid, 1, self.clock.monotonic(), (draw, draw, draw), offered_a=draw
                    )
                )
                self.clock.advance(0.25 / (per_quarter + 1))
            reading = self._reading()
            self.state.apply(reading)
            if over_limit(reading, self.config):
                self.loop.wake(over_limit=True)
                await self.decide("urgent" if record else "warmup")
        await self.decide("tick" if record else "warmup")

    def _reading(self) -> MeterReading:
        drawn = sum(link.draw_a for link in self.links.values())
        current = self.base_a + drawn
        return MeterReading(
            self.meter_id,
            self.clock.monotonic(),
            (current, current, current),
            current * 230.0 * 3,
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = DecisionBench(args.chargers)
    bench.samples["warmup"] = []
    await bench.start()
    for _ in range(5):
        await bench.second(record=False)
    gc.collect()
    gc.freeze()  # as the service does once it is steady
    profile = Profile(args.profile, args.profile_out or "/tmp/bench-decision-profile")
    collections0 = [g["collections"] for g in gc.get_stats()]
    with profile.window():
        for _ in range(args.cycles):
            bench.base_a = BASE_LOW_A + args.chargers * STEP_A
            for _ in range(3):
                await bench.second(record=True)
            bench.base_a = BASE_LOW_A
            for _ in range(3):
                await bench.second(record=True)
    profile.save()
    collections = [
        g["collections"] - c0 for g, c0 in zip(gc.get_stats(), collections0, strict=True)
    ]
    print(
        f"cycle collections over the {args.cycles * 6} simulated seconds: "
        + ", ".join(f"gen{g}: {n}" for g, n in enumerate(collections))
    )
    return {kind: bench.samples[kind] for kind in ("urgent", "tick")}


STEPS = (
    ("controller.loop:ControlLoop._decide_once", "the whole decision"),
    ("controller.base_load:BaseLoadEstimate.estimate", "base-load estimate"),
    ("controller.loop:decide", "decide (problem, policy, verify, targets)"),
    ("controller.state:SiteState.snapshot", "snapshot"),
    ("controller.settling:Settling.observe", "settling: observe"),
    ("controller.settling:Settling.pace", "settling: pace"),
    ("controller.settling:Settling.committed", "settling: committed"),
    ("controller.settling:Settling.settle_times", "settling: settle_times"),
    ("controller.settling:Settling.next_release", "settling: next_release"),
    ("controller.loop:fit_increases", "fit_increases"),
    ("controller.loop:plan_changes", "plan_changes"),
    ("controller.dispatcher:Dispatcher.submit", "dispatcher submit"),
    ("controller.setpoint_log:SetpointLog.record", "setpoint log: record"),
    ("controller.setpoint_log:SetpointLog.accepted", "setpoint log: accepted"),
    ("controller.loop:ControlLoop._check_compliance", "compliance"),
)
"""The steps ``--steps`` times: ``module:attribute`` (a function the loop's module
imported, or a method), and how the report names it."""


def time_steps() -> dict[str, list[float]]:
    """Wrap each of :data:`STEPS` to add its CPU time (s) and one call to the returned
    totals (label → [seconds, calls])."""
    import functools
    import importlib

    totals: dict[str, list[float]] = {label: [0.0, 0] for _, label in STEPS}
    for path, label in STEPS:
        module_name, attr = path.split(":")
        owner: Any = importlib.import_module(module_name)
        *outer, name = attr.split(".")
        for part in outer:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*args: Any, _f: Any = original, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                totals[_label][0] += time.process_time() - t0
                totals[_label][1] += 1

        setattr(owner, name, functools.wraps(original)(timed))
    return totals


def _line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name}: median {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms (n={len(ms)})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--profile", choices=["pyinstrument", "cprofile"], default=None)
    parser.add_argument("--profile-out", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--steps", action="store_true", help="also print the CPU time of each step of the loop"
    )
    args = parser.parse_args(argv)
    steps = time_steps() if args.steps else None
    configure_logs("info", "/tmp/bench_decision.log")
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    print(f"load average before: {m['loadavg']}")
    samples = asyncio.run(run(args))
    print(f"CPU time per decision, {args.chargers} sessions:")
    for kind, rows in samples.items():
        print("  " + _line(f"{kind:6} decision", [r[0] for r in rows]))
        print("  " + _line(f"{kind:6} base load", [r[1] for r in rows]))
    if steps is not None:
        decisions = steps[STEPS[0][1]][1]
        print(f"CPU per decision by step (all {decisions:.0f} decisions, the warm-up's included):")
        for label, (total_s, _) in steps.items():
            print(f"  {label:44s} {1000 * total_s / decisions:6.2f} ms")
    print(f"load average after: {machine()['loadavg']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
