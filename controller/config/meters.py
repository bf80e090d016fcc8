"""A site's meters as the site state needs them: each with its node, the chargers it
sees, how long it may stay silent and the largest change it may believably show.

The meters' own settings are in :mod:`controller.meters` (``modbus_settings``,
``mqtt_settings``, ``node_settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.config.tree import chargers_below
from controller.meters.modbus_settings import MeterSettings
from controller.meters.node_settings import (
    MeterSpec,
    NodeMeter,
    OcppNodeMeter,
    legacy_site_meter,
)

if TYPE_CHECKING:
    from controller.config.site import HeadroomConfig


def meter_max_step_a(config: HeadroomConfig, node: str | None = None) -> float:
    """The largest believable change of a phase current between two readings of a
    meter on ``node`` (default: the site): 1.5 × the node's fuse, else the site's."""
    if config.control.meter_max_step_a is not None:
        return config.control.meter_max_step_a
    site = config.site
    fuse_a = site.max_current_a
    if fuse_a is None and site.max_power_w is not None:
        fuse_a = site.max_power_w / site.voltage_v / 3
    group = next((g for g in config.groups if g.id == node), None)
    if group is not None and group.max_current_a is not None:
        fuse_a = group.max_current_a
    elif group is not None and group.max_power_kw is not None:
        fuse_a = group.max_power_kw * 1000 / site.voltage_v / 3
    return 1.5 * (fuse_a or 1000.0)


def node_meters(config: HeadroomConfig) -> list[NodeMeter]:
    """Every meter with its node: the ``meters`` list, or the legacy site meter."""
    if config.meters:
        return list(config.meters)
    return [legacy_site_meter(config.site.id, config.meter, config.mqtt_meter)]


def meter_specs(config: HeadroomConfig) -> dict[str, MeterSpec]:
    """What the site state needs of each meter, by meter id."""
    specs = {}
    for meter in node_meters(config):
        node = meter.node or config.site.id
        stale_s = meter.stale_s or _default_stale_s(config, meter)
        phase_map: tuple[int, ...] = (0, 1, 2)
        if isinstance(meter, OcppNodeMeter):
            charger = config.charger(meter.charger)
            phase_map = charger.site_phases() if charger else phase_map
        seen: frozenset[str] | None = frozenset()
        if meter.includes_chargers:
            seen = frozenset(chargers_below(config, node))
        if not config.meters:  # the legacy site meter: judged exactly as before
            seen, stale_s = None, config.control.meter_stale_s
        specs[meter.id] = MeterSpec(
            meter.id,
            node,
            meter.includes_chargers,
            stale_s,
            meter_max_step_a(config, node),
            seen,
            phase_map,
            config.ocpp.meter_values_interval_s,
        )
    return specs


def _default_stale_s(config: HeadroomConfig, meter: NodeMeter) -> float:
    """No fresh reading for max(3 polls, ``control.meter_stale_s``) is stale."""
    stale_s = config.control.meter_stale_s
    if isinstance(meter, OcppNodeMeter):  # a charger reports every meter_values_interval_s
        return max(stale_s, 3.0 * (config.ocpp.meter_values_interval_s or 10))
    if isinstance(meter, MeterSettings):
        return max(stale_s, 3.0 * meter.poll_interval_s)
    return stale_s
