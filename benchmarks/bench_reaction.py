"""Reaction latency: from the over-limit meter reading to the last corrective SetChargingProfile.

Usage::

    python benchmarks/bench_reaction.py [--chargers 100] [--cycles 30]
        [--what-if inline-validation] [--profile pyinstrument|cprofile --profile-out FILE]
        [--json FILE]

The controller (the real :class:`~controller.service.SiteController`) runs in
this process with a simulated Modbus grid meter polled every 0.25 s
(:mod:`site`); a fleet of thin OCPP 1.6J charge points (:mod:`fleet`) runs in
another process, every charger with a running session and MeterValues every
second. Once the site is steady, the base load steps up by 1 A per charger, so
the next meter poll shows the site over its limit; the controller must lower
every session by about 1 A. Then the base load steps down again and the
setpoints come back. ``--cycles`` such steps up are measured:

* **reading**: the moment the controller's sink receives the first over-limit
  MeterReading after the step (``time.monotonic()``, shared by both processes);
* **written**: the last charger's corrective TxProfile handed to its websocket
  (controller side);
* **received**: the last charger's corrective TxProfile received by the fleet
  (each charger's first TxProfile after the reading) — the reaction latency.

It prints the median and p99 (nearest rank: with fewer than 100 cycles, the
worst one) of each, of the decision's own steps (snapshot, solve, plan,
dispatch) as the loop measures them, and of how long the cycle collector ran
between each reading and its last frame written.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    GcProbe,
    Profile,
    configure_logs,
    machine,
    percentile,
    scratch_file,
    summary_ms,
)
from benchmarks.fleet import FleetProcess, FleetRecords
from benchmarks.site import BASE_LOW_A, SHARE_A, STEP_A, BenchSite
from benchmarks.whatif import WHAT_IFS, after_start, apply_what_if


@dataclass
class Step:
    """One step up, as the controller saw it (monotonic seconds)."""

    stepped_at: float
    reading_at: float
    reading_adapter_at: float
    acked_at: float
    solve_s: float
    decision_s: float
    decided_at: float
    """When the decision had run (its on_decision: its frames are written after this)."""


async def step_up(site: BenchSite, profile: Profile, timeout_s: float = 30.0) -> Step:
    """Raise the base load, wait for the over-limit reading and every charger's answer.

    The profile covers the step up until the last answer (the reaction), not the idle rest.
    """
    probe = site.probe
    probe.arm()
    stepped_at = time.monotonic()
    with profile.window():
        site.base_a = BASE_LOW_A + site.chargers * STEP_A
        await asyncio.wait_for(probe.reached.wait(), timeout_s)
        assert probe.reading_at is not None
        assert probe.reading_adapter_at is not None
        reading_at = probe.reading_at
        acked_at = await site.wait_all_accepted_since(reading_at)
    decision = next(d for d in probe.decisions if d[0] >= reading_at)
    times = decision[1]
    return Step(
        stepped_at,
        reading_at,
        probe.reading_adapter_at,
        acked_at,
        times.solve_s,
        times.snapshot_s + times.solve_s + times.plan_s + times.dispatch_s,
        decision[0],
    )


def _first_after(
    events: list[tuple[float, str]], times: list[float], start: float, end: float
) -> dict[str, float]:
    """Each charger's first event in ``[start, end)``."""
    first: dict[str, float] = {}
    for i in range(bisect.bisect_left(times, start), bisect.bisect_left(times, end)):
        t, cid = events[i]
        first.setdefault(cid, t)
    return first


def analyse(
    steps: list[Step],
    records: FleetRecords,
    writes: list[tuple[float, str]],
    chargers: int,
    gc_probe: GcProbe | None = None,
) -> dict[str, Any]:
    """Per step: the last corrective TxProfile written and received, after the reading."""
    received = sorted((p[0], p[1]) for p in records.profiles if p[3] == "TxProfile")
    received_t = [t for t, _ in received]
    written = sorted(writes)
    written_t = [t for t, _ in written]
    rows = []
    for step in steps:
        end = step.acked_at + 1.0  # the step down comes later than this
        got = _first_after(received, received_t, step.reading_at, end)
        sent = _first_after(written, written_t, step.reading_at, end)
        if len(got) < chargers:
            raise RuntimeError(f"step at {step.reading_at}: {len(got)} of {chargers} received")
        last_written = max(sent.values()) if len(sent) == chargers else float("nan")
        rows.append(
            {
                "meter_to_sink_s": step.reading_at - step.reading_adapter_at,
                "decision_s": step.decision_s,
                "solve_s": step.solve_s,
                "decided_s": step.decided_at - step.reading_at,
                "first_written_s": min(sent.values(), default=float("nan")) - step.reading_at,
                "first_received_s": min(got.values()) - step.reading_at,
                "last_written_s": last_written - step.reading_at,
                "last_received_s": max(got.values()) - step.reading_at,
                "last_acked_s": step.acked_at - step.reading_at,
                "gc_s": gc_probe.paused_s(step.reading_at, last_written) if gc_probe else 0.0,
            }
        )
    return {key: [row[key] for row in rows] for key in rows[0]}


