"""The HIL report files, and ``hil run`` / ``hil compare`` end to end on a tiny site."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hil.assertions import AssertionResult
from hil.report import compare_table, write_report
from hil.results import ScenarioResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_result(passed: bool = True) -> ScenarioResult:
    """A result as a run would give, with a three-sample series and one connector."""
    series: dict[str, Any] = {
        "dt_s": 0.5,
        "t": [0.0, 0.5, 1.0],
        "site_a": [[10, 10, 10], [40, 20, 20], [30, 20, 20]],
        "base_a": [[10, 10, 10]] * 3,
        "ev_power_w": [0, 6900, 4600],
        "available_w": [0, 9000, 9000],
        "mode": ["failsafe", "normal", "hold"],
        "limit_a": 35.0,
        "limit_kw": None,
        "margin_a": 1.0,
        "voltage_v": 230.0,
        "connectors": {"cp-01/1": {"t": [0.5, 1.0], "setpoint_a": [None, 16.0],
                                   "offered_a": [32.0, 16.0], "draw_a": [30.0, 16.0]}},
        "events": [{"t": 0.4, "label": "car arrives at cp-01"}],
    }  # fmt: skip
    kpis = {
        "utilization": 0.9,
        "seconds_over_limit": 0.5,
        "recovery": [{"at_s": 0.4, "recover_s": 0.6}],
        "after_disturbance_s": float("inf"),  # JSON has no infinity: written as null
    }
    verdict = AssertionResult("utilization >= 0.8", "utilization", 0.9, passed)
    return ScenarioResult(
        "tiny", "A tiny site.", "weighted_fair", 1.0, passed, kpis, [verdict], series, {}
    )


def test_report_files_are_written(tmp_path: Path) -> None:
    """report.json (valid JSON, no infinities), report.md with the verdict, and a PNG plot."""
    paths = write_report(synthetic_result(), tmp_path / "out")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["passed"] is True
    assert data["assertions"][0]["text"] == "utilization >= 0.8"
    assert data["kpis"]["after_disturbance_s"] is None
    assert data["series"]["connectors"]["cp-01/1"]["draw_a"] == [30.0, 16.0]
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "# tiny · weighted_fair: PASSED" in markdown
    assert "| pass | `utilization >= 0.8` | 0.9 |" in markdown
    assert paths["plot"].read_bytes().startswith(PNG_SIGNATURE)


def test_compare_table_has_a_column_per_policy() -> None:
    """One row per KPI, one column per policy, and the verdicts in the last row."""
    a, b = synthetic_result(), synthetic_result(passed=False)
    b.policy = "equal_share"
    table = compare_table([a, b])
    assert table.splitlines()[0] == "| KPI | weighted_fair | equal_share |"
    assert "| utilization | 0.9 | 0.9 |" in table
    assert table.splitlines()[-1] == "| assertions | PASSED | FAILED |"


def tiny_scenario(tmp_path: Path, assertions: list[str]) -> Path:
    """Two chargers, one car each, 6 s: enough to see the controller raise both."""
    data = {
        "name": "tiny",
        "duration_s": 6,
        "site": {"id": "tiny", "max_current_a": 63, "safety_margin_a": 1, "failsafe_current_a": 6},
        "control": {"interval_s": 0.5, "min_increase_interval_s": 0.5},
        "devices": {
            "chargers": [{"id": "cp", "count": 2, "meter_interval_s": 0.5}],
            "evs": {"car": {"max_current_a": 16, "delay_s": 0.5}},
            "base_load": {"constant_a": [10, 10, 10]},
        },
        "timeline": [{"at_s": 0.5, "event": "arrive", "chargers": "all", "ev": "car"}],
        "assertions": assertions,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hil.runner ARGS`` in a subprocess (it configures logging for its process)."""
    return subprocess.run(
        [sys.executable, "-m", "hil.runner", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_hil_run_exits_1_on_a_failed_assertion_and_writes_the_report(tmp_path: Path) -> None:
    """``hil run`` prints progress and the verdicts, writes three files, and exits 1 when an
    assertion fails (no site delivers 150 % of what it could)."""
    path = tiny_scenario(tmp_path, ["seconds_over_limit <= 0", "utilization >= 1.5"])
    result = hil("run", str(path), "--report", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "PASS  seconds_over_limit <= 0" in result.stdout
    assert "FAIL  utilization >= 1.5" in result.stdout
    assert sum(1 for line in result.stdout.splitlines() if line.startswith("t=")) >= 5
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"report.json", "report.md", "plot.png"}


@pytest.mark.slow
def test_hil_compare_tabulates_each_policy(tmp_path: Path) -> None:
    """``hil compare`` runs each policy, prints the table, writes a folder per policy, exits 0."""
    path = tiny_scenario(tmp_path, ["seconds_over_limit <= 0"])
    report = tmp_path / "cmp"
    policies = "weighted_fair,equal_share"
    result = hil("compare", str(path), "--policies", policies, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| KPI | weighted_fair | equal_share |" in result.stdout
    assert (report / "weighted_fair" / "plot.png").exists()
    assert (report / "equal_share" / "report.json").exists()
    assert (report / "compare.md").exists()


def test_hil_run_exits_2_on_an_invalid_scenario(tmp_path: Path) -> None:
    """An invalid file is refused before anything starts, each problem naming its key."""
    path = tiny_scenario(tmp_path, ["utilization >= 0.5"])
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["timeline"][0]["charger_id"] = "cp-01"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = hil("run", str(path))
    assert result.returncode == 2
    assert "timeline[0].arrive.charger_id: unknown key" in result.stderr


def test_hil_run_exits_2_on_an_unknown_policy(tmp_path: Path) -> None:
    """``--policy`` must name a registered policy."""
    result = hil("run", str(tiny_scenario(tmp_path, [])), "--policy", "fastest")
    assert result.returncode == 2
    assert "unknown policy fastest" in result.stderr
