"""Plan time of ``deadline``: depots of N sessions planned over 96 15-minute slots.

Usage::

    python benchmarks/bench_deadline.py [--sessions 10,100,200] [--repeat N] [--seed S]

Each site is the random site of ``bench_policies.py`` (three phases, site →
feeders → chargers, mixed one- and three-phase cars, unbalanced base loads,
a site limit at 35 % of what the cars would draw), and every car has a
departure 1–24 h away and needs 20–60 % of what its maximum would give by
then (so the limits bind and some cars cannot be served in time). Half the
runs add time-of-use prices (a night valley, an evening peak) and a peak cap
at 80 % of the site's power limit. Every car holds the current a first plan
gave it (``held_a``), as in a control loop's steady state, so the plan carries
its stickiness rows. Times are per call, cold layout cache excluded (a control
loop compiles the layout once), and include the slot-0 rounding, the
weighted-fair remainder and building the answer.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_policies import random_problem
from benchmarks.common import load_average, percentile, solver_machine
from policies.deadline import deadline
from policies.problem import AllocationProblem, Horizon

SLOT_S = 900.0
SLOTS = 96
PRICES = tuple([0.12] * 24 + [0.25] * 40 + [0.40] * 16 + [0.18] * 16)
"""A day from midnight: night valley, day rate, evening peak, late evening."""


def depot(sessions: int, rng: random.Random, tariff: bool) -> AllocationProblem:
    """The random site with a departure and an energy need on every car."""
    problem = random_problem(sessions, rng)
    planned = []
    for s in problem.sessions:
        leave_s = rng.uniform(1.0, 24.0) * 3600
        full_wh = s.max_current_a * len(s.phases) * 230.0 * leave_s / 3600
        need_wh = rng.uniform(0.2, 0.6) * full_wh
        planned.append(replace(s, departure_s=leave_s, energy_wh=need_wh))
    root = problem.nodes[0]
    cap_w = 0.8 * root.max_power_w if tariff and root.max_power_w else None
    horizon = Horizon(SLOT_S, SLOTS, 0.0, PRICES if tariff else (), cap_w)
    fresh = replace(problem, sessions=tuple(planned), horizon=horizon)
    first = deadline(fresh)
    held = tuple(replace(s, held_a=first.current_a(s.connector_id)) for s in fresh.sessions)
    return replace(fresh, sessions=held)


def _times(problems: list[AllocationProblem], repeat: int) -> tuple[list[float], int]:
    deadline(problems[0])  # compile the layout once, as a control loop does
    times, short = [], 0
    for k in range(repeat):
        problem = problems[k % len(problems)]
        start = time.perf_counter()
        answer = deadline(problem)
        times.append((time.perf_counter() - start) * 1000)
        short += len(answer.unserved)
    return times, short


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one markdown row per size and tariff."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", default="10,100,200")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(solver_machine())
    print(f"load average before: {load_average()}")
    print()
    print("| sessions × slots | prices + peak cap | median ms | p99 ms | unserved per plan |")
    print("| --- | --- | ---: | ---: | ---: |")
    for size in [int(s) for s in args.sessions.split(",") if s]:
        for tariff in (False, True):
            problems = [depot(size, rng, tariff) for _ in range(5)]
            times, short = _times(problems, args.repeat)
            median, p99 = statistics.median(times), percentile(times, 0.99)
            print(
                f"| {size} × {SLOTS} | {'yes' if tariff else 'no'} | {median:.0f} | "
                f"{p99:.0f} | {short / args.repeat:.1f} |"
            )
    print()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
