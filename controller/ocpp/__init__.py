"""OCPP adapters: the central system chargers connect to, and the wire rules it follows.

- :mod:`controller.ocpp.server` — :class:`OcppServer`, the websockets server at
  ``/ocpp/{charge_point_id}`` that admits chargers (ids, Basic auth, TLS) and
  keeps one live link each; its handshake (ids, versions, Basic auth, TLS) in
  :mod:`controller.ocpp.handshake`.
- :mod:`controller.ocpp.v16` — :class:`ChargePointConnection`, one OCPP 1.6J
  connection: wire messages to domain events, and the :class:`ChargerLink` port.
- :mod:`controller.ocpp.v201` — :class:`ChargingStationConnection`, the same for
  OCPP 2.0.1; its handlers in :mod:`controller.ocpp.handlers201`, its payloads
  (pure) in :mod:`controller.ocpp.wire201`, its transaction ids in
  :mod:`controller.ocpp.transactions`.
- :mod:`controller.ocpp.router` — the receive path that survives bad input.
- :mod:`controller.ocpp.rpc` — pure: OCPP-J frames judged, and the CALLERROR for each fault.
- :mod:`controller.ocpp.auth` — pure: charger passwords hashed and verified.
- :mod:`controller.ocpp.profiles` — pure: ``SetChargingProfile`` payloads.
- :mod:`controller.ocpp.measurands` — pure: ``MeterValues`` to A, W and Wh.
"""

from controller.ocpp.auth import check_password_hash, hash_password, verify_password
from controller.ocpp.measurands import MeasurementFields, parse_meter_values
from controller.ocpp.profiles import floor_limit, set_charging_profile_payload
from controller.ocpp.server import OcppServer, tls_context
from controller.ocpp.v16 import ChargePointConnection
from controller.ocpp.v201 import ChargingStationConnection

__all__ = [
    "ChargePointConnection",
    "ChargingStationConnection",
    "MeasurementFields",
    "OcppServer",
    "check_password_hash",
    "floor_limit",
    "hash_password",
    "parse_meter_values",
    "set_charging_profile_payload",
    "tls_context",
    "verify_password",
]
