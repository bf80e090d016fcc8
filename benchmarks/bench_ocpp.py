"""OCPP at depot scale: ingestion CPU and a site-wide fan-out, against the bare-JSON floor.

Usage::

    python benchmarks/bench_ocpp.py [--chargers 1000] [--server ocpp|site|bare]
        [--window 20] [--repeats 30] [--what-if inline-validation]
        [--profile pyinstrument|cprofile --profile-out FILE] [--json FILE]

A fleet of thin OCPP 1.6J charge points (:mod:`fleet`, a separate process)
connects, boots, starts a transaction each and sends MeterValues every second.
This process runs one of:

* ``ocpp`` (default): the controller's :class:`~controller.ocpp.OcppServer`,
  its sink recording into a :class:`~controller.state.SiteState`: ingestion as
  the controller does it, and nothing else;
* ``site``: the whole :class:`~controller.service.SiteController` (meter polls,
  a decision every second, setpoints): ingestion plus the loop (no fan-out);
* ``bare``: a bare ``websockets`` server that parses each frame with
  ``json.loads`` and answers with ``json.dumps``: the floor of ingestion.

(a) Ingestion: the CPU time of this process over ``--window`` seconds
(``time.process_time``, every thread), as a share of one core, with the
MeterValues rate the fleet achieved and their round trip.

(b) Fan-out (``ocpp`` only): a new TxProfile for every charger at once, sent
``--repeats`` times through ``link.set_profile()`` concurrently (the
dispatcher's path), timed until every call is acknowledged; interleaved with the
floor: the same ``SetChargingProfile`` payloads as raw JSON frames written
straight on the same server-side websockets, their answers picked off the
connection's receive loop before the library sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    GcProbe,
    LagProbe,
    Profile,
    configure_logs,
    machine,
    percentile,
    process_cpu_s,
    scratch_file,
    summary_ms,
)
from benchmarks.fleet import FleetProcess
from benchmarks.ocpp_targets import (
    BareUnderTest,
    OcppUnderTest,
    SiteUnderTest,
    profile_command,
    raw_fanout_on_ocpp,
)
from benchmarks.whatif import WHAT_IFS, after_start, apply_what_if
from controller.model import CommandStatus

# --- (a) ingestion ------------------------------------------------------------


@dataclass
class Ingestion:
    """CPU and MeterValues throughput over one window."""

    window_s: float
    cpu_percent: float
    fleet_cpu_percent: float
    meter_values_per_s: float
    rtt_median_ms: float
    rtt_p99_ms: float
    loop_lag_ms: dict[str, float]


async def measure_ingestion(fleet: FleetProcess, window_s: float) -> Ingestion:
    """This process's CPU over ``window_s`` while the fleet sends MeterValues."""
    before = await fleet.stats()
    lag = LagProbe()
    fleet_cpu0 = process_cpu_s(fleet.pid)
    cpu0, wall0 = time.process_time(), time.monotonic()
    lag.start()
    await asyncio.sleep(window_s)
    cpu1, wall1 = time.process_time(), time.monotonic()
    loop_lag = await lag.stop()
    fleet_cpu1 = process_cpu_s(fleet.pid)
    after = await fleet.stats()
    elapsed = wall1 - wall0
    return Ingestion(
        window_s=elapsed,
        cpu_percent=100 * (cpu1 - cpu0) / elapsed,
        fleet_cpu_percent=100 * (fleet_cpu1 - fleet_cpu0) / elapsed,
        meter_values_per_s=(after["meter_answered"] - before["meter_answered"]) / elapsed,
        rtt_median_ms=after["rtt_median_ms"],
        rtt_p99_ms=after["rtt_p99_ms"],
        loop_lag_ms=loop_lag,
    )


# --- (b) fan-out --------------------------------------------------------------


