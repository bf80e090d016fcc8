"""The site config: validated at load, every error named by key path and reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main
from controller.config import HeadroomConfig, load_config, parse_config
from controller.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "site.yaml"
BROKEN = Path(__file__).parent / "data" / "broken.yaml"


def minimal(**site: object) -> dict[str, object]:
    """The smallest valid config, with site keys overridden."""
    return {
        "site": {"id": "s1", "max_current_a": 63, **site},
        "meter": {"host": "127.0.0.1"},
        "chargers": [{"id": "cp-01"}],
    }


def problems(data: object) -> list[str]:
    """The problems parse_config reports for ``data``."""
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_example_config_is_valid() -> None:
    """The commented example in examples/ loads, with the values it states."""
    config = load_config(EXAMPLE)
    assert config.site.max_power_w == 110_000
    assert config.site.max_current_a == 160
    assert [c.id for c in config.chargers] == ["cp-01", "cp-02", "cp-03", "fleet-01"]
    assert config.charger("cp-02") is not None
    assert config.chargers[1].site_phases() == (1, 2, 0)


def test_broken_file_names_both_keys() -> None:
    """A wrong key type and a missing limit are both reported, each with its key path."""
    with pytest.raises(ConfigError) as info:
        load_config(BROKEN)
    text = "\n".join(info.value.problems)
    assert "chargers[0].max_current_a" in text
    assert "site.max_power_kw" in text
    assert "site.max_current_a" in text
    assert len(info.value.problems) == 2


def test_unknown_key_is_an_error() -> None:
    """A misspelt key is refused, not silently ignored."""
    data = minimal()
    data["site"] = {**data["site"], "max_curent_a": 10}  # type: ignore[dict-item]
    assert problems(data) == [
        "site.max_curent_a: unknown key (check the spelling; see docs/configuration.md)"
    ]


@pytest.mark.parametrize("failsafe_a", [1, 5.9])
def test_failsafe_below_iec_minimum_is_refused(failsafe_a: float) -> None:
    """A fail-safe between 0 and 6 A would stop the cars anyway: it is refused."""
    [problem] = problems(minimal(failsafe_current_a=failsafe_a))
    assert "failsafe_current_a" in problem
    assert "6.0 A" in problem


def test_failsafe_profiles_must_fit_under_the_limit() -> None:
    """Invariant 3: the fail-safe profiles of all chargers together stay under the limit."""
    data = minimal(max_current_a=20, failsafe_current_a=6, safety_margin_a=2)
    data["chargers"] = [{"id": f"cp-{i}"} for i in range(4)]  # 24 A on each phase
    [problem] = problems(data)
    assert "24.0 A on one phase" in problem


def test_rotated_chargers_spread_the_failsafe_sum() -> None:
    """Single-phase chargers on different site phases do not add up on one phase."""
    data = minimal(max_current_a=14, failsafe_current_a=6, safety_margin_a=2)
    data["chargers"] = [
        {"id": "a", "phases": 1, "phase_rotation": "L1L2L3"},
        {"id": "b", "phases": 1, "phase_rotation": "L2L3L1"},
        {"id": "c", "phases": 1, "phase_rotation": "L3L1L2"},
    ]
    config = parse_config(data)
    assert [c.site_phases() for c in config.chargers] == [(0,), (1,), (2,)]


def test_duplicate_charger_ids_are_refused() -> None:
    """Two chargers with one id could not be told apart on the wire."""
    data = minimal()
    data["chargers"] = [{"id": "cp-01"}, {"id": "cp-01"}]
    assert problems(data) == ["(top level): chargers: duplicate id(s) cp-01"]


def test_unknown_policy_lists_known_ones() -> None:
    """A policy name the registry does not know is refused with the known names."""
    data = minimal()
    data["control"] = {"policy": "fastest"}
    [problem] = problems(data)
    assert problem.startswith("control: control.policy 'fastest' is unknown; known:")
    assert "weighted_fair" in problem


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A file that is not YAML is reported with its line, not a traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("site:\n  id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.problems[0].startswith("line 3")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming the reason."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.yaml")


def test_check_config_cli_ok_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """`headroom check-config` prints OK (exit 0) or every problem (exit 1)."""
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "OK"
    assert main(["check-config", str(BROKEN)]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "chargers[0].max_current_a" in err


def test_console_script_is_installed() -> None:
    """The `headroom` entry point runs as a program (what the README tells users to type)."""
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "check-config", str(BROKEN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "site.max_power_kw" in result.stderr


def test_exactly_one_grid_meter() -> None:
    """A site reads its grid meter over Modbus or MQTT: neither, or both, is an error."""
    data = minimal()
    del data["meter"]
    assert problems(data) == [
        "(top level): the grid meter: set exactly one of meter (Modbus TCP) and mqtt_meter "
        "(MQTT), or list the meters under meters"
    ]
    data["mqtt_meter"] = {
        "host": "127.0.0.1",
        "topic": "site/grid",
        "quantities": {"power_total": {"field": "p", "unit": "W"}},
    }
    assert parse_config(data).mqtt_meter is not None


def test_meter_map_must_be_known_or_a_valid_file(tmp_path: Path) -> None:
    """An unknown built-in map name lists the known ones; a broken map file is named."""
    data = minimal()
    data["meter"] = {"host": "127.0.0.1", "map": "sdm999"}
    [problem] = problems(data)
    assert "meter.map 'sdm999' is not a built-in map; known:" in problem
    assert "em24" in problem
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\n", encoding="utf-8")
    data["meter"] = {"host": "127.0.0.1", "map_file": str(bad)}
    [problem] = problems(data)
    assert problem.startswith("meter: meter.map_file")


def test_charger_lookup_follows_a_copy_with_other_chargers() -> None:
    config = HeadroomConfig.model_validate(
        {
            "site": {"id": "depot", "max_current_a": 63},
            "meter": {"host": "127.0.0.1"},
            "chargers": [{"id": "cp-1"}, {"id": "cp-2", "max_current_a": 16}],
        }
    )
    assert config.charger("cp-2") is not None
    assert config.charger("cp-2").max_current_a == 16.0  # type: ignore[union-attr]
    assert config.charger("cp-9") is None
    fewer = config.model_copy(update={"chargers": [config.chargers[0]]})
    assert fewer.charger("cp-2") is None
    assert config.charger("cp-2") is not None
