"""Pure reading of a register map: which registers to ask for, and what they say.

:func:`read_plan` turns a :class:`~controller.meters.registers.RegisterMap`
into the fewest Modbus reads; :func:`decode` turns the registers read into A
and W; :func:`plausibility_problems` says why values cannot be used. Nothing
here opens a socket.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from controller.meters.registers import (
    PHASE_QUANTITIES,
    STRUCT_FORMATS,
    SUNSPEC_SF_MISSING,
    UNIT_TO_SI,
    DecodeError,
    Quantity,
    RegisterMap,
    RegisterSpec,
    value_span,
)
from controller.model import PhaseValues


@dataclass(frozen=True, slots=True)
class DecodedValues:
    """One read's values in SI units; ``None`` where the map defines no such quantity."""

    current_a: PhaseValues
    power_w: float | None


# --- planning reads ---------------------------------------------------------


def _spans(register_map: RegisterMap) -> list[tuple[int, int]]:
    """(first, end) 0-based register spans of every value with its scale factor."""
    return sorted(value_span(register_map, spec) for spec in register_map.quantities.values())


def read_plan(register_map: RegisterMap) -> list[tuple[int, int]]:
    """The fewest (start, count) reads covering every quantity, 0-based.

    Spans are merged greedily in address order while the registers skipped
    between them stay within ``max_gap_registers`` and the read within
    ``max_block_registers``; for sorted spans this greedy choice is optimal.
    """
    blocks: list[tuple[int, int]] = []  # (start, end) while merging
    for start, end in _spans(register_map):
        if blocks:
            block_start, block_end = blocks[-1]
            merged_end = max(end, block_end)
            gap = start - block_end
            if (
                gap <= register_map.max_gap_registers
                and merged_end - block_start <= register_map.max_block_registers
            ):
                blocks[-1] = (block_start, merged_end)
                continue
        blocks.append((start, end))
    return [(start, end - start) for start, end in blocks]


# --- decoding ---------------------------------------------------------------


def _registers(blocks: dict[int, list[int]], start: int, count: int, what: str) -> list[int]:
    """The ``count`` registers from ``start`` out of whichever block holds them."""
    for block_start, registers in blocks.items():
        if block_start <= start and start + count <= block_start + len(registers):
            return registers[start - block_start : start + count - block_start]
    raise DecodeError(f"{what}: registers {start}..{start + count - 1} are not in any block read")


def _words_to_bytes(words: list[int], what: str) -> bytes:
    try:
        return struct.pack(f">{len(words)}H", *words)
    except struct.error as exc:
        raise DecodeError(f"{what}: register values {words} are not 16-bit") from exc


def _raw_value(spec: RegisterSpec, words: list[int], what: str) -> float:
    """The number the registers hold, before scale and unit; NaN for ``missing_value``."""
    ordered = words if spec.word_order == "big" else words[::-1]
    (value,) = struct.unpack(">" + STRUCT_FORMATS[spec.type][0], _words_to_bytes(ordered, what))
    if spec.missing_value is not None and value == spec.missing_value:
        return math.nan
    return float(value)


def _scale_exponent(
    register_map: RegisterMap, spec: RegisterSpec, blocks: dict[int, list[int]], what: str
) -> float:
    """The SunSpec power of ten for ``spec`` (0 without one); NaN when not implemented."""
    if spec.scale_factor_address is None:
        return 0.0
    address = register_map.wire_address(spec.scale_factor_address)
    words = _registers(blocks, address, 1, f"{what} scale factor")
    (exponent,) = struct.unpack(">h", _words_to_bytes(words, what))
    return math.nan if exponent == SUNSPEC_SF_MISSING else float(exponent)


def decode_quantity(
    register_map: RegisterMap, quantity: Quantity, blocks: dict[int, list[int]]
) -> float:
    """One quantity in A or W from the blocks read (start address → registers)."""
    spec = register_map.quantities[quantity]
    start = register_map.wire_address(spec.address)
    raw = _raw_value(spec, _registers(blocks, start, spec.words, quantity), quantity)
    exponent = _scale_exponent(register_map, spec, blocks, quantity)
    return raw * spec.scale * spec.sign * UNIT_TO_SI[spec.unit] * math.pow(10.0, exponent)


def decode(register_map: RegisterMap, blocks: dict[int, list[int]]) -> DecodedValues:
    """All quantities of ``register_map`` from the blocks read (start address → registers)."""
    values = {q: decode_quantity(register_map, q, blocks) for q in register_map.quantities}
    phases = tuple(values.get(q) for q in PHASE_QUANTITIES)
    return DecodedValues(
        current_a=(phases[0], phases[1], phases[2]), power_w=values.get("power_total")
    )


# --- judging ----------------------------------------------------------------


def plausibility_problems(
    values: DecodedValues, max_current_a: float, max_power_w: float
) -> list[str]:
    """Why ``values`` cannot be used (NaN, infinity, beyond physical bounds); empty if usable."""
    checks: list[tuple[str, float | None, float, str]] = [
        (name, value, max_current_a, "A")
        for name, value in zip(PHASE_QUANTITIES, values.current_a, strict=True)
    ]
    checks.append(("power_total", values.power_w, max_power_w, "W"))
    problems = []
    for name, value, bound, unit in checks:
        if value is None:
            continue
        if not math.isfinite(value):
            problems.append(f"{name} is {value} (not a finite number)")
        elif abs(value) > bound:
            problems.append(f"{name} = {value:g} {unit} is beyond ±{bound:g} {unit}")
    return problems