async def library_fanout(under: OcppUnderTest, ids: list[str], limit_a: float) -> float:
    """Seconds until every charger accepted its new TxProfile, sent through set_profile()."""
    links = [under.server.link(cid) for cid in ids]
    start = time.monotonic()
    results = await asyncio.gather(
        *(
            link.set_profile(profile_command(cid, under.transactions[cid], limit_a))
            for cid, link in zip(ids, links, strict=True)
            if link is not None
        )
    )
    elapsed = time.monotonic() - start
    failed = [r for r in results if r.status is not CommandStatus.ACCEPTED]
    if failed or len(results) != len(ids):
        raise RuntimeError(f"{len(failed)} not accepted, {len(ids) - len(results)} not sent")
    return elapsed


@dataclass
class Fanouts:
    """Each fan-out's wall time and this process's CPU time over it, in seconds."""

    library_s: list[float]
    raw_s: list[float]
    library_cpu_s: list[float]
    raw_cpu_s: list[float]
    library_gc: GcProbe = field(default_factory=GcProbe)
    raw_gc: GcProbe = field(default_factory=GcProbe)


async def _timed_cpu(work: Any, cpu: list[float], gc_probe: GcProbe) -> float:
    """Await ``work`` (a coroutine returning seconds); its process CPU time goes to ``cpu``,
    the collector's pauses meanwhile to ``gc_probe``."""
    gc_probe.start()
    cpu0 = time.process_time()
    try:
        elapsed: float = await work
    finally:
        cpu.append(time.process_time() - cpu0)
        gc_probe.stop()
    return elapsed


async def measure_fanout(
    under: OcppUnderTest | BareUnderTest, repeats: int, gap_s: float, profile: Profile
) -> Fanouts:
    """Library and raw-frame fan-outs, interleaved so both see the same load.

    On the bare server there is no library: only raw frames. The profile covers
    the library fan-outs (the raw ones on the bare server). The CPU time is the
    whole process's (every thread) from the first frame to the last answer, the
    MeterValues that arrive meanwhile included.
    """
    library = under if isinstance(under, OcppUnderTest) else None
    ids = sorted(under.transactions)
    if library is not None:
        raw = raw_fanout_on_ocpp(library, ids)
    else:
        assert isinstance(under, BareUnderTest)
        raw = under.raw_fanout()
    out = Fanouts([], [], [], [])
    for r in range(repeats):
        limit_a = 15.0 if r % 2 else 16.0  # a real change each time
        if library is not None:
            with profile.window():
                work = library_fanout(library, ids, limit_a)
                out.library_s.append(await _timed_cpu(work, out.library_cpu_s, out.library_gc))
            await asyncio.sleep(gap_s)
        with profile.window() if library is None else contextlib.nullcontext():
            raw_run = raw.run(limit_a - 0.5)
            out.raw_s.append(await _timed_cpu(raw_run, out.raw_cpu_s, out.raw_gc))
        await asyncio.sleep(gap_s)
        lib = (
            f"library {out.library_s[-1] * 1000:.0f} ms ({out.library_cpu_s[-1] * 1000:.0f} ms "
            "CPU), "
            if library
            else ""
        )
        print(
            f"  repeat {r + 1}: {lib}raw frames {out.raw_s[-1] * 1000:.0f} ms "
            f"({out.raw_cpu_s[-1] * 1000:.0f} ms CPU)"
        )
    return out


# --- the run ------------------------------------------------------------------


def report_fanout(fanouts: Fanouts, chargers: int) -> None:
    """Print the fan-out figures, their ratio to the floor, and the CPU time they took."""
    library_s, raw_s = fanouts.library_s, fanouts.raw_s
    if library_s:
        print(f"(b) fan-out to {chargers} through set_profile(): {summary_ms(library_s)}")
    print(f"    raw JSON frames on the same connections:   {summary_ms(raw_s)}")
    if library_s:
        median = statistics.median(library_s) / statistics.median(raw_s)
        p99 = percentile(library_s, 0.99) / percentile(raw_s, 0.99)
        print(f"    ratio library/floor: median {median:.2f}, p99 {p99:.2f}")
        print(f"    CPU of this process per fan-out, library: {summary_ms(fanouts.library_cpu_s)}")
        print(f"    collector during the library fan-outs: {fanouts.library_gc.summary()}")
    print(f"    CPU of this process per fan-out, raw frames: {summary_ms(fanouts.raw_cpu_s)}")
    print(f"    collector during the raw fan-outs: {fanouts.raw_gc.summary()}")


