"""A simulated site meter: a Modbus TCP server for tests, rigs and the demo.

It serves any register map (a built-in one by ``map_name``, default
``sdm630``, or a :class:`RegisterMap` of your own): every read answers with
what ``source()`` returns at that moment, encoded as the map says (word
order, integer type, scale, unit, sign, input or holding registers, SunSpec
marker, model chain and scale factors), so the simulator and
:mod:`controller.meters` agree by construction. Faults can be switched on and
off while it runs:

- ``fault = "exception"``: answer every request with a Modbus exception
  (``exception_code``, default 4, server device failure);
- ``fault = "silent"``: take requests and never answer;
- ``fault = "nan"``: send NaN (float maps) or the map's "not available"
  value (integer maps; the type's extreme value when the map has none);
- ``fault = "frozen"``: keep sending the values of the moment the fault began;
- ``delay_s``: answer that much later.

Built on pymodbus's ``SimDevice`` datastore (the non-deprecated one): its
``action`` callback sees the live register list on every request.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from controller.meters.registers import Quantity, RegisterMap, load_builtin_map, value_span
from controller.meters.sunspec import SUNS_MARKER
from hil.encode import encode_value, scale_exponents

Fault = Literal["exception", "silent", "nan", "frozen"]

__all__ = ["Fault", "MeterValues", "SimulatedMeter", "encode_value"]

# Registers are served in pages of this size around the map's values, so reads
# that span unused registers (as real meters allow) are answered with zeros.
_PAGE = 256
SUNSPEC_BASE = 40000
COMMON_MODEL = (1, 66)  # SunSpec common model: ID 1, 66 registers of points
FILLER_MODEL_ID = 64000  # a vendor model ID: what discovery must step over


@dataclass
class MeterValues:
    """What the simulated meter measures now: A per phase L1..L3, W import positive."""

    current_a: tuple[float, float, float]
    power_w: float


def _quantities(values: MeterValues) -> dict[Quantity, float]:
    l1, l2, l3 = values.current_a
    return {"current_l1": l1, "current_l2": l2, "current_l3": l3, "power_total": values.power_w}


def _sunspec_chain(register_map: RegisterMap) -> dict[int, list[int]]:
    """The marker and model headers a SunSpec device shows, by wire address."""
    layout = register_map.sunspec
    assert layout is not None
    words: dict[int, list[int]] = {SUNSPEC_BASE: list(SUNS_MARKER)}
    common_at = SUNSPEC_BASE + 2
    words[common_at] = list(COMMON_MODEL)
    after_common = common_at + 2 + COMMON_MODEL[1]
    if layout.model_address > after_common:  # a model moved further: a vendor model before it
        words[after_common] = [FILLER_MODEL_ID, layout.model_address - after_common - 2]
    words[layout.model_address] = [layout.model_id, layout.model_length]
    words[layout.first_point + layout.model_length] = [0xFFFF, 0]  # end of the model chain
    return words


class SimulatedMeter:
    """A Modbus TCP meter whose readings come from ``source()``, encoded per a register map."""

    def __init__(
        self,
        source: Callable[[], MeterValues],
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
        map_name: str = "sdm630",
        register_map: RegisterMap | None = None,
    ) -> None:
        self._source = source
        self._host = host
        self._port = port
        self._unit_id = unit_id
        self.register_map: RegisterMap = register_map or load_builtin_map(map_name)
        self._static = _sunspec_chain(self.register_map) if self.register_map.sunspec else {}
        self._server: ModbusTcpServer | None = None
        self.fault: Fault | None = None
        self.exception_code: int = ExcCodes.DEVICE_FAILURE
        self.delay_s: float = 0.0
        self.requests = 0  # requests received, answered or not
        self._last: MeterValues | None = None  # what was sent last: what "frozen" repeats

    @property
    def port(self) -> int:
        """The TCP port it listens on (the one picked when created with port 0)."""
        return self._port

    def _served_span(self) -> tuple[int, int]:
        """(first, end) wire addresses served: whole pages around every value and header."""
        spans = [value_span(self.register_map, s) for s in self.register_map.quantities.values()]
        spans += [(a, a + len(w)) for a, w in self._static.items()]
        first = min(start for start, _ in spans) // _PAGE * _PAGE
        end = -(-max(end for _, end in spans) // _PAGE) * _PAGE
        return first, min(end, 65536)

    async def start(self) -> None:
        """Listen; when this returns, clients can connect. A restart keeps the port."""
        if self._server is not None:
            return
        first, end = self._served_span()
        device = SimDevice(
            id=self._unit_id,
            simdata=SimData(address=first, count=end - first, datatype=DataType.REGISTERS),
            action=self._on_request,
        )
        server = ModbusTcpServer(
            device, address=(self._host, self._port), trace_packet=self._on_packet
        )
        await server.serve_forever(background=True)
        # With port 0 the OS picked one: read it off the listening socket.
        listener = cast(asyncio.Server, server.transport)
        self._port = listener.sockets[0].getsockname()[1]
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        if self._server is None:
            return
        server, self._server = self._server, None
        listener = cast(asyncio.Server, server.transport)
        await server.shutdown()  # type: ignore[no-untyped-call]
        await listener.wait_closed()

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Write the values of this moment into the registers before pymodbus answers."""
        self.requests += 1
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if self.fault == "exception":
            return ExcCodes(self.exception_code)
        if set_values is not None or function_code != self.register_map.function_code:
            return ExcCodes.ILLEGAL_FUNCTION  # measurements are read-only, in one register area
        for address, words in self._static.items():
            registers[address - start_address : address - start_address + len(words)] = words
        self._write_values(registers, start_address, _quantities(self._values()))
        return None

    def _values(self) -> MeterValues:
        """The source's values now, or the frozen ones."""
        if self.fault != "frozen" or self._last is None:
            self._last = self._source()
        return self._last

    def _write_values(
        self, registers: list[int], start_address: int, values: dict[Quantity, float]
    ) -> None:
        if self.fault == "nan":
            values = dict.fromkeys(values, math.nan)
        exponents = scale_exponents(self.register_map, values)
        for address, exponent in exponents.items():
            registers[self.register_map.wire_address(address) - start_address] = exponent & 0xFFFF
        for quantity, spec in self.register_map.quantities.items():
            offset = self.register_map.wire_address(spec.address) - start_address
            sf_address = spec.scale_factor_address
            exponent = 0 if sf_address is None else exponents[sf_address]
            registers[offset : offset + spec.words] = encode_value(spec, values[quantity], exponent)

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """Drop every answer while silent (an empty write sends nothing)."""
        if sending and self.fault == "silent":
            return b""
        return packet
