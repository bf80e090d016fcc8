"""One site's whole configuration: its sections, and the checks that span them."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from controller.config import meters, tree
from controller.config.base import Strict
from controller.config.chargers import ChargerSettings
from controller.config.control import ControlSettings
from controller.config.deadline import DeadlineSettings
from controller.config.interfaces import (
    ApiSettings,
    MetricsSettings,
    OcppSettings,
    TelemetrySettings,
)
from controller.config.limits import GroupSettings, SiteLimits
from controller.config.storage import AuditSettings, StoreSettings
from controller.meters.modbus_settings import MeterSettings
from controller.meters.mqtt_settings import MqttMeterSettings
from controller.meters.node_settings import MeterSpec, NodeMeter, NodeMeterSettings, check_meters

_CHARGER_INDEX = "charger_index"
"""Where :meth:`HeadroomConfig.charger` keeps its index in the instance dict (no field)."""


class HeadroomConfig(Strict):
    """One site: its limits, meter, chargers and the control settings."""

    site: SiteLimits
    control: ControlSettings = Field(default_factory=ControlSettings)
    ocpp: OcppSettings = Field(default_factory=OcppSettings)
    meter: MeterSettings | None = None
    mqtt_meter: MqttMeterSettings | None = None
    meters: list[NodeMeterSettings] = Field(default_factory=list)
    metrics: MetricsSettings | None = None
    audit: AuditSettings | None = None
    store: StoreSettings | None = None
    telemetry: TelemetrySettings | None = None
    api: ApiSettings | None = None
    deadline: DeadlineSettings = Field(default_factory=DeadlineSettings)
    groups: list[GroupSettings] = Field(default_factory=list)
    chargers: Annotated[list[ChargerSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self) -> Self:
        legacy = [k for k in ("meter", "mqtt_meter") if getattr(self, k) is not None]
        if legacy and self.meters:
            raise ValueError(
                f"{legacy[0]} and meters are two ways to set the site meter: put it in meters "
                f"(with node: {self.site.id}) and drop {legacy[0]}"
            )
        if not self.meters and len(legacy) != 1:
            raise ValueError(
                "the grid meter: set exactly one of meter (Modbus TCP) and mqtt_meter (MQTT), "
                "or list the meters under meters"
            )
        ids = [c.id for c in self.chargers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"chargers: duplicate id(s) {', '.join(duplicates)}")
        if self.site.id in ids:
            raise ValueError(f"chargers: id {self.site.id!r} is the site's id; use another")
        tree.check_groups(self, set(ids))
        if self.meters:
            check_meters(self.meters, self.site.id, {g.id for g in self.groups}, set(ids))
        tree.check_failsafe_fits(self)
        return self

    def group_order(self) -> list[GroupSettings]:
        """Groups with every parent before its children."""
        return tree.group_order(self.groups)

    def chargers_below(self, node: str) -> list[str]:
        """The chargers under ``node`` (the site: all of them)."""
        return tree.chargers_below(self, node)

    def meter_max_step_a(self, node: str | None = None) -> float:
        """The largest believable change of a phase current between two readings of a
        meter on ``node`` (default: the site): 1.5 × the node's fuse, else the site's."""
        return meters.meter_max_step_a(self, node)

    def node_meters(self) -> list[NodeMeter]:
        """Every meter with its node: the ``meters`` list, or the legacy site meter."""
        return meters.node_meters(self)

    def meter_specs(self) -> dict[str, MeterSpec]:
        """What the site state needs of each meter, by meter id."""
        return meters.meter_specs(self)

    def charger(self, charger_id: str) -> ChargerSettings | None:
        """The settings of a configured charger (a dict lookup: the loop asks per session)."""
        # The index is kept in the instance dict, under a name that is no field: a plain
        # dict read (the loop asks per session), and outside pydantic's equality, which
        # compares fields and private attributes. As a private attribute it made a config
        # that had been asked unequal to a fresh build of the same settings, and the
        # operator's recheck replaced the site's config every 15 s (docs/benchmarks.md).
        index = self.__dict__.get(_CHARGER_INDEX)
        if index is None or index[0] is not self.chargers:  # model_copy may swap the list
            index = (self.chargers, {c.id: c for c in self.chargers})
            self.__dict__[_CHARGER_INDEX] = index
        return index[1].get(charger_id)
