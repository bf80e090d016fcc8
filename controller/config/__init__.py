"""The site configuration: one YAML file per deployment, validated at load.

Every error names the key path and the reason (``chargers[2].max_current_a:
Input should be a valid number``); :func:`load_config` collects all of them at
once so an operator fixes a file in one pass. The models forbid unknown keys:
a typo is an error, never a silently ignored setting.

One module per part, all of it importable from here:

* :mod:`~controller.config.base`: the strict model every section is, shared checks;
* :mod:`~controller.config.limits`: ``site:`` (the grid connection) and ``groups:``;
* :mod:`~controller.config.chargers`: ``chargers:``;
* :mod:`~controller.config.control`: ``control:`` (the loop, settling, meter trust);
* :mod:`~controller.config.deadline`: ``deadline:`` (the deadline policy's plan);
* :mod:`~controller.config.interfaces`: ``ocpp:``, ``metrics:``, ``telemetry:``, ``api:``;
* :mod:`~controller.config.storage`: ``audit:``, ``store:``;
* :mod:`~controller.config.site`: :class:`HeadroomConfig`, one site, and the checks
  across sections, with :mod:`~controller.config.tree` (groups, fail-safe sums) and
  :mod:`~controller.config.meters` (what the state needs of each meter);
* :mod:`~controller.config.loading`: YAML files in, errors out as ``key.path: reason``.

The meters' own settings live in :mod:`controller.meters` (``meter:``,
``mqtt_meter:``, ``meters:``).
"""

from __future__ import annotations

from controller.config.base import IEC_61851_MIN_CURRENT_A
from controller.config.chargers import ChargerSettings
from controller.config.control import ControlSettings
from controller.config.deadline import HOURS_PER_DAY, DeadlineSettings, PriceWindow
from controller.config.interfaces import (
    ApiSettings,
    ApiToken,
    MetricsSettings,
    OcppSettings,
    TelemetrySettings,
)
from controller.config.limits import GroupSettings, SiteLimits
from controller.config.loading import (
    format_errors,
    load_config,
    load_sites,
    parse_config,
    parse_sites,
)
from controller.config.site import HeadroomConfig
from controller.config.storage import AuditSettings, StoreSettings
from controller.meters.modbus_settings import MeterSettings
from controller.meters.mqtt_settings import MqttMeterSettings

__all__ = [
    "HOURS_PER_DAY",
    "IEC_61851_MIN_CURRENT_A",
    "ApiSettings",
    "ApiToken",
    "AuditSettings",
    "ChargerSettings",
    "ControlSettings",
    "DeadlineSettings",
    "GroupSettings",
    "HeadroomConfig",
    "MeterSettings",
    "MetricsSettings",
    "MqttMeterSettings",
    "OcppSettings",
    "PriceWindow",
    "SiteLimits",
    "StoreSettings",
    "TelemetrySettings",
    "format_errors",
    "load_config",
    "load_sites",
    "parse_config",
    "parse_sites",
]
