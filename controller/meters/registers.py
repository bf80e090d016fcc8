"""Meter register maps as data: the schema, its validation, and loading the maps.

A register map (one YAML file per meter model, built-in ones under ``maps/``)
says where a meter keeps each quantity and how it is encoded. Nothing here
opens a socket: :mod:`controller.meters.decode` plans reads and decodes them,
:mod:`controller.meters.modbus` does the reading.

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
decode; ``sign`` (1, or −1 for a meter that counts export positive or is
wired the other way round); optional ``scale_factor_address`` (SunSpec: an
int16 power of ten that multiplies the value, read in the same request as the
value so the two always belong together) and ``missing_value`` (a raw integer
the meter sends for "not available", e.g. SunSpec's int16 −32768 or uint16
0xFFFF, decoded as NaN).

``sunspec`` (optional, SunSpec maps only): ``model_id``, ``model_length`` and
``model_address``, the 0-based address of the model's ID register in the
layout the map's addresses are written for. A device that puts the model
elsewhere is read through :func:`controller.meters.sunspec.relocate`.

A value the meter sends as NaN or infinity stays so, and a missing value
becomes NaN, never 0: the caller rejects the reading.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
SUNSPEC_SF_MISSING = -32768  # SunSpec's "not implemented" for an int16 scale factor

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
    sign: Literal[1, -1] = 1
    scale_factor_address: int | None = Field(default=None, ge=0, le=65535)
    missing_value: int | None = None

    @property
    def words(self) -> int:
        """How many 16-bit registers the value spans."""
        return STRUCT_FORMATS[self.type][1]

    def shifted(self, offset: int) -> RegisterSpec:
        """The same spec with its addresses moved by ``offset`` registers."""
        sf = self.scale_factor_address
        return self.model_copy(
            update={
                "address": self.address + offset,
                "scale_factor_address": None if sf is None else sf + offset,
            }
        )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite non-zero number, not {self.scale}")
        if self.type == "float32" and self.missing_value is not None:
            raise ValueError("missing_value is for integer types; a float32 meter sends NaN")
        return self


class SunSpecLayout(BaseModel):
    """Where a SunSpec model sits in the layout the map's addresses are written for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: int = Field(ge=1, le=65534)
    model_length: int = Field(ge=1, le=65535)
    model_address: int = Field(ge=0, le=65535)

    @property
    def first_point(self) -> int:
        """Address of the model's first point, after its ID and length registers."""
        return self.model_address + 2


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
    sunspec: SunSpecLayout | None = None

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
            if problem := unit_problem(quantity, spec.unit):
                raise ValueError(problem)
            for address in (spec.address, spec.scale_factor_address):
                if address is not None and address < self.address_base:
                    raise ValueError(f"{quantity}: address {address} is below address_base")
            start, end = value_span(self, spec)
            if end - start > self.max_block_registers:
                raise ValueError(
                    f"{quantity}: value and scale factor span {end - start} registers,"
                    f" more than one read of {self.max_block_registers}"
                )
            if self.sunspec is not None:
                _check_in_model(self.sunspec, quantity, spec)
        return self


def _check_in_model(layout: SunSpecLayout, quantity: str, spec: RegisterSpec) -> None:
    """A SunSpec quantity and its scale factor must lie inside the model's points."""
    end = layout.first_point + layout.model_length
    for address in (spec.address, spec.scale_factor_address):
        if address is not None and not layout.first_point <= address < end:
            raise ValueError(
                f"{quantity}: address {address} is outside SunSpec model"
                f" {layout.model_id} ({layout.first_point}..{end - 1})"
            )


def unit_problem(quantity: str, unit: str) -> str:
    """Why ``unit`` does not fit ``quantity`` (a current or a power); empty when it does."""
    kind = "power" if quantity == "power_total" else "current"
    return "" if unit in _UNITS_OF[kind] else f"{quantity}: unit {unit} is not a unit of {kind}"


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


def value_span(register_map: RegisterMap, spec: RegisterSpec) -> tuple[int, int]:
    """(first, end) 0-based registers of a value together with its scale factor.

    One span, so one request reads both: read apart, the meter could change
    the scale between the two answers and the value would be off by 10×.
    """
    start = register_map.wire_address(spec.address)
    end = start + spec.words
    if spec.scale_factor_address is not None:
        sf_start = register_map.wire_address(spec.scale_factor_address)
        start, end = min(start, sf_start), max(end, sf_start + 1)
    return start, end
