"""What the audit log costs the control loop: `headroom demo` runs with and without it.

Each run is the 60 s demo (10 chargers) in this process. Every ``AuditLog.record_*``
call is timed where it runs (on the event loop, for decisions and commands), and a
probe task measures the loop's lag (how late a 10 ms sleep wakes). Modes: ``none``
(no audit log, no store), ``audit`` (the demo's default: ``fsync: false``) and
``fsync`` (``fsync: true``).

Run: python benchmarks/bench_audit_demo.py --mode none|audit|fsync (one run, one table row)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import hil.rig as rig
from controller import audit
from controller.logs import configure_logging
from hil.demo import run_demo

CALLS = ("record_decision", "record_command", "record_change")


def _timed(times: dict[str, list[float]]) -> None:
    for name in CALLS:
        original = getattr(audit.AuditLog, name)

        def timed(*args: Any, _f: Callable[..., None] = original, _n: str = name) -> None:
            t0 = time.perf_counter()
            _f(*args)
            times.setdefault(_n, []).append(time.perf_counter() - t0)

        setattr(audit.AuditLog, name, timed)


def _configure(mode: str) -> None:
    settings = rig.AuditSettings
    if mode == "fsync":
        rig.AuditSettings = functools.partial(settings, fsync=True)  # type: ignore[misc]
    start = rig.SimRig.start

    async def without_state(self: rig.SimRig) -> None:
        self.state_dir = None
        await start(self)

    if mode == "none":
        rig.SimRig.start = without_state  # type: ignore[method-assign]


async def _run(lags: list[float]) -> dict[str, Any]:
    async def probe() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t0 - 0.01)

    task = asyncio.create_task(probe())
    try:
        return await run_demo(10, 60, None, 1, out=lambda _: None, api_port=None)
    finally:
        task.cancel()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default="audit", choices=["none", "audit", "fsync"])
    args = parser.parse_args()
    configure_logging("error", json_lines=False)
    _configure(args.mode)
    times: dict[str, list[float]] = {}
    _timed(times)
    lags: list[float] = []
    report = asyncio.run(_run(lags))
    cells = [args.mode, f"{report['utilization']:.4f}", str(report["decisions"])]
    for name in ("record_decision", "record_command"):
        v = times.get(name, [])
        cells.append(
            f"{len(v)}: {_ms(v, 0.5):.2f} / {_ms(v, 0.99):.2f} / {sum(v) * 1000:.0f}" if v else "–"
        )
    cells.append(f"{_ms(lags, 0.99):.1f} / {max(lags) * 1000:.0f}")
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
