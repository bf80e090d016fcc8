"""`headroom run` with an `api:` section serves the API and dashboard, over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from controller.api.auth import sha256_hex
from tests.test_restart import free_port


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "headroom run exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing served at {url}")


def test_headroom_run_serves_the_api_with_config_and_env_tokens(tmp_path: Path) -> None:
    """Tokens from the config (by hash) and from HEADROOM_API_TOKENS both work; no token gets
    401; a manager's limit is applied and audited; the dashboard is served at /."""
    api_port = free_port()
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": {"id": "r", "max_current_a": 63, "failsafe_current_a": 6},
                "ocpp": {"host": "127.0.0.1", "port": free_port()},
                "meter": {"host": "127.0.0.1", "port": free_port(), "poll_interval_s": 0.5},
                "audit": {"path": str(tmp_path / "audit.db")},
                "store": {"path": str(tmp_path / "state.db")},
                "api": {
                    "host": "127.0.0.1",
                    "port": api_port,
                    "tokens": [
                        {"name": "ops", "role": "viewer", "token_sha256": sha256_hex("ops-token")}
                    ],
                },
                "chargers": [{"id": "cp-0"}],
            }
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "HEADROOM_API_TOKENS": "night-manager:manager:mgr-token"}
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        _wait_for(base + "/", process)
        viewer = {"Authorization": "Bearer ops-token"}
        manager = {"Authorization": "Bearer mgr-token"}
        with httpx.Client(base_url=base, timeout=10) as api:
            assert "<title>Headroom</title>" in api.get("/").text
            assert api.get("/api/v1/sites").status_code == 401
            assert api.get("/api/v1/me", headers=viewer).json() == {"name": "ops", "role": "viewer"}
            [site] = api.get("/api/v1/sites", headers=viewer).json()
            assert site["id"] == "r"
            state = api.get("/api/v1/sites/r", headers=viewer).json()
            assert state["mode"] == "failsafe"  # no meter answers: the site holds its fail-safe
            limit = {"max_current_a": 40}
            refused = api.put("/api/v1/sites/r/settings/limit", json=limit, headers=viewer)
            assert refused.status_code == 403
            changed = api.put("/api/v1/sites/r/settings/limit", json=limit, headers=manager)
            assert changed.status_code == 200
            state = api.get("/api/v1/sites/r", headers=viewer).json()
            assert state["limits"]["max_current_a"] == 40
            assert state["limits"]["rated_max_current_a"] == 63
            audit = api.get("/api/v1/sites/r/audit?kind=changes", headers=viewer).json()
            assert [(a["who"], a["resource"]) for a in audit] == [("night-manager", "site limit")]
            spec = api.get("/api/v1/openapi.json").json()
            assert "/api/v1/sites/{site_id}/settings/limit" in spec["paths"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
