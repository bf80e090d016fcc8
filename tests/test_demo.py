"""`headroom demo`: the simulated site held under its limit, end to end, as the README runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_holds_the_limit_and_uses_it(tmp_path: Path) -> None:
    """Ten chargers for a minute: utilisation ≥ 0.9, and every second over the limit falls
    within an EV's response delay (plus the time to see it) after an arrival or a load step."""
    report_path = tmp_path / "r.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "demo",
            "--chargers",
            "10",
            "--duration",
            "60",
            "--report",
            str(report_path),
            "--api-port",
            "0",  # a free port: the default 8080 may be taken on a shared machine
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    status_lines = [line for line in result.stdout.splitlines() if line.startswith("t=")]
    assert len(status_lines) >= 55  # one a second
    report = json.loads(report_path.read_text(encoding="utf-8"))
    for key in (
        "limit_kw",
        "peak_site_kw",
        "seconds_over_limit",
        "delivered_kwh",
        "available_kwh",
        "utilization",
        "setpoint_commands",
    ):
        assert key in report
    # 0.917–0.927 over six runs on a 2-core machine (load 0.3–1.3) once a car's doubt lasts
    # as long as it took to reach a level it was told: 0.9 leaves the spread.
    assert report["utilization"] >= 0.9
    assert report["seconds_over_limit_unexplained"] == 0.0
    assert report["setpoint_commands"] > 10
    # Every command is accepted, but for at most one refusal per session: a TxProfile that
    # reaches the simulated charger before it has processed its StartTransaction answer (the
    # start race, which the controller answers by sending the same TxProfile again).
    results = report["command_results"]
    assert set(results) <= {"Accepted", "Rejected"}
    assert results.get("Rejected", 0) <= 10
    refusals = [line for line in result.stderr.splitlines() if "status=Rejected" in line]
    assert all("purpose=TxProfile" in line for line in refusals)
    assert sum(results.values()) == report["setpoint_commands"]
    assert report["delivered_kwh"] > 0.5
