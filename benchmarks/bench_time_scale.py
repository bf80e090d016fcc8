"""HIL scenarios faster than real time: wall time and KPIs per ``time_scale``.

Runs library scenarios at several time scales, a few times each, and prints
one JSON line per run (scenario, scale, wall seconds, passed, the KPIs that
judge a run) and a summary table: the median wall time and, per KPI, the
range over the runs. A scale is reliable when its runs pass and its KPI
ranges overlap the real-time ones (docs/hil.md, docs/benchmarks.md).

Run: python benchmarks/bench_time_scale.py --scenarios mass_arrival,limit_cut \
        --scales 1,10,20 --repeats 3 [--jsonl out.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from controller.logs import configure_logging
from hil.runner import run_scenario
from hil.scenario import load_scenario

LIBRARY = Path(__file__).parent.parent / "hil" / "scenarios"
KPIS = (
    "seconds_over_limit",
    "seconds_over_limit_unexplained",
    "peak_over_limit_a",
    "utilization",
    "limit_use",
    "fairness_weighted",
    "max_recovery_s",
    "commands_per_charger_per_hour",
)


def run_once(name: str, scale: float) -> dict[str, Any]:
    """One run of library scenario ``name`` at ``scale``: wall time, verdict, KPIs."""
    scenario = load_scenario(LIBRARY / f"{name}.yaml").model_copy(update={"time_scale": scale})
    started = time.perf_counter()
    result = asyncio.run(run_scenario(scenario, out=lambda _line: None))
    wall_s = time.perf_counter() - started
    failed = [v.text for v in result.assertions if not v.passed]
    kpis = {k: result.kpis.get(k) for k in KPIS}
    return {"scenario": name, "scale": scale, "wall_s": round(wall_s, 2), "failed": failed, **kpis}


def _span(values: list[Any]) -> str:
    numbers = [v for v in values if isinstance(v, int | float)]
    if not numbers:
        return "-"
    low, high = min(numbers), max(numbers)
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def summary(rows: list[dict[str, Any]]) -> str:
    """A markdown table: per scenario and scale, median wall time, runs passed, KPI ranges."""
    head = ["scenario", "scale", "wall s", "passed", *KPIS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted({(r["scenario"], r["scale"]) for r in rows})
    for name, scale in keys:
        runs = [r for r in rows if (r["scenario"], r["scale"]) == (name, scale)]
        passed = sum(1 for r in runs if not r["failed"])
        cells = [
            name,
            f"{scale:g}",
            f"{statistics.median(r['wall_s'] for r in runs):.1f}",
            f"{passed}/{len(runs)}",
            *(_span([r[k] for r in runs]) for k in KPIS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", required=True, help="library names, comma-separated")
    parser.add_argument("--scales", default="1,10", help="comma-separated time scales")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jsonl", type=Path, help="append each run's JSON line here")
    args = parser.parse_args()
    configure_logging("error", json_lines=False)
    rows = []
    for _ in range(args.repeats):
        for name in args.scenarios.split(","):
            for scale in (float(s) for s in args.scales.split(",")):
                row = run_once(name, scale)
                rows.append(row)
                line = json.dumps(row)
                print(line, flush=True)
                if args.jsonl is not None:
                    with args.jsonl.open("a", encoding="utf-8") as f:
                        f.write(line + "\n")
    print(summary(rows))


if __name__ == "__main__":
    main()
