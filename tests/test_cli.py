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
