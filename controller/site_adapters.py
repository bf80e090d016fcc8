"""The I/O adapters of one site, built from its config: the OCPP server and the meters.

:class:`~controller.service.SiteController` wires them to its sink; the HIL rig
reads a real meter with :func:`meter_adapter` too.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.clock import Clock
from controller.config import HeadroomConfig
from controller.meters import ModbusMeter
from controller.meters.mqtt import MqttMeter
from controller.meters.node_settings import MqttNodeMeter, NodeMeter, OcppNodeMeter
from controller.meters.ocpp_meter import as_meter_reading
from controller.model import ChargerMeasurement, Event, MeterReading
from controller.ocpp import OcppServer
from controller.ocpp.server import tls_context

TRANSACTION_ID_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z


def first_transaction_id(clock: Clock) -> int:
    """Where transaction ids start: seconds since 2026, so they keep rising across restarts.

    A restarted controller must not hand out an id a charger may still hold for a
    running transaction; unless a site averages more than one new transaction per
    second, ids from this seed never repeat (and fit OCPP's 32-bit integer until 2094).
    """
    return max(int(clock.now().timestamp()) - TRANSACTION_ID_EPOCH_S, 1)


def meter_adapter(
    m: NodeMeter, sink: Callable[[Event], None], clock: Clock
) -> ModbusMeter | MqttMeter | None:
    """The reader of one configured meter (the HIL rig reads a real meter with it too);
    None for a charger's own meter (fed by OCPP)."""
    if isinstance(m, MqttNodeMeter):
        return MqttMeter(m, sink, clock)
    if isinstance(m, OcppNodeMeter):
        return None
    return ModbusMeter(
        meter_id=m.id,
        host=m.host,
        port=m.port,
        unit_id=m.unit_id,
        register_map=m.register_map(),
        sink=sink,
        clock=clock,
        poll_interval_s=m.poll_interval_s,
        timeout_s=m.timeout_s,
    )


def ocpp_server(config: HeadroomConfig, sink: Callable[[Event], None], clock: Clock) -> OcppServer:
    """The site's OCPP server: admits configured chargers (or any, if the config says so)."""
    known = {c.id for c in config.chargers}
    hashes = {c.id: c.password_hash for c in config.chargers if c.password_hash}
    tls = config.ocpp
    return OcppServer(
        sink=sink,
        clock=clock,
        admit=lambda cid: cid in known or config.ocpp.admit_unknown,
        host=config.ocpp.host,
        port=config.ocpp.port,
        call_timeout_s=config.ocpp.call_timeout_s,
        first_transaction_id=first_transaction_id(clock),
        credentials=hashes.get if hashes else None,
        voltage_v=config.site.voltage_v,
        meter_values_interval_s=config.ocpp.meter_values_interval_s,
        ssl=tls_context(tls.tls_cert_file, tls.tls_key_file) if tls.tls_cert_file else None,
    )


def charger_meters(config: HeadroomConfig) -> list[OcppNodeMeter]:
    """The meters fed by a charger's own MeterValues (none on most sites)."""
    return [m for m in config.node_meters() if isinstance(m, OcppNodeMeter)]


def charger_meter_readings(
    event: ChargerMeasurement, meters: list[OcppNodeMeter], config: HeadroomConfig, clock: Clock
) -> list[MeterReading]:
    """The readings a charger's MeterValues give the meters that stand on them."""
    if not meters:  # the common case, on every MeterValues: nothing to do
        return []
    specs = config.meter_specs()
    return [
        reading
        for m in meters
        if (reading := as_meter_reading(event, m, specs[m.id].phase_map, clock.now().timestamp()))
        is not None
    ]
