"""Solve time of every registered policy on random sites of growing size.

Usage::

    python benchmarks/bench_policies.py [--sizes 10,100,1000,5000] [--repeat N] [--seed S]

Each size builds a few random sites with three phases and a three-level tree
(site → feeders → chargers), chargers with one or two connectors sharing the
charger's rating, cars that draw on one phase (on a random site phase, as
phase rotation gives) or on three, unbalanced base loads, and a site limit
well below the sum of what the cars want (so limits bind and some sessions
pause). It prints the median and 99th percentile of the time one call takes,
per policy and size, as a markdown table, plus the time of
``policies.verify.violations`` (which the control loop runs on every answer),
and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policies import POLICIES
from policies.problem import AllocationProblem, LimitNode, SessionDemand
from policies.verify import violations

CONNECTORS_PER_FEEDER = 40
"""A feeder (a panel with its own breaker) serves about this many connectors."""

SITE_SHARE = 0.35
"""The site limit as a share of what all cars would draw at their maximum."""


def _base(rng: random.Random, limit_a: float) -> tuple[float, float, float]:
    """An unbalanced non-controllable load: up to a quarter of the limit per phase."""
    a, b, c = (round(rng.uniform(0.0, 0.25) * limit_a, 1) for _ in range(3))
    return (a, b, c)


def _charger(rng: random.Random, name: str, feeder: str) -> tuple[LimitNode, list[SessionDemand]]:
    rating_a = rng.choice([16.0, 32.0, 32.0])
    node = LimitNode(name, feeder, max_current_a=rating_a, label=name)
    sessions = []
    for k in range(rng.choice([1, 2, 2])):
        three = rng.random() < 0.5
        phases = (0, 1, 2) if three else (rng.randrange(3),)
        sessions.append(
            SessionDemand(
                connector_id=f"{name}/{k + 1}",
                node=name,
                phases=phases,
                max_current_a=rng.choice([16.0, 20.0, 32.0]) if three else rng.choice([16.0, 32.0]),
                weight=float(rng.choice([1, 1, 2, 3])),
            )
        )
    return node, sessions


def random_problem(connectors: int, rng: random.Random) -> AllocationProblem:
    """A site → feeders → chargers tree with about ``connectors`` sessions."""
    feeders = max(1, round(connectors / CONNECTORS_PER_FEEDER))
    nodes: list[LimitNode] = []
    sessions: list[SessionDemand] = []
    chargers: list[LimitNode] = []
    count = 0
    while len(sessions) < connectors:
        feeder = f"feeder-{count % feeders:03d}"
        node, demands = _charger(rng, f"cp-{count:05d}", feeder)
        chargers.append(node)
        sessions += demands[: connectors - len(sessions)]
        count += 1
    per_phase_a = sum(s.max_current_a * len(s.phases) for s in sessions) / 3
    site_a = max(40.0, round(SITE_SHARE * per_phase_a))
    feeder_a = max(32.0, round(1.6 * site_a / feeders))
    nodes.append(
        LimitNode("site", None, site_a, site_a * 230 * 2.8, 2.0, _base(rng, site_a), "site")
    )
    for f in range(feeders):
        name = f"feeder-{f:03d}"
        nodes.append(LimitNode(name, "site", feeder_a, None, 1.0, _base(rng, feeder_a), name))
    return AllocationProblem(tuple(nodes + chargers), tuple(sessions), 230.0)


def _timings(
    solve: Callable[[AllocationProblem], object], problems: list[AllocationProblem], repeat: int
) -> list[float]:
    solve(problems[0])  # warm caches and imports outside the measurement
    times = []
    for i in range(repeat):
        problem = problems[i % len(problems)]
        start = time.perf_counter_ns()
        solve(problem)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| policy | connectors | median ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for size in sizes:
        problems = [random_problem(size, rng) for _ in range(5)]
        answer = POLICIES["weighted_fair"](problems[0])
        runs: dict[str, Callable[[AllocationProblem], object]] = dict(POLICIES)
        runs["verify (violations)"] = lambda p, a=answer: violations(p, a)
        for name, solve in runs.items():
            times = _timings(solve, problems if "verify" not in name else problems[:1], args.repeat)
            print(
                f"| {name} | {size} | {statistics.median(times):.3f} | "
                f"{_percentile(times, 0.99):.3f} |"
            )


if __name__ == "__main__":
    main()
