"""The restart-state write path: what one decision's ``StateWriter.after_decision`` costs.

Usage::

    python benchmarks/bench_state_writer.py [--sessions 10 100 1000] [--decisions 200]
        [--json FILE]

For each number of sessions and each fsync policy, a real
:class:`~controller.store.StateStore` (SQLite in a temporary directory) and a
:class:`~controller.state_writer.StateWriter` take the decisions a steady site
makes: the first one writes every session (a cold start, timed apart); then
each decision one session in twenty has a setpoint accepted (renewals and
changes at the dispatcher's pace: at a 120 s lease and a 1 s tick about one
in sixty renews per tick) and every session has new MeterValues (which are
never written). The script prints the median and p99 (nearest rank) of the
time per call, in ms, and the rows written per decision. The call runs in
the event loop, after the decision's commands were handed to their tasks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.clock import ManualClock
from controller.dispatch import Held
from controller.learning import EvBelief
from controller.snapshot import SessionView
from controller.state_writer import StateWriter
from controller.store import StateStore
from controller.targets import Target

ACCEPTED_SHARE = 20  # one session in this many has a setpoint accepted per decision


def _sessions(n: int) -> list[SessionView]:
    return [
        SessionView(
            key=f"cp-{i}/1",
            charger_id=f"cp-{i}",
            connector_id=1,
            transaction_id=1000 + i,
            started_at=0.0,
            status="Charging",
            measured_a=(16.0, 16.0, 16.0),
            measured_at=0.0,
            offered_a=16.0,
            belief=EvBelief((0, 1, 2)),
        )
        for i in range(n)
    ]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run(n: int, decisions: int, fsync: bool) -> dict[str, Any]:
    """Time ``decisions`` calls with ``n`` sessions; the first (cold) one apart."""
    with tempfile.TemporaryDirectory(prefix="headroom-bench-") as tmp:
        store = StateStore(Path(tmp) / "state.db", fsync=fsync)
        clock = ManualClock(1000.0, datetime(2026, 11, 21, tzinfo=UTC))
        writer = StateWriter(store, "bench", clock, lease_s=120.0)
        sessions = _sessions(n)
        targets = {
            s.key: Target(s.charger_id, 1, s.transaction_id, 16.0, "", 0.0) for s in sessions
        }
        held = {s.key: Held(16.0, 999.0, s.transaction_id) for s in sessions}
        start = time.perf_counter()
        writer.after_decision(sessions, targets, held, {})
        cold_ms = (time.perf_counter() - start) * 1000
        times, rows = [], 0
        for d in range(decisions):
            clock.advance(1.0)
            sessions = [replace(s, measured_at=clock.monotonic()) for s in sessions]
            for s in sessions[d % ACCEPTED_SHARE :: ACCEPTED_SHARE]:
                held[s.key] = Held(16.0, clock.monotonic(), s.transaction_id)
                rows += 1
            start = time.perf_counter()
            writer.after_decision(sessions, targets, held, {})
            times.append((time.perf_counter() - start) * 1000)
        store.close()
    return {
        "sessions": n,
        "fsync": fsync,
        "cold_ms": round(cold_ms, 3),
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(_p99(times), 3),
        "rows_per_decision": round(rows / decisions, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    rows = [run(n, args.decisions, fsync) for fsync in (False, True) for n in args.sessions]
    print("| sessions | fsync | cold ms | median ms | p99 ms | rows written per decision |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['sessions']} | {'yes' if r['fsync'] else 'no'} | {r['cold_ms']} | "
            f"{r['median_ms']} | {r['p99_ms']} | {r['rows_per_decision']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