async def cycles(site: BenchSite, profile: Profile, count: int, steps: list[Step]) -> None:
    """Step up, settle, step down, settle: ``count`` times."""
    for cycle in range(count):
        before = site.held_limits()
        steps.append(await step_up(site, profile))
        await site.wait_steady()
        site.base_a = BASE_LOW_A
        await site.wait_restored(before)
        s = steps[-1]
        print(
            f"  cycle {cycle + 1}: last acked {1000 * (s.acked_at - s.reading_at):.0f} ms "
            f"after the reading (decision {1000 * s.decision_s:.1f} ms)"
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the site and the fleet, step the base load ``--cycles`` times, analyse."""
    site = BenchSite(args.chargers)
    await site.start()
    out = scratch_file("fleet-")
    fleet = FleetProcess(f"ws://127.0.0.1:{site.controller.ocpp.port}/ocpp", args.chargers, out)
    steps: list[Step] = []
    failure = ""
    gc_probe = GcProbe()
    gc_pauses = ""
    try:
        print(f"fleet ready: {await fleet.start()}")
        # Every session at its share before the first step: a meter poll that timed out
        # during the boot storm holds the setpoints (hold mode) where the ramp-down left
        # them, and a step from below the shares would not put the site over its limit.
        await site.wait_restored({f"cp-{i}/1": SHARE_A for i in range(args.chargers)})
        after_start()
        profile = Profile(args.profile, args.profile_out)
        gc_probe.start()
        try:
            await cycles(site, profile, args.cycles, steps)
        except Exception as exc:  # report the steps measured so far, and why it stopped
            traceback.print_exc()
            failure = f"stopped after {len(steps)} steps: {exc!r}"
        gc_pauses = gc_probe.stop()
        profile.save()
    finally:
        try:
            records = await fleet.stop()
        except Exception:
            await fleet.kill()
            raise
        finally:
            await site.stop()
    results = analyse(steps, records, site.probe.writes, args.chargers, gc_probe)
    print(f"\nreaction latency with {args.chargers} chargers over {len(steps)} steps up:")
    labels = {
        "meter_to_sink_s": "meter adapter → sink",
        "decision_s": "decision (snapshot+solve+plan+submit)",
        "solve_s": "  of which solve",
        "decided_s": "reading → decision done (its frames follow)",
        "first_written_s": "reading → first TxProfile written",
        "first_received_s": "reading → first TxProfile received",
        "last_written_s": "reading → last TxProfile written",
        "last_received_s": "reading → last TxProfile received (THE figure)",
        "last_acked_s": "reading → last answer back at the controller",
        "gc_s": "collector pauses from reading to last written",
    }
    for key, label in labels.items():
        print(f"  {label:48s} {summary_ms(results[key])}")
    if records.error_count:
        print(f"fleet errors: {records.error_count}, e.g. {records.errors[:3]}")
    print(f"garbage collector during the cycles: {gc_pauses}")
    if failure:
        print(f"INCOMPLETE: {failure}")
    return {
        "failure": failure,
        "machine": machine(),
        "args": vars(args),
        "latencies_s": results,
        "summary_ms": {
            key: {
                "median": statistics.median(values) * 1000,
                "p99": percentile(values, 0.99) * 1000,
            }
            for key, values in results.items()
        },
        "fleet_errors": records.error_count,
        "gc_pauses": gc_pauses,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run, print (and optionally save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument(
        "--what-if",
        dest="what_if",
        default=None,
        help=f"comma-separated scratch experiments: {', '.join(WHAT_IFS)}",
    )
    parser.add_argument("--profile", choices=["pyinstrument", "cprofile"], default=None)
    parser.add_argument("--profile-out", default=None)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-file", default="/tmp/bench_reaction.log")
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    configure_logs(args.log_level, args.log_file)
    print(f"what-if: {apply_what_if(args.what_if)}")
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['libs']}")
    print(f"load average before: {m['loadavg']}")
    results = asyncio.run(run(args))
    print(f"load average after: {results['machine']['loadavg']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
