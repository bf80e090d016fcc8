"""A simulated SDM630-like site meter: a Modbus TCP server for tests, rigs and the demo.

Every read answers with what ``source()`` returns at that moment, encoded as
the built-in ``sdm630`` register map says (float32, high word first), so the
simulator and :mod:`controller.meters` agree by construction. Faults can be
switched on and off while it runs:

- ``fault = "exception"``: answer every request with a Modbus exception
  (``exception_code``, default 4, server device failure);
- ``fault = "silent"``: take requests and never answer;
- ``delay_s``: answer that much later.

Built on pymodbus's ``SimDevice`` datastore (the non-deprecated one): its
``action`` callback sees the live register list on every request.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from controller.meters.registers import (
    STRUCT_FORMATS,
    UNIT_TO_SI,
    Quantity,
    RegisterMap,
    RegisterSpec,
    load_builtin_map,
)

Fault = Literal["exception", "silent"]

# The SDM630's input registers run to 0x0180; all of them answer (zeros where
# nothing is simulated), as a real meter answers reads that span them.
REGISTER_COUNT = 0x0180


@dataclass
class MeterValues:
    """What the simulated meter measures now: A per phase L1..L3, W import positive."""

    current_a: tuple[float, float, float]
    power_w: float


def encode_value(spec: RegisterSpec, value_si: float) -> list[int]:
    """The registers a meter following ``spec`` sends for ``value_si`` (A or W)."""
    if spec.scale_factor_address is not None:
        raise ValueError("the simulator does not encode SunSpec scale factors")
    fmt, _words = STRUCT_FORMATS[spec.type]
    raw = value_si / (spec.scale * UNIT_TO_SI[spec.unit])
    packed = struct.pack(">" + fmt, raw if spec.type == "float32" else round(raw))
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return words if spec.word_order == "big" else words[::-1]


def _quantities(values: MeterValues) -> dict[Quantity, float]:
    l1, l2, l3 = values.current_a
    return {"current_l1": l1, "current_l2": l2, "current_l3": l3, "power_total": values.power_w}


class SimulatedMeter:
    """An SDM630-like Modbus TCP meter whose readings come from ``source()``."""

    def __init__(
        self,
        source: Callable[[], MeterValues],
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
    ) -> None:
        self._source = source
        self._host = host
        self._port = port
        self._unit_id = unit_id
        self._map: RegisterMap = load_builtin_map("sdm630")
        self._server: ModbusTcpServer | None = None
        self.fault: Fault | None = None
        self.exception_code: int = ExcCodes.DEVICE_FAILURE
        self.delay_s: float = 0.0
        self.requests = 0  # requests received, answered or not

    @property
    def port(self) -> int:
        """The TCP port it listens on (the one picked when created with port 0)."""
        return self._port

    async def start(self) -> None:
        """Listen; when this returns, clients can connect. A restart keeps the port."""
        if self._server is not None:
            return
        device = SimDevice(
            id=self._unit_id,
            simdata=SimData(address=0, count=REGISTER_COUNT, datatype=DataType.REGISTERS),
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
        if set_values is not None or function_code != self._map.function_code:
            return ExcCodes.ILLEGAL_FUNCTION  # measurements are read-only input registers
        values = _quantities(self._source())
        for quantity, spec in self._map.quantities.items():
            offset = self._map.wire_address(spec.address) - start_address
            registers[offset : offset + spec.words] = encode_value(spec, values[quantity])
        return None

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """Drop every answer while silent (an empty write sends nothing)."""
        if sending and self.fault == "silent":
            return b""
        return packet
