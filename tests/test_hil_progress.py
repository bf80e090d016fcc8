"""The runner's progress line: the assertions failing so far, each KPI computed as at the end."""

from __future__ import annotations

import copy

import pytest

from hil.runner import run_scenario
from hil.scenario import parse_scenario
from tests.test_hil_scenario import MINIMAL


@pytest.mark.slow
async def test_the_pacing_kpi_is_judged_while_the_run_goes() -> None:
    """A short run whose increases are all paced: its `increases_within_response <= 0`
    passes at the end, and no progress line shows it failing (it did on every line, the KPI
    being computed only at the end)."""
    data = copy.deepcopy(MINIMAL)
    data |= {"duration_s": 6, "time_scale": 2, "assertions": ["increases_within_response <= 0"]}
    lines: list[str] = []
    result = await run_scenario(parse_scenario(data), out=lines.append)
    assert result.passed, [(v.text, v.actual) for v in result.assertions]
    progress = [line for line in lines if line.startswith("t=")]
    assert progress
    assert not [line for line in progress if "increases_within_response" in line]
