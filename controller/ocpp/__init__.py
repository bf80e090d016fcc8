"""OCPP adapters: the central system chargers connect to, and the wire rules it follows.

- :mod:`controller.ocpp.server` — :class:`OcppServer`, the websockets server at
  ``/ocpp/{charge_point_id}`` that admits chargers and keeps one live link each.
- :mod:`controller.ocpp.v16` — :class:`ChargePointConnection`, one OCPP 1.6J
  connection: wire messages to domain events, and the :class:`ChargerLink` port.
- :mod:`controller.ocpp.profiles` — pure: ``SetChargingProfile`` payloads.
- :mod:`controller.ocpp.measurands` — pure: ``MeterValues`` to A, W and Wh.
"""

from controller.ocpp.measurands import MeasurementFields, parse_meter_values
from controller.ocpp.profiles import floor_limit, set_charging_profile_payload
from controller.ocpp.server import OcppServer
from controller.ocpp.v16 import ChargePointConnection

__all__ = [
    "ChargePointConnection",
    "MeasurementFields",
    "OcppServer",
    "floor_limit",
    "parse_meter_values",
    "set_charging_profile_payload",
]
