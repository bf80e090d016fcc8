"""Scratch experiments for the OCPP benchmarks: patches applied in the benchmark's process only.

Each one changes how a library or a controller object behaves *in this
process*, so a benchmark can show how much a change to ``controller/`` would
give before anyone makes it. No file of the service changes, and nothing here
is meant to ship: the report in ``docs/benchmarks.md`` says which change each
experiment stands for.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable

WHAT_IFS = {
    "inline-validation": "ocpp.messages.ASYNC_VALIDATION = False: the library's schema checks "
    "run on the event loop instead of in the default thread pool",
    "no-compression": "the OCPP websockets server without permessage-deflate "
    "(serve(..., compression=None))",
}
"""Experiments still open. Those that were measured and then shipped (our own CALL path,
the compiled MeterValues check, the charger index, the heap freeze) are in the code."""


def after_start() -> None:
    """What the service does once it is steady (controller.deployment.freeze_heap_after).

    The benchmarks reach a steady site in seconds, not the service's 60 s, so they
    freeze at once, as the service would have by then.
    """
    gc.collect()
    gc.freeze()


def apply_what_if(names: str | None) -> str:
    """Apply the comma-separated experiments; a description of what runs."""
    if not names:
        return "none: the code as it is"
    applied = []
    for name in names.split(","):
        if name not in WHAT_IFS:
            raise SystemExit(f"unknown --what-if {name!r}; known: {', '.join(WHAT_IFS)}")
        _PATCHES[name]()
        applied.append(f"{name} ({WHAT_IFS[name]})")
    return "; ".join(applied)


def _inline_validation() -> None:
    import ocpp.messages

    ocpp.messages.ASYNC_VALIDATION = False


def _no_compression() -> None:
    from websockets.asyncio.server import serve

    import controller.ocpp.server

    controller.ocpp.server.serve = functools.partial(serve, compression=None)  # type: ignore[attr-defined]


_PATCHES: dict[str, Callable[[], None]] = {
    "inline-validation": _inline_validation,
    "no-compression": _no_compression,
}
