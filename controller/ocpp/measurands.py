"""OCPP 1.6 and 2.0.1 ``MeterValues`` entries converted to A, W, Wh and percent (pure).

This module owns the reading rules: which sample set counts (the latest by
timestamp), the defaults the spec gives when a field is absent (measurand
``Energy.Active.Import.Register``, its unit per measurand), unit scaling
(kW → W, kWh → Wh), and per-phase versus total values. A value that is not a
finite number is skipped and the reason collected, never raised: one bad
sample must not hide the good ones.

OCPP 2.0.1 writes the unit as ``unitOfMeasure`` (``unit`` and a power-of-ten
``multiplier``, default 0) and the value as a JSON number; 1.6 writes ``unit``
and a string. Both are read; a 2.0.1 ``signedMeterValue`` beside a plain
value does not stop the plain value from being read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from controller.model import ChargerMeasurement, PhaseValues

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
OFFERED = "Current.Offered"
SOC = "SoC"

# Per measurand we read: its default unit (OCPP 1.6 §7.31) and each accepted unit's scale.
_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    ENERGY: ("Wh", {"Wh": 1.0, "kWh": 1000.0}),
    POWER: ("W", {"W": 1.0, "kW": 1000.0}),
    CURRENT: ("A", {"A": 1.0}),
    OFFERED: ("A", {"A": 1.0}),
    SOC: ("Percent", {"Percent": 1.0}),
}

# "L1" and "L1-N" both name the current or power of line 1; "L1-L2" is a voltage.
_PHASES = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}


@dataclass(frozen=True, slots=True)
class MeasurementFields:
    """What one MeterValues message says, in A, W, Wh and percent; ``None`` = not reported."""

    current_a: PhaseValues = (None, None, None)
    power_w: float | None = None
    offered_a: float | None = None
    energy_wh: float | None = None
    soc_percent: float | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sample:
    """One usable sampled value, already scaled to the base unit."""

    measurand: str
    phase: int | None  # 0..2 for L1..L3; None for a total (or a phase we do not use)
    value: float


def parse_meter_values(meter_value: list[dict[str, Any]]) -> MeasurementFields:
    """Read the latest sample set of a ``meterValue`` list (camelCase, as on the wire).

    Per-phase ``Current.Import`` fills ``current_a``; power and energy take
    the phase-less value, else the sum of the per-phase ones; ``Current.Offered``
    takes the phase-less value, else the highest phase. Problems (bad numbers,
    unknown units, bad timestamps) are listed in ``problems``.
    """
    problems: list[str] = []
    entry = _latest_entry(meter_value, problems)
    if entry is None:
        return MeasurementFields(problems=tuple(problems))
    samples = [
        sample
        for raw in entry.get("sampledValue", [])
        if (sample := _sample(raw, problems)) is not None
    ]
    return MeasurementFields(
        current_a=_per_phase(samples, CURRENT),
        power_w=_combined(samples, POWER, sum),
        offered_a=_combined(samples, OFFERED, max),
        energy_wh=_combined(samples, ENERGY, sum),
        soc_percent=_combined(samples, SOC, max),
        problems=tuple(problems),
    )


def _latest_entry(entries: list[dict[str, Any]], problems: list[str]) -> dict[str, Any] | None:
    """The entry with the latest timestamp; the later one in the list on a tie."""
    best: dict[str, Any] | None = None
    best_at: datetime | None = None
    for entry in entries:
        at = _timestamp(entry.get("timestamp"), problems)
        if best is None or (at is not None and (best_at is None or at >= best_at)):
            best, best_at = entry, at
    if best is None:
        problems.append("meterValue holds no entry")
    return best


def _timestamp(raw: object, problems: list[str]) -> datetime | None:
    """An aware timestamp, or ``None`` (with a problem) when it does not parse."""
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError:
        problems.append(f"timestamp {raw!r} is not ISO 8601")
        return None
    if at.tzinfo is None:
        problems.append(f"timestamp {raw!r} has no time zone")
        return None
    return at


def _sample(raw: dict[str, Any], problems: list[str]) -> _Sample | None:
    """One sampled value in base units, or ``None`` when unused or unusable."""
    measurand = raw.get("measurand", ENERGY)
    if measurand not in _UNITS:
        return None  # voltage, frequency, temperature...: not used by the controller
    default_unit, scales = _UNITS[measurand]
    unit_of_measure = raw.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):  # OCPP 2.0.1
        unit = unit_of_measure.get("unit", default_unit)
        multiplier = unit_of_measure.get("multiplier", 0)
    else:
        unit, multiplier = raw.get("unit", default_unit), 0
    if unit not in scales:
        problems.append(f"{measurand}: unit {unit!r} not understood")
        return None
    if isinstance(multiplier, bool) or not isinstance(multiplier, int):
        problems.append(f"{measurand}: multiplier {multiplier!r} is not an integer")
        return None
    if raw.get("format") == "SignedData":
        problems.append(f"{measurand}: signed data is not read")
        return None
    value = _number(raw.get("value"))
    if value is None:
        problems.append(f"{measurand}: value {raw.get('value')!r} is not a number")
        return None
    phase = raw.get("phase")
    if phase is not None and phase not in _PHASES:
        return None  # neutral or line-to-line: not a line's import
    scale = scales[unit] * 10.0**multiplier
    return _Sample(measurand, None if phase is None else _PHASES[phase], value * scale)


def _number(raw: object) -> float | None:
    """A finite float from a spec string (or a number a lenient charger sent)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _per_phase(samples: Iterable[_Sample], measurand: str) -> PhaseValues:
    """The last value reported for each of L1, L2, L3."""
    values: list[float | None] = [None, None, None]
    for sample in samples:
        if sample.measurand == measurand and sample.phase is not None:
            values[sample.phase] = sample.value
    return (values[0], values[1], values[2])


def _combined(
    samples: list[_Sample], measurand: str, combine: Callable[[Iterable[float]], float]
) -> float | None:
    """The phase-less value if any (the last one), else the per-phase values combined."""
    totals = [s.value for s in samples if s.measurand == measurand and s.phase is None]
    if totals:
        return totals[-1]
    phases = [v for v in _per_phase(samples, measurand) if v is not None]
    return combine(phases) if phases else None


def measurement(
    charger_id: str,
    connector_id: int,
    at: float,
    fields: MeasurementFields,
    transaction_id: int | None,
) -> ChargerMeasurement:
    """The event for one connector's parsed meter values (both OCPP versions)."""
    return ChargerMeasurement(
        charger_id,
        connector_id,
        at,
        current_a=fields.current_a,
        power_w=fields.power_w,
        offered_a=fields.offered_a,
        energy_wh=fields.energy_wh,
        soc_percent=fields.soc_percent,
        transaction_id=transaction_id,
    )
