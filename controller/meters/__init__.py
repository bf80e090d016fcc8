"""Site meters: register maps as data, and the readers that turn meters into events.

:func:`load_builtin_map` gives a shipped register map (``sdm630``, ``em24``,
``em340``, ``janitza_umg96rm``, ``schneider_iem3000``, ``sunspec_203``,
``sunspec_213``) and :func:`load_map_file` a user's; :class:`ModbusMeter`
polls a meter with one, :class:`MqttMeter` listens to a meter's MQTT topics.
Both emit :class:`~controller.model.MeterReading` or
:class:`~controller.model.MeterFailed` events.
"""

from __future__ import annotations

from controller.meters.decode import (
    DecodedValues,
    decode,
    plausibility_problems,
    read_plan,
)
from controller.meters.modbus import ModbusMeter, locate_sunspec_map, scan_sunspec
from controller.meters.mqtt import MqttMeter, MqttMeterSettings, MqttValueSettings
from controller.meters.registers import (
    DecodeError,
    RegisterMap,
    RegisterSpec,
    SunSpecLayout,
    UnknownMapError,
    builtin_map_names,
    load_builtin_map,
    load_map_file,
)
from controller.meters.sunspec import SunSpecError, SunSpecScan, locate, relocate

__all__ = [
    "DecodeError",
    "DecodedValues",
    "ModbusMeter",
    "MqttMeter",
    "MqttMeterSettings",
    "MqttValueSettings",
    "RegisterMap",
    "RegisterSpec",
    "SunSpecError",
    "SunSpecLayout",
    "SunSpecScan",
    "UnknownMapError",
    "builtin_map_names",
    "decode",
    "load_builtin_map",
    "load_map_file",
    "locate",
    "locate_sunspec_map",
    "plausibility_problems",
    "read_plan",
    "relocate",
    "scan_sunspec",
]
