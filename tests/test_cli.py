"""The `headroom` command routes each subcommand to its implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main


def test_hil_subcommand_reports_a_missing_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`headroom hil run` on a file that is not there fails with a message, not a traceback."""
    code = main(["hil", "run", str(tmp_path / "missing.yaml")])
    assert code == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_unknown_subcommand_is_refused() -> None:
    """argparse refuses what the command does not know."""
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_solve_subcommand_prints_the_allocation(capsys: pytest.CaptureFixture[str]) -> None:
    """`headroom solve examples/problem.json` prints currents and reasons as JSON."""
    import json

    example = Path(__file__).resolve().parent.parent / "examples" / "problem.json"
    assert main(["solve", str(example), "--policy", "weighted_fair"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["policy"] == "weighted_fair"
    assert answer["violations"] == []
    assert all("reason" in c for c in answer["connectors"].values())


def test_the_log_level_before_hil_reaches_the_scenario_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`headroom --log-level debug hil run ...` shows the controller's debug logs (the HIL
    runner logs at warning otherwise)."""
    import structlog

    saved = structlog.get_config()
    try:
        main(["--log-level", "debug", "hil", "run", str(tmp_path / "missing.yaml")])
        structlog.get_logger().debug("probe after the hil run")
        assert "probe after the hil run" in "".join(capsys.readouterr())
        main(["hil", "run", str(tmp_path / "missing.yaml")])
        structlog.get_logger().debug("quiet probe")
        assert "quiet probe" not in "".join(capsys.readouterr())
    finally:
        structlog.configure(**saved)
