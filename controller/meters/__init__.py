"""Site meters: register maps as data, and the Modbus TCP reader that turns them into events.

:func:`load_builtin_map` gives a shipped map (``sdm630``); :class:`ModbusMeter`
polls a meter with it and emits :class:`~controller.model.MeterReading` or
:class:`~controller.model.MeterFailed` events.
"""

from __future__ import annotations

from controller.meters.modbus import ModbusMeter
from controller.meters.registers import (
    DecodedValues,
    DecodeError,
    RegisterMap,
    RegisterSpec,
    UnknownMapError,
    builtin_map_names,
    decode,
    load_builtin_map,
    load_map_file,
    plausibility_problems,
    read_plan,
)

__all__ = [
    "DecodeError",
    "DecodedValues",
    "ModbusMeter",
    "RegisterMap",
    "RegisterSpec",
    "UnknownMapError",
    "builtin_map_names",
    "decode",
    "load_builtin_map",
    "load_map_file",
    "plausibility_problems",
    "read_plan",
]
