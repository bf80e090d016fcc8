"""Short library scenarios, run for real in CI: each passes its own assertions.

Each runs at the time_scale its file sets (5: 40–50 s of scenario in 8–10 s; the
largest scale reliable on a 2-core machine, docs/hil.md) against the controller and
simulated devices over loopback; the rest of the library runs with the command in
docs/hil.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.runner import run_scenario
from hil.scenario import load_scenario

LIBRARY = Path(__file__).parent.parent / "hil" / "scenarios"
# The short scenarios CI runs (their time scale is in each file; docs/hil.md).
IN_CI = (
    "mass_arrival",
    "meter_faults",
    "limit_cut",
    "controller_restart",
    "mixed_protocols",
    "building_load_step",
    "slow_evs_short",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", IN_CI)
async def test_library_scenario_passes(name: str, tmp_path: Path) -> None:
    """The scenario passes every assertion under the default policy and writes its report."""
    lines: list[str] = []
    result = await run_scenario(
        load_scenario(LIBRARY / f"{name}.yaml"), None, tmp_path, lines.append
    )
    failed = [f"{a.text} (measured {a.actual})" for a in result.assertions if not a.passed]
    assert not failed, f"{name}: {failed}\n" + "\n".join(lines[-5:])
    assert {p.name for p in result.report_files.values()} == {
        "report.json",
        "report.md",
        "plot.png",
    }
    assert all(p.parent == tmp_path for p in result.report_files.values())
    assert sum(1 for line in lines if line.startswith("t=")) >= result.duration_s - 5
