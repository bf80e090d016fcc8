"""Solve time and throughput of every registered policy on random sites of growing size.

Usage::

    python benchmarks/bench_policies.py [--sizes 10,100,1000,5000]
        [--optimal-sizes 10,100,200,1000] [--ratio-sizes 10,100,200,1000]
        [--repeat N] [--seed S]

Each size builds a random site with three phases and a three-level tree
(site → feeders → chargers), chargers with one or two connectors sharing the
charger's rating, cars that draw on one phase (on a random site phase, as
phase rotation gives) or on three, unbalanced base loads, weights 1–3, and a
site limit well below the sum of what the cars want (so limits bind and some
sessions pause).

Times are per call, as a control loop makes them: a run of ticks on one site
whose base loads move by up to ±20 % and where one car in twenty changes its
maximum each tick (the structure stays, so the policies' compiled layout is
reused). In "a car came or went" the set of sessions changes every call
(the layout is compiled again, the tree's hints are kept); ``cold`` rows
clear every cache before every call (a site's first tick). ``verify (violations)`` is the
invariant check the loop runs on every answer. ``optimal`` runs with its
default 50 ms limit; the share of its calls that returned weighted_fair's
answer is shown.

The throughput table compares, on fresh sites per size, the weighted
throughput (Σ weight × phases × current, the power optimal maximises ÷ V)
of weighted_fair and equal_share with optimal's, optimal given 10 s so that
it finishes.

It prints markdown tables, the machine, and the load average before and
after (other work on the machine slows the numbers down).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import load_average, percentile, solver_machine
from policies import POLICIES, Allocation
from policies.layout import clear_cache, compile_problem
from policies.optimal import optimal, weighted_throughput
from policies.problem import AllocationProblem, LimitNode, SessionDemand
from policies.verify import violations

CONNECTORS_PER_FEEDER = 40
"""A feeder (a panel with its own breaker) serves about this many connectors."""

SITE_SHARE = 0.35
"""The site limit as a share of what all cars would draw at their maximum."""

TICKS = 20
"""Distinct ticks per site; the timed calls cycle through them."""


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


def ticks(problem: AllocationProblem, rng: random.Random, count: int) -> list[AllocationProblem]:
    """``count`` ticks of one site: base loads ±20 %, one car in twenty with a new maximum."""

    def moved(node: LimitNode) -> LimitNode:
        l1, l2, l3 = (round(b * rng.uniform(0.8, 1.2), 1) for b in node.base_load_a)
        return replace(node, base_load_a=(l1, l2, l3)) if any(node.base_load_a) else node

    out = []
    for _ in range(count):
        nodes = tuple(moved(n) for n in problem.nodes)
        sessions = tuple(
            replace(s, max_current_a=rng.choice([10.0, 13.0, 16.0])) if rng.random() < 0.05 else s
            for s in problem.sessions
        )
        out.append(replace(problem, nodes=nodes, sessions=sessions))
    return out


def _comings_and_goings(run: list[AllocationProblem]) -> list[AllocationProblem]:
    """The ticks with one car missing, a different one each call (150 variants, more than
    the policies' layout cache holds): no compiled layout can be reused, the tree's can."""
    return [
        replace(tick, sessions=tick.sessions[: k % n] + tick.sessions[k % n + 1 :])
        for k, tick in enumerate(run * 8)
        if (n := len(tick.sessions))
    ][:150]


def _timings(
    solve: Callable[[AllocationProblem], object],
    problems: list[AllocationProblem],
    repeat: int,
    cold: bool = False,
) -> list[float]:
    solve(problems[0])  # warm caches and imports outside the measurement
    times = []
    for i in range(repeat):
        problem = problems[i % len(problems)]
        if cold:
            clear_cache()
        start = time.perf_counter_ns()
        solve(problem)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def _checker(answer: Allocation) -> Callable[[AllocationProblem], object]:
    """``violations`` against one fixed answer: what the control loop adds to each decision."""
    return lambda problem: violations(problem, answer)


def _fell_back(problem: AllocationProblem) -> bool:
    """Did optimal (50 ms) answer with weighted_fair's currents?"""
    return optimal(problem).currents_a() == POLICIES["weighted_fair"](problem).currents_a()


def _worth(problem: AllocationProblem, answer: Allocation) -> float:
    """Weighted throughput: Σ weight × phases × current."""
    compiled = compile_problem(problem)
    amps = np.array([answer.current_a(k) for k in compiled.sessions.ids])
    return weighted_throughput(compiled, amps)


def _row(name: str, size: int, times: list[float], note: str = "") -> str:
    median, p99 = statistics.median(times), percentile(times, 0.99)
    return f"| {name} | {size} | {median:.3f} | {p99:.3f} | {note} |"


def _speed_table(
    sizes: list[int], optimal_sizes: list[int], repeat: int, rng: random.Random
) -> None:
    print("| policy | connectors | median ms | p99 ms | note |")
    print("| --- | ---: | ---: | ---: | --- |")
    for size in sorted(set(sizes) | set(optimal_sizes)):
        run = ticks(random_problem(size, rng), rng, TICKS)
        if size in sizes:
            comings = _comings_and_goings(run)
            for name in ("equal_share", "weighted_fair"):
                solve = POLICIES[name]
                print(_row(name, size, _timings(solve, run, repeat)))
                print(_row(name, size, _timings(solve, comings, repeat // 2), "a car came or went"))
                print(_row(name, size, _timings(solve, run, max(5, repeat // 4), True), "cold"))
            check = _timings(_checker(POLICIES["weighted_fair"](run[0])), run[:1], repeat)
            print(_row("verify (violations)", size, check))
        if size in optimal_sizes:
            times = _timings(optimal, run, max(10, repeat // 2))
            same = sum(_fell_back(problem) for problem in run)
            note = f"weighted_fair's answer in {same} of {len(run)} ticks"
            print(_row("optimal (50 ms limit)", size, times, note))


def _ratio_table(sizes: list[int], rng: random.Random) -> None:
    print(
        "| connectors | sites | weighted_fair / optimal: median | min "
        "| equal_share / optimal: median | min |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        count = max(3, min(20, 2000 // size))
        fair, equal = [], []
        for _ in range(count):
            problem = random_problem(size, rng)
            best = _worth(problem, optimal(problem, time_limit_s=10.0))
            fair.append(_worth(problem, POLICIES["weighted_fair"](problem)) / best)
            equal.append(_worth(problem, POLICIES["equal_share"](problem)) / best)
        print(
            f"| {size} | {count} | {statistics.median(fair):.3f} | {min(fair):.3f} | "
            f"{statistics.median(equal):.3f} | {min(equal):.3f} |"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--optimal-sizes", default="10,100,200,1000")
    parser.add_argument("--ratio-sizes", default="10,100,200,1000")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    def parse(text: str) -> list[int]:
        return [int(s) for s in text.split(",") if s]

    print(solver_machine())
    print(f"load average before: {load_average()}")
    print()
    _speed_table(parse(args.sizes), parse(args.optimal_sizes), args.repeat, rng)
    print()
    if parse(args.ratio_sizes):
        _ratio_table(parse(args.ratio_sizes), rng)
        print()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
