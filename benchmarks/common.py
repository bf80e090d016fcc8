"""What the benchmarks share: logs, statistics, the machine, a profiler, a site.

Not part of the service: instrumentation and set-up for the scripts in ``benchmarks/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

import structlog

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def configure_logs(level: str, path: str) -> TextIO:
    """The service's log set-up (structlog JSON lines, libraries at WARNING), into ``path``.

    The benchmarks log as ``headroom run`` does, so the cost of logging each
    command is inside the figures; the lines go to a file, not the terminal.
    """
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115  # lives as long as the run
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(name)s: %(message)s")
    for noisy in ("ocpp", "websockets", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return stream


def scratch_file(prefix: str) -> str:
    """A fresh temporary file name (the fleet writes its records there)."""
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".json")
    os.close(handle)
    return name


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: with fewer than 100 values, p99 is the largest one."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> str:
    """``median / p99 / max`` in milliseconds, and the count."""
    if not values_s:
        return "no samples"
    med = statistics.median(values_s) * 1000
    p99 = percentile(values_s, 0.99) * 1000
    top = max(values_s) * 1000
    return f"median {med:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms (n={len(values_s)})"


class LagProbe:
    """How late the event loop wakes a task that sleeps ``period_s``: its lag behind real time.

    Every callback on a single asyncio loop waits its turn, so this lag is what a
    meter poll, a wake-up of the control loop or an answer to a charger waits too.
    """

    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.lags_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling (clears earlier samples)."""
        self.lags_s = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        """Stop; median, p99 and max lag in ms."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        lags = self.lags_s or [0.0]
        return {
            "median_ms": statistics.median(lags) * 1000,
            "p99_ms": percentile(lags, 0.99) * 1000,
            "max_ms": max(lags) * 1000,
        }

    async def _run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(self.period_s)
            self.lags_s.append(max(0.0, time.monotonic() - start - self.period_s))


class GcProbe:
    """The pauses of the garbage collector, per generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses_s: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.events: list[tuple[float, float, int]] = []
        """Every pause: its start (``time.monotonic()``), its length (s), its generation."""
        self._started = 0.0
        self._started_at = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_at = time.monotonic()
            self._started = time.perf_counter()
        else:
            pause_s = time.perf_counter() - self._started
            self.pauses_s[info["generation"]].append(pause_s)
            self.events.append((self._started_at, pause_s, info["generation"]))

    def paused_s(self, start: float, end: float) -> float:
        """How long the collector ran between ``start`` and ``end`` (monotonic)."""
        return sum(
            min(end, at + pause_s) - max(start, at)
            for at, pause_s, _ in self.events
            if at < end and at + pause_s > start
        )

    def start(self) -> None:
        """Start recording."""
        gc.callbacks.append(self._callback)

    def stop(self) -> str:
        """Stop; a line per generation: count, total and longest pause."""
        gc.callbacks.remove(self._callback)
        return self.summary()

    def summary(self) -> str:
        """A line per generation: count and longest pause (over every start–stop so far)."""
        return "; ".join(
            f"gen{g}: {len(p)} collections, longest {max(p, default=0.0) * 1000:.1f} ms"
            for g, p in self.pauses_s.items()
        )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, to state how busy the machine was."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def solver_machine() -> str:
    """One line naming the machine and the numeric libraries the solver figures come from."""
    import numpy as np
    import scipy

    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}"
    )


def machine() -> dict[str, Any]:
    """The machine and the library versions the figures were measured with."""
    libs = {name: version(name) for name in ("websockets", "ocpp", "jsonschema", "structlog")}
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "libs": libs,
        "loadavg": os.getloadavg(),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Profile:
    """A main-thread profile (``pyinstrument`` or ``cprofile``) over chosen windows only.

    Each :meth:`window` adds to the same profile, so the idle time between
    windows stays out of it; :meth:`save` writes it. ``kind`` ``None`` profiles
    nothing. Threads (the ``ocpp`` library validates in a thread pool) are not
    sampled: run with ``--what-if inline-validation`` to see that work too.
    """

    def __init__(self, kind: str | None, out: str | None) -> None:
        self.kind = kind
        suffix = "txt" if kind == "pyinstrument" else "pstats"
        self.out = out or f"/tmp/bench-profile.{suffix}"
        self._profiler: Any = None
        if kind == "pyinstrument":
            try:
                from pyinstrument import Profiler
            except ImportError as exc:
                raise SystemExit(
                    "--profile pyinstrument needs pyinstrument: pip install -e '.[bench]'"
                ) from exc

            self._profiler = Profiler(interval=0.0005, async_mode="disabled")
        elif kind == "cprofile":
            import cProfile

            self._profiler = cProfile.Profile()

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        """Profile what runs inside the ``with`` block."""
        if self._profiler is None:
            yield
            return
        start, stop = (
            (self._profiler.start, self._profiler.stop)
            if self.kind == "pyinstrument"
            else (self._profiler.enable, self._profiler.disable)
        )
        start()
        try:
            yield
        finally:
            stop()

    def save(self) -> None:
        """Write the profile (text for pyinstrument, pstats for cProfile)."""
        if self._profiler is None:
            return
        if self.kind == "pyinstrument":
            text = self._profiler.output_text(unicode=True, show_all=False)
            Path(self.out).write_text(text)
        else:
            self._profiler.dump_stats(self.out)
        print(f"profile written to {self.out}")
