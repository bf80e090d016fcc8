"""Where ``weighted_fair`` loses weighted throughput against ``optimal``, and why.

Usage::

    python benchmarks/throughput_gap.py [--sizes 10,100,200] [--sites 20] [--seed S]

On the random sites of ``bench_policies.py`` (weights 1–3, mixed one- and
three-phase cars, unbalanced base loads, a site limit at 35 % of what the
cars would draw) it prints, per size, the median and minimum ratio of
``weighted_fair``'s weighted throughput (Σ weight × phases × current, what
``optimal`` maximises) to ``optimal``'s, on the sites as drawn and with one
cause taken away at a time:

* **weights 1**: every weight set to 1 (what is left is not about priority);
* **no minimum**: every minimum set to 0 (no car pauses for want of 6 A);
* **weights 1, no minimum**: both;
* **leftover**: the phase-amperes a greedy pass could still add to
  ``weighted_fair``'s answer without lowering anyone (raising each car to
  what every limit above it still leaves, a paused car only to at least its
  minimum), as a share of ``optimal``'s phase-amperes: capacity it leaves
  unused.

``optimal`` gets 10 s, so it finishes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_policies import random_problem
from benchmarks.common import load_average, solver_machine
from policies import Allocation, AllocationProblem
from policies.incidence import RUNNABLE, floor_to_step
from policies.layout import compile_problem
from policies.optimal import optimal, weighted_throughput
from policies.weighted_fair import weighted_fair

Variant = Callable[[AllocationProblem], AllocationProblem]


def _amps(problem: AllocationProblem, answer: Allocation) -> np.ndarray:
    return np.array([answer.current_a(s.connector_id) for s in problem.sessions])


def _worth(problem: AllocationProblem, answer: Allocation) -> float:
    return weighted_throughput(compile_problem(problem), _amps(problem, answer))


def leftover_phase_a(problem: AllocationProblem, answer: Allocation) -> float:
    """Phase-amperes a greedy pass adds to ``answer`` without lowering anyone (module doc)."""
    compiled = compile_problem(problem)
    sessions, pairs = compiled.sessions, compiled.layout.pairs
    room = compiled.tree.room_a.ravel()
    amps = _amps(problem, answer)
    load = np.bincount(pairs.constraint, pairs.coef * amps[pairs.session], minlength=len(room))
    added = 0.0
    for i in np.argsort(-sessions.weight, kind="stable"):
        if sessions.status[i] != RUNNABLE:
            continue
        mine = pairs.session == i
        c, coef = pairs.constraint[mine], pairs.coef[mine]
        free = float(np.min((room[c] - load[c]) / coef)) if len(c) else np.inf
        target = float(floor_to_step(np.array([min(sessions.max_a[i], amps[i] + free)]))[0])
        if target <= amps[i] or (amps[i] == 0.0 and target < sessions.min_a[i]):
            continue
        load[c] += coef * (target - amps[i])
        added += (target - amps[i]) * sessions.phase_count[i]
        amps[i] = target
    return added


def _variants() -> dict[str, Variant]:
    def ones(p: AllocationProblem) -> AllocationProblem:
        return replace(p, sessions=tuple(replace(s, weight=1.0) for s in p.sessions))

    def nomin(p: AllocationProblem) -> AllocationProblem:
        return replace(p, sessions=tuple(replace(s, min_current_a=0.0) for s in p.sessions))

    return {
        "as drawn": lambda p: p,
        "weights 1": ones,
        "no minimum": nomin,
        "weights 1, no minimum": lambda p: nomin(ones(p)),
    }


def main(argv: list[str] | None = None) -> None:
    """Print one markdown row per size."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,200")
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(solver_machine())
    print(f"load average before: {load_average()}")
    print()
    variants = _variants()
    print("| connectors | sites | " + " | ".join(variants) + " | leftover |")
    print("| ---: | ---: |" + " ---: |" * (len(variants) + 1))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        ratios: dict[str, list[float]] = {name: [] for name in variants}
        left: list[float] = []
        for _ in range(args.sites):
            drawn = random_problem(size, rng)
            for name, variant in variants.items():
                problem = variant(drawn)
                best = optimal(problem, time_limit_s=10.0)
                fair = weighted_fair(problem)
                ratios[name].append(_worth(problem, fair) / _worth(problem, best))
                if name == "as drawn":
                    phase_a = float(
                        np.sum(_amps(problem, best) * [len(s.phases) for s in problem.sessions])
                    )
                    left.append(leftover_phase_a(problem, fair) / phase_a)
        cells = [f"{statistics.median(r):.3f} (min {min(r):.3f})" for r in ratios.values()]
        print(
            f"| {size} | {args.sites} | "
            + " | ".join(cells)
            + f" | {statistics.median(left):.3f} (max {max(left):.3f}) |"
        )
    print()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
