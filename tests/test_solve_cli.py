"""``headroom solve`` (policies.solve_cli.solve_main): the example file, the output, the errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policies import POLICIES
from policies.solve_cli import problem_from_json, read_problem, report, solve_main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "problem.json"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = solve_main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_the_example_solves_with_every_policy(
    capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    """The shipped example gives exit 0 and JSON with one entry and reason per session, no
    violations, the policy's name and the solve time."""
    status, out, err = _run(capsys, str(EXAMPLE), "--policy", policy)
    assert (status, err) == (0, "")
    report = json.loads(out)
    sessions = json.loads(EXAMPLE.read_text())["sessions"]
    assert list(report["connectors"]) == [s["connector_id"] for s in sessions]
    assert all(entry["reason"] for entry in report["connectors"].values())
    assert report["policy"] == policy
    assert report["violations"] == []
    assert report["solve_ms"] >= 0
    total = sum(entry["current_a"] for entry in report["connectors"].values())
    assert report["total_current_a"] == round(total, 1)


def test_weighted_fair_is_the_default_and_explains_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --policy, weighted_fair answers; on the example the site's power limit binds,
    the 10 A car is held by its own maximum and the weight-2 car gets twice the share."""
    status, out, _ = _run(capsys, str(EXAMPLE))
    connectors = json.loads(out)["connectors"]
    assert status == 0
    assert connectors["cp-2/1"] == {"current_a": 10.0, "reason": "session max"}
    assert connectors["cp-1/1"]["reason"] == "site power"
    assert connectors["cp-3/1"]["current_a"] >= 2 * connectors["cp-3/2"]["current_a"]


def test_the_example_reads_into_the_model() -> None:
    """Phases given as names (\"L1\") and as numbers, times and the tree all arrive."""
    problem = read_problem(EXAMPLE)
    by_id = {s.connector_id: s for s in problem.sessions}
    assert by_id["cp-1/2"].phases == (0,)
    assert by_id["cp-2/1"].running_for_s == 1200.0
    assert by_id["cp-3/2"].paused_for_s == 30.0
    assert problem.nodes[0].base_load_a == (31.5, 12.0, 18.2)
    assert problem.min_run_s == problem.min_pause_s == 300.0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"nodes": [], "sessions": [{"connector_id": "a"}]}, "sessions[0].node: required field"),
        (
            {"nodes": [{"id": "s", "max_current_a": "32A"}], "sessions": []},
            'nodes[0].max_current_a: expected a number, got "32A"',
        ),
        (
            {
                "nodes": [{"id": "s"}],
                "sessions": [{"connector_id": "a", "node": "s", "phases": [3]}],
            },
            "sessions[0].phases[0]: expected 0, 1, 2",
        ),
        ({"nodes": [{"id": "s", "base_load_a": [1, 2]}], "sessions": []}, "nodes[0].base_load_a"),
        ({"nodes": [{"id": "s", "fuse_a": 3}], "sessions": []}, "nodes[0].fuse_a: unknown field"),
        ({"nodes": {}, "sessions": []}, "nodes: expected a list"),
        ([], "problem: expected an object"),
    ],
)
def test_a_wrong_field_is_named(document: object, message: str) -> None:
    """Each mistake is reported with the path of the field and what was expected."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        problem_from_json(document)


def test_a_malformed_file_gives_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Broken JSON, a wrong field, a model error and a missing file each give exit 2 and one
    line on stderr naming the file and the place; nothing on stdout."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"nodes": [,]}')
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"nodes": [{"id": "s"}], "sessions": [{"connector_id": "a"}]}))
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"nodes": [{"id": "s"}, {"id": "s"}], "sessions": []}))
    cases = {
        broken: "line 1 column 12",
        wrong: "sessions[0].node: required field is missing",
        twice: "nodes listed twice: s",
        tmp_path / "missing.json": "cannot read it",
    }
    for path, message in cases.items():
        status, out, err = _run(capsys, str(path))
        assert (status, out) == (2, "")
        assert err.startswith(f"headroom solve: {path}: ")
        assert message in err


def test_unknown_policy_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in --policy gets exit 2 and the names that would have worked."""
    status, _, err = _run(capsys, str(EXAMPLE), "--policy", "fastest")
    assert status == 2
    assert "equal_share, optimal, weighted_fair" in err


def test_bad_arguments_give_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """No file at all: argparse's usage message and exit 2."""
    status, _, err = _run(capsys)
    assert status == 2
    assert "usage: headroom solve" in err


DEPOT = EXAMPLE.with_name("depot-problem.json")


def test_the_depot_example_plans_with_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/problem-format.md's depot: the van leaving in an hour charges now at 32 A, the
    one leaving in four hours waits for the cheap slots, the car without a departure takes
    the 11 A left; every van can be served, so no ``unserved`` key."""
    status, out, _ = _run(capsys, str(DEPOT), "--policy", "deadline")
    report = json.loads(out)
    assert status == 0
    assert report["connectors"] == {
        "van-1": {"current_a": 32.0, "reason": "session max"},
        "van-2": {"current_a": 0.0, "reason": "deadline plan: later slot"},
        "car": {"current_a": 11.0, "reason": "site L1"},
    }
    assert "unserved" not in report


def test_a_short_van_is_listed_in_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    """A van that needs two hours at 32 A within one is listed under ``unserved``."""
    document = json.loads(DEPOT.read_text())
    document["sessions"][0]["energy_wh"] = 2 * 22080
    problem = problem_from_json(document)
    assert problem.horizon.peak_cap_w == 45000.0
    assert problem.sessions[0].departure_s == 3600.0
    out = report("deadline", POLICIES["deadline"](problem), problem, 1.0)
    assert out["unserved"] == [
        {"connector_id": "van-1", "short_wh": 22080.0, "energy_wh": 44160.0, "departure_s": 3600.0}
    ]


@pytest.mark.parametrize(
    ("horizon", "message"),
    [
        ({"slots": 0}, "horizon.slots: expected a whole number ≥ 1"),
        ({"slot_s": -1}, "horizon.slot_s: must be more than 0"),
        ({"prices": "cheap"}, "horizon.prices: expected a list of numbers"),
        ({"base_forecast_a": [[1, 2]]}, "horizon.base_forecast_a[0]: expected three numbers"),
        ({"peak": 1}, "horizon"),
    ],
)
def test_a_wrong_horizon_field_is_named(horizon: dict[str, object], message: str) -> None:
    """Each bad horizon setting is refused with its key."""
    document = json.loads(DEPOT.read_text())
    document["horizon"] = horizon
    with pytest.raises(ValueError, match=re.escape(message)):
        problem_from_json(document)
