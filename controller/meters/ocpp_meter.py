"""A charger's own meter as a node meter: its OCPP MeterValues as meter readings. Pure.

A charger reports its main meter on connector 0 (OCPP 1.6); a charger that
heads a cluster, or sits at the head of a feeder, measures that group's load
with it. :func:`as_meter_reading` turns one :class:`ChargerMeasurement` of the
configured charger and connector into a :class:`MeterReading` in site phases.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.meters.node_settings import OcppNodeMeter
from controller.model import ChargerMeasurement, MeterReading, PhaseValues, Quality


def to_site_phases(current_a: PhaseValues, phase_map: Sequence[int]) -> PhaseValues:
    """A charger's per-phase values (its L1..L3) on the site phases it is wired to.

    A site phase the charger is not wired to reads 0 A on its meter.
    """
    site: list[float | None] = [0.0, 0.0, 0.0]
    for charger_phase, site_phase in enumerate(phase_map):
        site[site_phase] = current_a[charger_phase]
    return (site[0], site[1], site[2])


def as_meter_reading(
    measurement: ChargerMeasurement,
    meter: OcppNodeMeter,
    phase_map: Sequence[int],
    wall_s: float | None = None,
) -> MeterReading | None:
    """The reading this measurement gives ``meter``, or None if it is not that meter's.

    ``wall_s`` (UNIX time at arrival) becomes the reading's ``source_at``.
    """
    if (measurement.charger_id, measurement.connector_id) != (meter.charger, meter.connector):
        return None
    current = to_site_phases(measurement.current_a, phase_map)
    has_current = any(v is not None for v in measurement.current_a)
    if not has_current and measurement.power_w is None:
        return MeterReading(
            meter.id,
            measurement.at,
            current,
            None,
            Quality.INVALID,
            f"{meter.charger} connector {meter.connector}: MeterValues without "
            "Current.Import or Power.Active.Import",
            wall_s,
        )
    if not has_current:
        current = (None, None, None)  # power only: spread over the phases by the decision
    return MeterReading(
        meter.id, measurement.at, current, measurement.power_w, Quality.GOOD, "", wall_s
    )
