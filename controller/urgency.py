"""Which events call for a decision now rather than at the next tick. Pure.

The service wakes the loop on each event :func:`is_urgent` names (an over-limit
reading, a session start or stop, a charger booting or leaving, a limit set by
others, doubtful meter data); :func:`over_limit` is also the metrics' breach test.
"""

from __future__ import annotations

from controller.config import HeadroomConfig
from controller.model import (
    ChargerBooted,
    ChargerDisconnected,
    Event,
    ExternalLimitChanged,
    MeterFailed,
    MeterReading,
    Quality,
    SessionStarted,
    SessionStopped,
)


def is_urgent(event: Event, config: HeadroomConfig) -> bool:
    """True when the event must be decided on now rather than at the next tick."""
    match event:
        case SessionStarted() | SessionStopped() | ChargerBooted() | ChargerDisconnected():
            return True
        case ExternalLimitChanged():
            return True
        case MeterFailed():
            return True
        case MeterReading(quality=quality) if quality is not Quality.GOOD:
            return True
        case MeterReading():
            return over_limit(event, config)
    return False


def over_limit(reading: MeterReading, config: HeadroomConfig, margin: bool = True) -> bool:
    """True when a reading shows the site above its limit (less the margin, by default).

    With the margin it is the trigger of invariant 5; without it, the breach itself.
    """
    site = config.site
    node = next((m.node for m in config.node_meters() if m.id == reading.meter_id), None)
    group = next((g for g in config.groups if g.id == node), None)
    if group is not None:  # a group's meter: the group's own limits
        max_a, margin_a = group.max_current_a, group.safety_margin_a
        max_w = None if group.max_power_kw is None else group.max_power_kw * 1000
    else:
        max_a, margin_a, max_w = site.max_current_a, site.safety_margin_a, site.max_power_w
    margin_a = margin_a if margin else 0.0
    if max_a is not None:
        bound_a = max_a - margin_a
        if any(v is not None and v > bound_a for v in reading.current_a):
            return True
    if max_w is not None and reading.power_w is not None:
        return reading.power_w > max_w - 3 * margin_a * site.voltage_v
    return False
