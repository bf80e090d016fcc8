"""Meters on nodes of the limit tree: the ``meters:`` list of the config.

Each entry is a meter (Modbus TCP, MQTT, or a charger's own OCPP meter)
attached to a node: the site (the grid connection, the default) or a group
from ``groups:`` (a feeder, a building sub-meter). ``includes_chargers``
says whether the chargers below the node are inside what it measures: if so
the node's base load is its reading minus their draw, else the reading itself.

Example::

    meters:
      - {id: grid, source: modbus, host: 192.0.2.10, map: sdm630}
      - {id: feeder-a, source: mqtt, node: feeder-a, host: broker, topic: f/a,
         quantities: {power_total: {field: w, unit: W}}}
      - {id: cluster, source: ocpp, node: cluster, charger: cp-9}

The legacy ``meter:`` / ``mqtt_meter:`` keys are the site's meter, with the
chargers included; :func:`legacy_site_meter` turns them into an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.meters.modbus_settings import MeterSettings
from controller.meters.mqtt_settings import MqttMeterSettings


class _OnNode(BaseModel):
    """Where a meter sits and what it sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: Annotated[str, Field(min_length=1)] | None = None
    """The site id or a group id; none: the site."""
    includes_chargers: bool = True
    stale_s: Annotated[float, Field(ge=0.25, le=3600)] | None = None
    """No fresh good reading for this long makes the node doubtful; default per source."""


class ModbusNodeMeter(MeterSettings, _OnNode):
    """A Modbus TCP meter on a node."""

    source: Literal["modbus"]


class MqttNodeMeter(MqttMeterSettings, _OnNode):
    """An MQTT meter on a node."""

    source: Literal["mqtt"]


class OcppNodeMeter(_OnNode):
    """A charger's own meter, from its OCPP MeterValues (connector 0 is its main meter)."""

    source: Literal["ocpp"]
    id: Annotated[str, Field(min_length=1)]
    charger: Annotated[str, Field(min_length=1)]
    connector: Annotated[int, Field(ge=0, le=8)] = 0


NodeMeter = ModbusNodeMeter | MqttNodeMeter | OcppNodeMeter
NodeMeterSettings = Annotated[NodeMeter, Field(discriminator="source")]


def legacy_site_meter(
    site_id: str, modbus: MeterSettings | None, mqtt: MqttMeterSettings | None
) -> NodeMeter:
    """The ``meter:`` or ``mqtt_meter:`` of an older config as the site node's meter."""
    # Already validated as the legacy model: construct without validating again (a
    # map_file would be read from disk at every call otherwise).
    on_site: dict[str, Any] = {"node": site_id, "includes_chargers": True, "stale_s": None}
    if modbus is not None:
        return ModbusNodeMeter.model_construct(None, source="modbus", **on_site, **dict(modbus))
    assert mqtt is not None
    return MqttNodeMeter.model_construct(None, source="mqtt", **on_site, **dict(mqtt))


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """What the site state needs to know of one meter to judge its readings. Pure data."""

    meter_id: str
    node: str
    includes_chargers: bool
    stale_s: float
    max_step_a: float
    chargers: frozenset[str] | None = None
    """The chargers whose draw it sees (none: every charger of the site)."""
    phase_map: tuple[int, ...] = (0, 1, 2)
    """Site phase of each of the source's L1..L3 (a charger's own meter follows its wiring)."""
    meter_values_interval_s: float = 10.0
    """How often the chargers report their draw (``ocpp.meter_values_interval_s``; 0: their
    own setting): the frozen-meter check waits that long for their reports of a change."""


def check_meters(
    meters: list[NodeMeter], site_id: str, groups: set[str], chargers: set[str]
) -> None:
    """Every meter names a node and charger that exist; one meter per node; the site has one."""
    ids = [m.id for m in meters]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"meters: duplicate id(s) {', '.join(duplicates)} (give each an id)")
    nodes: dict[str, str] = {}
    for i, meter in enumerate(meters):
        node = meter.node or site_id
        if node != site_id and node not in groups:
            raise ValueError(f"meters[{i}].node: {node!r} is neither the site nor a group")
        if node in nodes:
            raise ValueError(
                f"meters[{i}].node: {node!r} already has meter {nodes[node]!r} (one per node)"
            )
        nodes[node] = meter.id
        if isinstance(meter, OcppNodeMeter) and meter.charger not in chargers:
            raise ValueError(f"meters[{i}].charger: no charger {meter.charger!r}")
    if site_id not in nodes:
        raise ValueError(
            f"meters: none on the site node {site_id!r}; the grid connection needs a meter"
        )