def _rtt(records_rtt: list[float]) -> tuple[float, float]:
    if not records_rtt:
        return float("nan"), float("nan")
    return statistics.median(records_rtt) * 1000, percentile(records_rtt, 0.99) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server and the fleet, measure, stop; the results."""
    under: OcppUnderTest | SiteUnderTest | BareUnderTest
    if args.server == "ocpp":
        under = OcppUnderTest()
    elif args.server == "site":
        under = SiteUnderTest(args.chargers)
    else:
        under = BareUnderTest()
    port = await under.start()
    out = scratch_file("fleet-")
    fleet = FleetProcess(f"ws://127.0.0.1:{port}/ocpp", args.chargers, out)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    try:
        ready = await fleet.start()
        print(f"fleet ready: {ready}")
        await asyncio.sleep(args.warmup)
        after_start()  # the heap freeze the service makes once it is steady
        profile_out = args.profile_out or "/tmp/bench-ocpp-profile"
        profile = Profile(args.profile, f"{profile_out}.ingest")
        with profile.window():
            ingestion = await measure_ingestion(fleet, args.window)
        profile.save()
        print(
            f"(a) ingestion: {ingestion.cpu_percent:.1f} % of a core "
            f"over {ingestion.window_s:.1f} s "
            f"({ingestion.meter_values_per_s:.0f} MeterValues/s answered; "
            f"fleet process {ingestion.fleet_cpu_percent:.1f} %; MeterValues round trip "
            f"median {ingestion.rtt_median_ms:.1f} ms, p99 {ingestion.rtt_p99_ms:.1f} ms)"
        )
        lag = ingestion.loop_lag_ms
        print(
            f"    event-loop lag: median {lag['median_ms']:.1f} ms, p99 {lag['p99_ms']:.1f} ms, "
            f"max {lag['max_ms']:.1f} ms"
        )
        results["ingestion"] = ingestion.__dict__
        if not isinstance(under, SiteUnderTest) and args.repeats > 0:
            profile = Profile(args.profile, f"{profile_out}.fanout")
            fanouts = await measure_fanout(under, args.repeats, args.gap, profile)
            profile.save()
            results["fanout_library_s"] = fanouts.library_s
            results["fanout_raw_s"] = fanouts.raw_s
            results["fanout_library_cpu_s"] = fanouts.library_cpu_s
            results["fanout_raw_cpu_s"] = fanouts.raw_cpu_s
            report_fanout(fanouts, args.chargers)
    finally:
        try:
            records = await fleet.stop()
        except Exception:
            await fleet.kill()
            raise
        finally:
            await under.stop()
    med, p99 = _rtt(records.meter_rtt_s)
    results["meter_rtt_ms"] = {"median": med, "p99": p99}
    results["fleet_errors"] = records.error_count
    print(f"MeterValues round trip over the whole run: median {med:.1f} ms, p99 {p99:.1f} ms")
    if records.error_count:
        print(f"fleet errors: {records.error_count}, e.g. {records.errors[:3]}")
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run, print (and optionally save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--server", choices=["ocpp", "site", "bare"], default="ocpp")
    parser.add_argument("--window", type=float, default=20.0, help="ingestion window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="s after the fleet is ready")
    parser.add_argument("--repeats", type=int, default=30, help="fan-outs of each kind")
    parser.add_argument("--gap", type=float, default=0.5, help="s between fan-outs")
    parser.add_argument(
        "--what-if",
        dest="what_if",
        default=None,
        help=f"comma-separated scratch experiments: {', '.join(WHAT_IFS)}",
    )
    parser.add_argument("--profile", choices=["pyinstrument", "cprofile"], default=None)
    parser.add_argument("--profile-out", default=None)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-file", default="/tmp/bench_ocpp.log")
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    configure_logs(args.log_level, args.log_file)
    print(f"what-if: {apply_what_if(args.what_if)}")
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['libs']}")
    print(f"load average before: {m['loadavg']}")
    results = asyncio.run(run(args))
    results["loadavg_after"] = os.getloadavg()
    print(f"load average after: {results['loadavg_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
