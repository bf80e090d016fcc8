"""`headroom demo` as a facility manager meets it: lower the limit over HTTP, see the site follow.

The real demo runs as a subprocess (simulated chargers, EVs and meter over
loopback, the controller, the API on a free port). A manager's token comes in
through ``HEADROOM_API_TOKENS``, as an orchestrator would inject it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from controller.audit import AuditQuery, read_audit
from hil.demo import EV_DELAY_S
from hil.results import REACTION_S

NEW_LIMIT_A = 56.0
"""The demo site is rated 80 A; its first car (32 A) on 30 A of building load draws 62 A.
The lowest limit it accepts is 54 A: 40 A reserved for the building, 6 A of fail-safe
per charger and 2 A of margin."""
RESPONSE_S = EV_DELAY_S[1] + REACTION_S  # the slowest EV's delay, plus seeing and deciding


async def _line(stream: asyncio.StreamReader, pattern: str, timeout_s: float) -> re.Match[str]:
    """The first line of the demo's output matching ``pattern``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(stream.readline(), deadline - time.monotonic())
        if not raw:
            break
        found = re.search(pattern, raw.decode())
        if found:
            return found
    raise AssertionError(f"the demo never printed {pattern!r}")


def _phases(site: dict) -> list[float]:  # type: ignore[type-arg]
    return [v for v in site["meter"]["current_a"] if v is not None]


@pytest.mark.slow
async def test_a_manager_lowers_the_limit_of_a_running_demo(tmp_path: Path) -> None:
    """Through the API, with a manager token: the site is under the new limit within the EVs'
    response time and stays there, and the audit log (API and `headroom audit`) says who."""
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "HEADROOM_API_TOKENS": f"facility-manager:manager:{token}",
        "PYTHONUNBUFFERED": "1",
    }
    state = tmp_path / "state"
    demo = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "controller.cli", "demo", "--chargers", "2"),
        *("--duration", "60", "--api-port", "0", "--state-dir", str(state)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert demo.stdout is not None
    try:
        printed = await _line(demo.stdout, r"audit log and settings: (\S+)", 60)
        assert Path(printed[1]) == state
        url = (await _line(demo.stdout, r"dashboard: (http://127\.0\.0\.1:\d+/)#token=", 30))[1]
        site_url = "api/v1/sites/demo"
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api:
            me = (await api.get("api/v1/me")).json()
            assert me == {"name": "facility-manager", "role": "manager"}
            # The first car (32 A, three phases) charges at full: the site is above the new limit.
            deadline = time.monotonic() + 30
            while max(_phases((await api.get(site_url)).json()) or [0]) < NEW_LIMIT_A + 4:
                assert time.monotonic() < deadline, "the first car never charged at full"
                await asyncio.sleep(0.25)
            etag = (await api.get(f"{site_url}/settings")).headers["etag"]
            changed = await api.put(
                f"{site_url}/settings/limit",
                json={"max_current_a": NEW_LIMIT_A},
                headers={"If-Match": etag},
            )
            assert changed.status_code == 200, changed.text
            changed_at = datetime.now().astimezone()
            t0 = time.monotonic()
            under_after_s = None
            while time.monotonic() - t0 < RESPONSE_S + 4:
                site = (await api.get(site_url)).json()
                fresh = datetime.fromisoformat(site["meter"]["at"]) > changed_at
                under = fresh and max(_phases(site)) <= NEW_LIMIT_A
                if under and under_after_s is None:
                    under_after_s = time.monotonic() - t0
                elif under_after_s is not None:
                    assert under, f"over {NEW_LIMIT_A} A again: {site['meter']}"
                await asyncio.sleep(0.2)
            assert site["limits"]["max_current_a"] == NEW_LIMIT_A
            assert under_after_s is not None, f"never under {NEW_LIMIT_A} A: {site['meter']}"
            assert under_after_s <= RESPONSE_S
            changes = (await api.get(f"{site_url}/audit", params={"kind": "changes"})).json()
        # The demo's own progress lines now judge the site against the manager's limit.
        await _line(demo.stdout, rf"/ {NEW_LIMIT_A:.0f} A\]", 10)
        [change] = [c for c in changes if c["who"] == "facility-manager"]
        assert f'"max_current_a":{NEW_LIMIT_A}' in change["after"]
        assert change["resource"] == "site limit"
    finally:
        if demo.returncode is None:
            demo.kill()  # as abrupt as a crash: what was audited must still be there
        await demo.wait()
    records = list(read_audit(state / "audit.db", AuditQuery(kind="changes")))
    assert [r["who"] for r in records] == ["facility-manager"]
