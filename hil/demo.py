"""``headroom demo``: a simulated site and the controller in one process, over loopback.

The demo is a HIL scenario built in code and run by :func:`hil.runner.run_scenario`:
the controller is the same :class:`controller.service.SiteController` that
``headroom run`` starts; only its peers are simulated: OCPP 1.6 charge points
with EVs over real websockets, and an SDM630-like meter over real Modbus TCP.
The timeline has EVs arriving over the first half, one leaving, and the
building load stepping up and back down, so the loop visibly reacts.

The controller keeps an audit log and a state store, as a site would: in
``--state-dir`` when given (kept, so operator changes carry over to the next
run), else in a temporary directory removed at the end. Either is printed at
the start. The dashboard admits a manager token made for the run (printed,
in the URL's fragment) and the tokens of ``HEADROOM_API_TOKENS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from controller.service import SiteController
from hil.results import finite
from hil.runner import run_scenario
from hil.scenario import Scenario, parse_scenario

ROTATIONS = ["L1L2L3", "L2L3L1", "L3L1L2"]
EV_DELAY_S = (1.0, 5.0)  # each EV follows a new limit after a delay drawn from this range
BASE_BEFORE_A = (30.0, 22.0, 18.0)  # unbalanced building load
BASE_STEP_A = (50.0, 37.0, 28.0)  # the step: +20 A, +15 A, +10 A


def _evs() -> dict[str, dict[str, Any]]:
    """A mix of cars: 3-phase 32 A and 16 A, and every fourth a 1-phase 32 A car."""
    delay = list(EV_DELAY_S)
    return {
        "car32": {"max_current_a": 32, "phases": 3, "soc": 0.3, "delay_s": delay},
        "car16": {"max_current_a": 16, "phases": 3, "soc": 0.3, "delay_s": delay},
        "car1p": {"max_current_a": 32, "phases": 1, "soc": 0.2, "delay_s": delay},
    }


def _timeline(chargers: int, duration_s: float) -> list[dict[str, Any]]:
    """Arrivals over the first half, one departure at 70 %, a load step from 55 % to 85 %."""
    events: list[dict[str, Any]] = [
        {
            "at_s": 0.02 * duration_s,
            "event": "arrive",
            "chargers": "all",
            "ev": ["car32", "car16", "car32", "car1p"],
            "stagger_s": 0.43 * duration_s / max(chargers - 1, 1),
        },
        {"at_s": 0.55 * duration_s, "event": "base_load", "current_a": list(BASE_STEP_A)},
        {"at_s": 0.85 * duration_s, "event": "base_load", "current_a": list(BASE_BEFORE_A)},
    ]
    if chargers > 1:
        leaving = f"cp-{chargers // 2 + 1:02d}"
        events.append({"at_s": 0.7 * duration_s, "event": "depart", "charger": leaving})
    return events


def demo_scenario(chargers: int = 10, duration_s: float = 60.0, seed: int = 1) -> Scenario:
    """The demo site: 12 A per charger per phase of grid connection, the rest shared."""
    limit_a = max(80.0, 12.0 * chargers)
    return parse_scenario(
        {
            "name": "demo",
            "description": "The built-in demo site of `headroom demo`.",
            "duration_s": duration_s,
            "seed": seed,
            "site": {
                "id": "demo",
                "voltage_v": 230,
                "max_current_a": limit_a,
                "max_power_kw": round(0.9 * 3 * 230 * limit_a / 1000, 1),
                "safety_margin_a": 2,
                "failsafe_current_a": 6,
                "base_load_reserve_a": 40,
            },
            "control": {"interval_s": 1.0, "lease_s": 120, "deadband_a": 0.5, "ev_settle_s": 8},
            "devices": {
                "chargers": [
                    {"id": "cp", "count": chargers, "max_current_a": 32, "rotations": ROTATIONS}
                ],
                "evs": _evs(),
                "base_load": {"constant_a": list(BASE_BEFORE_A)},
            },
            "timeline": _timeline(chargers, duration_s),
        },
        source="demo",
    )


def _dashboard(
    port: int, out: Callable[[str], None]
) -> Callable[[SiteController], AbstractAsyncContextManager[object]]:
    """Serve the API and dashboard for the demo's controller: a fresh manager token, and the
    tokens of ``HEADROOM_API_TOKENS`` (raises ValueError, naming the entry, if it is malformed)."""
    from controller.api.auth import TokenBook, new_token, sha256_hex
    from controller.api.server import ApiServer
    from controller.config import ApiSettings

    token = new_token()
    book = TokenBook.from_sources([("demo-manager", "manager", sha256_hex(token))])

    @asynccontextmanager
    async def serve(controller: SiteController) -> AsyncIterator[object]:
        server = ApiServer(ApiSettings(port=port), {controller.config.site.id: controller}, book)
        await server.start()
        out(f"dashboard: {server.url}#token={token}")
        out(f"manager token (demo-manager): {token}")
        try:
            yield server
        finally:
            await server.stop()

    return serve


async def run_demo(
    chargers: int = 10,
    duration_s: float = 60.0,
    report_path: str | Path | None = None,
    seed: int = 1,
    out: Callable[[str], None] = print,
    api_port: int | None = None,
    state_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the demo site and return (and optionally write) the report.

    With ``api_port`` the API and dashboard are served on 127.0.0.1 with a
    manager token made for this run; the URL to open (token in its fragment) is
    printed. The audit log and state store live in ``state_dir`` (created if
    need be, and kept) or in a temporary directory removed at the end.
    """
    scenario = demo_scenario(chargers, duration_s, seed)
    serve = None if api_port is None else _dashboard(api_port, out)
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="headroom-")))
            kept = "temporary, removed at the end; --state-dir keeps it"
        else:
            directory = Path(state_dir)
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            kept = "kept"
        out(f"audit log and settings: {directory} ({kept})")
        result = await run_scenario(scenario, out=out, serve=serve, state_dir=directory)
    report = dict(result.kpis)
    report.update(
        {
            "chargers": chargers,
            "duration_s": duration_s,
            "limit_a": scenario.site.max_current_a,
            **result.controller,
            "disturbances_s": [r["at_s"] for r in result.kpis["recovery"]],
            "events": [f"{e['t']:6.1f}s {e['label']}" for e in result.series["events"]],
        }
    )
    if report_path is not None:
        text = json.dumps(finite(report), indent=2) + "\n"
        await asyncio.to_thread(Path(report_path).write_text, text, encoding="utf-8")
    return report
