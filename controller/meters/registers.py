"""Meter register maps as data, and the pure code that plans reads and decodes them.

A register map (one YAML file per meter model, built-in ones under ``maps/``)
says where a meter keeps each quantity and how it is encoded. Nothing here
opens a socket; :mod:`controller.meters.modbus` does the reading.

Map keys:

``name``, ``description``
    How config files and logs refer to the map.
``function``
    ``input`` (function code 4) or ``holding`` (function code 3) registers.
``address_base``
    0 when the vendor's table counts registers from 0, 1 when it counts from 1
    (a 30001/40001-style table with the leading digit dropped). Addresses in
    the map are written as in the vendor's table; reads use 0-based addresses.
``max_gap_registers``
    How many registers no quantity uses that one read may span to cover two
    quantities. 0 for meters that refuse reads over undefined addresses.
``max_block_registers``
    The longest read; 125 is the Modbus limit for one request.
``quantities``
    ``current_l1``, ``current_l2``, ``current_l3`` (per phase) and
    ``power_total`` (import positive); a meter may define only some of them.

Quantity keys:

``address``; ``type`` (float32, int16, uint16, int32, uint32); ``word_order``
of 32-bit values (``big`` = high word first, ``little`` = low word first);
``scale``, the multiplier from the raw number to ``unit`` (0.1 for "W × 10");
``unit`` (A or mA for currents, W or kW for power), converted to A and W on
decode; optional ``scale_factor_address`` (SunSpec: an int16 power of ten that
multiplies the value) and ``missing_value`` (a raw integer the meter sends
for "not available", e.g. SunSpec's −32768, decoded as NaN).

A value the meter sends as NaN or infinity stays so: the caller rejects it.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.model import PhaseValues

Quantity = Literal["current_l1", "current_l2", "current_l3", "power_total"]
DataType = Literal["float32", "int16", "uint16", "int32", "uint32"]
Unit = Literal["A", "mA", "W", "kW"]

PHASE_QUANTITIES: tuple[Quantity, Quantity, Quantity] = ("current_l1", "current_l2", "current_l3")
MODBUS_MAX_READ_REGISTERS = 125  # the Modbus spec caps one read request at 0x7D registers

STRUCT_FORMATS: dict[str, tuple[str, int]] = {
    # data type: (struct format of the big-endian value, registers it spans)
    "float32": ("f", 2),
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
}
UNIT_TO_SI: dict[str, float] = {"A": 1.0, "mA": 0.001, "W": 1.0, "kW": 1000.0}
_UNITS_OF = {"current": {"A", "mA"}, "power": {"W", "kW"}}
_SUNSPEC_SF_MISSING = -32768  # SunSpec's "not implemented" for an int16 scale factor

_MAPS_PACKAGE = "controller.meters"
_MAPS_FOLDER = "maps"


class DecodeError(ValueError):
    """Registers read cannot be turned into values (missing, out of range)."""


class UnknownMapError(ValueError):
    """No built-in register map has that name."""


class RegisterSpec(BaseModel):
    """Where and how one quantity is encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: int = Field(ge=0, le=65535)
    type: DataType = "float32"
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    unit: Unit
    scale_factor_address: int | None = Field(default=None, ge=0, le=65535)
    missing_value: int | None = None

    @property
    def words(self) -> int:
        """How many 16-bit registers the value spans."""
        return STRUCT_FORMATS[self.type][1]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite non-zero number, not {self.scale}")
        if self.type == "float32" and self.missing_value is not None:
            raise ValueError("missing_value is for integer types; a float32 meter sends NaN")
        return self


class RegisterMap(BaseModel):
    """One meter model's register layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    function: Literal["input", "holding"]
    address_base: Literal[0, 1] = 0
    max_gap_registers: int = Field(default=16, ge=0)
    max_block_registers: int = Field(default=MODBUS_MAX_READ_REGISTERS, ge=2, le=125)
    quantities: dict[Quantity, RegisterSpec] = Field(min_length=1)

    @property
    def function_code(self) -> int:
        """The Modbus function code that reads this map's registers."""
        return 4 if self.function == "input" else 3

    def wire_address(self, address: int) -> int:
        """The 0-based address sent in a request for an address as the map writes it."""
        return address - self.address_base

    @model_validator(mode="after")
    def _check(self) -> Self:
        for quantity, spec in self.quantities.items():
            kind = "power" if quantity == "power_total" else "current"
            if spec.unit not in _UNITS_OF[kind]:
                raise ValueError(f"{quantity}: unit {spec.unit} is not a unit of {kind}")
            for address in (spec.address, spec.scale_factor_address):
                if address is not None and address < self.address_base:
                    raise ValueError(f"{quantity}: address {address} is below address_base")
        return self


@dataclass(frozen=True, slots=True)
class DecodedValues:
    """One read's values in SI units; ``None`` where the map defines no such quantity."""

    current_a: PhaseValues
    power_w: float | None


# --- loading maps -----------------------------------------------------------


def builtin_map_names() -> list[str]:
    """Names of the register maps shipped in ``controller/meters/maps/``."""
    folder = resources.files(_MAPS_PACKAGE).joinpath(_MAPS_FOLDER)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


@functools.cache
def load_builtin_map(name: str) -> RegisterMap:
    """The built-in register map called ``name`` (e.g. ``sdm630``), validated."""
    known = builtin_map_names()
    if name not in known:
        raise UnknownMapError(
            f"unknown meter register map {name!r}; known maps: {', '.join(known)}"
        )
    text = resources.files(_MAPS_PACKAGE).joinpath(_MAPS_FOLDER, f"{name}.yaml").read_text("utf-8")
    return RegisterMap.model_validate(yaml.safe_load(text))


def load_map_file(path: Path) -> RegisterMap:
    """A user's register map from a YAML file, validated like the built-in ones."""
    return RegisterMap.model_validate(yaml.safe_load(path.read_text("utf-8")))


# --- planning reads ---------------------------------------------------------


def _spans(register_map: RegisterMap) -> list[tuple[int, int]]:
    """(first, end) 0-based register spans of every value and scale factor."""
    spans = []
    for spec in register_map.quantities.values():
        start = register_map.wire_address(spec.address)
        spans.append((start, start + spec.words))
        if spec.scale_factor_address is not None:
            sf_start = register_map.wire_address(spec.scale_factor_address)
            spans.append((sf_start, sf_start + 1))
    return sorted(spans)


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
    return math.nan if exponent == _SUNSPEC_SF_MISSING else float(exponent)


def decode_quantity(
    register_map: RegisterMap, quantity: Quantity, blocks: dict[int, list[int]]
) -> float:
    """One quantity in A or W from the blocks read (start address → registers)."""
    spec = register_map.quantities[quantity]
    start = register_map.wire_address(spec.address)
    raw = _raw_value(spec, _registers(blocks, start, spec.words, quantity), quantity)
    exponent = _scale_exponent(register_map, spec, blocks, quantity)
    return raw * spec.scale * UNIT_TO_SI[spec.unit] * math.pow(10.0, exponent)


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
