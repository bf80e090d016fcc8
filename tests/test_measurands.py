"""MeterValues → A, W, Wh: units, phases, defaults, the latest sample set, bad values."""

from __future__ import annotations

from typing import Any

import pytest

from controller.ocpp.measurands import MeasurementFields, parse_meter_values

T0 = "2026-03-01T12:00:00Z"
T1 = "2026-03-01T12:00:10Z"


def _sv(value: str, measurand: str | None = None, **extra: str) -> dict[str, str]:
    """One sampledValue entry."""
    sample = {"value": value, **extra}
    if measurand is not None:
        sample["measurand"] = measurand
    return sample


def _parse(*samples: dict[str, str], timestamp: str = T0) -> MeasurementFields:
    """Parse one meterValue entry holding ``samples``."""
    return parse_meter_values([{"timestamp": timestamp, "sampledValue": list(samples)}])


def test_per_phase_currents_fill_l1_l2_l3() -> None:
    """Current.Import per phase lands on its phase; L1-N counts as L1."""
    fields = _parse(
        _sv("16.0", "Current.Import", phase="L1-N", unit="A"),
        _sv("15.5", "Current.Import", phase="L2"),
        _sv("0", "Current.Import", phase="L3"),
    )
    assert fields.current_a == (16.0, 15.5, 0.0)
    assert fields.problems == ()


def test_current_without_phase_is_not_taken_for_a_phase() -> None:
    """A phase-less Current.Import is a total: it fills no phase."""
    fields = _parse(_sv("32", "Current.Import"), _sv("10", "Current.Import", phase="L2"))
    assert fields.current_a == (None, 10.0, None)


def test_line_to_line_and_neutral_values_are_ignored() -> None:
    """A neutral current or a line-to-line value is neither a phase nor a total."""
    fields = _parse(
        _sv("3", "Current.Import", phase="N"),
        _sv("400", "Power.Active.Import", phase="L1-L2", unit="W"),
    )
    assert fields.current_a == (None, None, None)
    assert fields.power_w is None


@pytest.mark.parametrize(
    ("samples", "power_w"),
    [
        ([_sv("11040", "Power.Active.Import", unit="W")], 11040.0),
        ([_sv("11.04", "Power.Active.Import", unit="kW")], 11040.0),
        ([_sv("3680", "Power.Active.Import")], 3680.0),  # default unit W
        (
            [
                _sv("3.68", "Power.Active.Import", unit="kW", phase="L1"),
                _sv("3680", "Power.Active.Import", unit="W", phase="L2"),
            ],
            7360.0,
        ),
        (
            [
                _sv("1000", "Power.Active.Import", phase="L1"),
                _sv("5000", "Power.Active.Import"),
            ],
            5000.0,
        ),
    ],
    ids=["W", "kW", "default-unit", "sum-of-phases", "total-wins"],
)
def test_power_in_watts(samples: list[dict[str, str]], power_w: float) -> None:
    """Power is in W: kW scaled, per-phase values summed when no total is given."""
    assert _parse(*samples).power_w == pytest.approx(power_w)


def test_energy_register_in_wh_and_default_measurand() -> None:
    """kWh becomes Wh; a sample without a measurand is Energy.Active.Import.Register in Wh."""
    assert _parse(_sv("12.5", "Energy.Active.Import.Register", unit="kWh")).energy_wh == 12500.0
    assert _parse(_sv("4321")).energy_wh == 4321.0


def test_offered_current_and_soc() -> None:
    """Current.Offered in A and SoC in percent are read as given."""
    fields = _parse(_sv("16.0", "Current.Offered", unit="A"), _sv("55", "SoC", location="EV"))
    assert fields.offered_a == 16.0
    assert fields.soc_percent == 55.0


def test_latest_sample_set_wins_whatever_the_order() -> None:
    """Of several meterValue entries, the one with the latest timestamp is read."""
    meter_value: list[dict[str, Any]] = [
        {"timestamp": T1, "sampledValue": [_sv("20", "Current.Import", phase="L1")]},
        {"timestamp": T0, "sampledValue": [_sv("10", "Current.Import", phase="L1")]},
    ]
    assert parse_meter_values(meter_value).current_a == (20.0, None, None)


@pytest.mark.parametrize("garbage", ["abc", "", "NaN", "inf", "1,5"])
def test_garbage_value_is_reported_not_raised(garbage: str) -> None:
    """A value that is not a finite number is skipped with a reason; the good ones still count."""
    fields = _parse(
        _sv(garbage, "Power.Active.Import", unit="W"),
        _sv("16", "Current.Import", phase="L1"),
    )
    assert fields.power_w is None
    assert fields.current_a == (16.0, None, None)
    assert len(fields.problems) == 1
    assert "Power.Active.Import" in fields.problems[0]


def test_unknown_unit_is_reported() -> None:
    """A unit that does not belong to the measurand is a problem, not a silent misreading."""
    fields = _parse(_sv("5", "Current.Import", unit="kW", phase="L1"))
    assert fields.current_a == (None, None, None)
    assert "unit" in fields.problems[0]


def test_unused_measurands_are_ignored_quietly() -> None:
    """Voltage, temperature and the like are not read and raise no problem."""
    fields = _parse(_sv("230.1", "Voltage", phase="L1-N", unit="V"), _sv("40", "Temperature"))
    assert fields == MeasurementFields()


def test_empty_or_undated_meter_value_is_a_problem() -> None:
    """No entry, or an entry without a usable timestamp, is reported (the entry is still read)."""
    assert parse_meter_values([]).problems == ("meterValue holds no entry",)
    fields = parse_meter_values([{"timestamp": "yesterday", "sampledValue": [_sv("7")]}])
    assert fields.energy_wh == 7.0
    assert "timestamp" in fields.problems[0]
