"""Several sites in one process, each isolated from the others' faults.

Each site runs its own :class:`SiteController` (its own OCPP port, meter,
state and loop) under a supervisor: if a site's controller fails, it is
logged and restarted after a back-off while every other site runs on. The
chargers of the failed site hold their fail-safe profiles meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Sequence

import structlog

from controller.config import HeadroomConfig
from controller.service import SiteController

log = structlog.get_logger(__name__)

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


async def supervise(
    config: HeadroomConfig,
    factory: Callable[[HeadroomConfig], SiteController] = SiteController,
    backoff_s: Sequence[float] = RESTART_BACKOFF_S,
) -> None:
    """Run one site for ever, restarting its controller when it fails."""
    failures = 0
    while True:
        controller = factory(config)
        try:
            await controller.run_forever()
            return  # only a clean end (cancellation raises instead)
        except asyncio.CancelledError:
            raise
        except Exception:
            delay_s = backoff_s[min(failures, len(backoff_s) - 1)]
            failures += 1
            log.exception(
                "site controller failed; restarting",
                site=config.site.id,
                restart_in_s=delay_s,
                failures=failures,
            )
            await asyncio.sleep(delay_s)


FREEZE_HEAP_AFTER_S = 60.0
"""When the start-up heap (and the chargers that connected first) leaves the cycle collector."""


async def freeze_heap_after(delay_s: float = FREEZE_HEAP_AFTER_S) -> None:
    """Once the service is steady, move what exists to the collector's permanent generation.

    Full collections then scan only what changes, not the config, the schemas
    and the connections of a depot: at 1,000 chargers this took the worst
    decision pauses out of the reaction latency (docs/benchmarks.md).
    """
    await asyncio.sleep(delay_s)
    gc.collect()
    gc.freeze()
    log.info("heap frozen for the cycle collector", objects=gc.get_freeze_count())


async def run_sites(
    configs: Sequence[HeadroomConfig],
    factory: Callable[[HeadroomConfig], SiteController] = SiteController,
) -> None:
    """Run every site until cancelled."""
    freezer = asyncio.create_task(freeze_heap_after(), name="freeze-heap")
    try:
        async with asyncio.TaskGroup() as group:
            for config in configs:
                group.create_task(supervise(config, factory), name=f"site:{config.site.id}")
    finally:
        freezer.cancel()
