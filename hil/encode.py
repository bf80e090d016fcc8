"""Values to registers, the way a meter following a register map sends them.

The inverse of :mod:`controller.meters.decode`, for the simulators: A and W
in, 16-bit words out, with the map's type, word order, scale, unit and sign,
and SunSpec scale factors chosen as a real device would (the finest power of
ten that keeps every value sharing the factor inside its integer type).
"""

from __future__ import annotations

import math
import struct

from controller.meters.registers import (
    STRUCT_FORMATS,
    UNIT_TO_SI,
    DataType,
    Quantity,
    RegisterMap,
    RegisterSpec,
)

# The largest magnitude each integer type carries without touching SunSpec's
# "not implemented" values (int16 −32768, uint16 0xFFFF and their 32-bit kin).
_INT_LIMITS: dict[str, int] = {
    "int16": 32767,
    "uint16": 65534,
    "int32": 2**31 - 1,
    "uint32": 2**32 - 2,
}
# SunSpec devices use scale factors of about −3..+3; the simulator picks the
# finest from 0.001 up that fits, so tests see realistic rounding.
_FINEST_EXPONENT = -3
_COARSEST_EXPONENT = 10


def _raw(spec: RegisterSpec, value_si: float, exponent: int) -> float:
    """The number in the registers for ``value_si`` before integer rounding."""
    return value_si / (spec.scale * spec.sign * UNIT_TO_SI[spec.unit] * 10.0**exponent)


def not_available(data_type: DataType, missing_value: int | None) -> int:
    """What an integer meter sends for a value it does not have."""
    if missing_value is not None:
        return missing_value
    bits = 16 * STRUCT_FORMATS[data_type][1]
    if data_type.startswith("u"):
        return int(2**bits - 1)  # 0xFFFF / 0xFFFFFFFF
    return int(-(2 ** (bits - 1)))  # −32768 / −2147483648


def encode_value(spec: RegisterSpec, value_si: float, exponent: int = 0) -> list[int]:
    """The registers a meter following ``spec`` sends for ``value_si`` (A or W).

    ``exponent`` is the SunSpec scale factor in force (0 without one). NaN
    and infinity go out as float32 NaN/infinity, or as the integer type's
    "not available" value.
    """
    fmt, _words = STRUCT_FORMATS[spec.type]
    raw = _raw(spec, value_si, exponent)
    if spec.type == "float32":
        packed = struct.pack(">f", raw)
    else:
        number = round(raw) if math.isfinite(raw) else not_available(spec.type, spec.missing_value)
        try:
            packed = struct.pack(">" + fmt, number)
        except struct.error as exc:
            raise ValueError(
                f"{value_si} does not fit {spec.type} at address {spec.address}"
            ) from exc
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return words if spec.word_order == "big" else words[::-1]


def scale_exponents(register_map: RegisterMap, values: dict[Quantity, float]) -> dict[int, int]:
    """The scale factor to send at each scale-factor address of the map (map addresses).

    Values that share a factor (a SunSpec model's phase currents) get one
    that fits the largest of them; NaN values are left out (they are sent as
    "not available" whatever the factor).
    """
    sharing: dict[int, list[tuple[RegisterSpec, float]]] = {}
    for quantity, spec in register_map.quantities.items():
        if spec.scale_factor_address is not None:
            sharing.setdefault(spec.scale_factor_address, []).append((spec, values[quantity]))
    return {address: _fitting_exponent(specs) for address, specs in sharing.items()}


def _fitting_exponent(specs: list[tuple[RegisterSpec, float]]) -> int:
    for exponent in range(_FINEST_EXPONENT, _COARSEST_EXPONENT + 1):
        if all(
            abs(_raw(spec, value, exponent)) <= _INT_LIMITS.get(spec.type, math.inf)
            for spec, value in specs
            if math.isfinite(value)
        ):
            return exponent
    raise ValueError(f"no scale factor up to 10^{_COARSEST_EXPONENT} fits {specs}")
