"""SunSpec discovery as plain data: find the ``SunS`` marker, walk the models, move a map.

A SunSpec device starts its holding registers with the marker ``SunS`` at one
of three base addresses, then a chain of models, each an ID register, a
length register (the points that follow) and its points, ending with ID
0xFFFF. Where a meter model (201–204, 211–214) sits depends on what comes
before it (an inverter model, vendor models), so a map written for the usual
layout (``SunS`` at 40000, common model 1 at 40002, meter at 40070) is moved
to where the device actually keeps the model.

:class:`SunSpecScan` is sans-I/O: it says which registers to read next and is
fed what came back. :func:`controller.meters.modbus.scan_sunspec` drives it
over Modbus TCP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.meters.registers import RegisterMap

SUNS_MARKER = (0x5375, 0x6E53)  # "SunS" in ASCII, two registers
# The SunSpec spec allows the marker at 40001, 50001 or 1 in 1-based
# notation: 0-based wire addresses 40000, 50000 and 0, tried in that order.
BASE_ADDRESSES = (40000, 50000, 0)
END_MODEL_ID = 0xFFFF
MAX_MODELS = 64  # a real device has a handful; a longer chain is a broken device


class SunSpecError(ValueError):
    """No SunSpec marker, or the model a map needs is not on the device."""


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """One model on a device: its ID, the address of its ID register, its length."""

    model_id: int
    address: int
    length: int

    @property
    def next_address(self) -> int:
        """Where the following model's ID register is."""
        return self.address + 2 + self.length


@dataclass
class SunSpecScan:
    """A walk over a device's SunSpec models, fed one two-register read at a time.

    Call :meth:`next_read` for the (start, count) to read, :meth:`feed` the
    registers (``None`` when the device answered with an exception), until
    :meth:`next_read` returns ``None``. Then ``models`` lists what was found and
    ``problem`` says what stopped the walk early (empty on a clean end marker).
    """

    bases: tuple[int, ...] = BASE_ADDRESSES
    max_models: int = MAX_MODELS
    base: int | None = None
    models: list[ModelHeader] = field(default_factory=list)
    problem: str = ""
    _tried: int = 0
    _address: int | None = None
    _done: bool = False

    def next_read(self) -> tuple[int, int] | None:
        """The registers to read next, or ``None`` when the walk is over."""
        if self._done:
            return None
        if self.base is None:
            return (self.bases[self._tried], 2)
        assert self._address is not None
        return (self._address, 2)

    def feed(self, words: list[int] | None) -> None:
        """Take the answer to the last :meth:`next_read`."""
        if self.base is None:
            self._feed_marker(words)
        else:
            self._feed_header(words)

    def _feed_marker(self, words: list[int] | None) -> None:
        if words is not None and tuple(words[:2]) == SUNS_MARKER:
            self.base = self.bases[self._tried]
            self._address = self.base + 2
            return
        self._tried += 1
        if self._tried == len(self.bases):
            tried = ", ".join(str(b) for b in self.bases)
            self._stop(f"no SunSpec marker 'SunS' at holding registers {tried}")

    def _feed_header(self, words: list[int] | None) -> None:
        assert self._address is not None
        if words is None or len(words) < 2:
            # Some devices answer past their last model with an exception
            # instead of an end marker: keep what was found.
            self._stop(f"no model header at {self._address}")
        elif words[0] == END_MODEL_ID:
            self._stop("")
        else:
            header = ModelHeader(model_id=words[0], address=self._address, length=words[1])
            self.models.append(header)
            self._address = header.next_address
            if len(self.models) >= self.max_models:
                self._stop(f"more than {self.max_models} models: the chain looks broken")

    def _stop(self, problem: str) -> None:
        self.problem = problem
        self._done = True


def find_model(models: list[ModelHeader], model_id: int) -> ModelHeader | None:
    """The first model with ``model_id``, or ``None``."""
    return next((m for m in models if m.model_id == model_id), None)


def relocate(register_map: RegisterMap, model_address: int) -> RegisterMap:
    """``register_map`` with every address moved so its model starts at ``model_address``."""
    layout = register_map.sunspec
    if layout is None:
        raise SunSpecError(f"map {register_map.name!r} is not a SunSpec map")
    offset = model_address - layout.model_address
    if offset == 0:
        return register_map
    return register_map.model_copy(
        update={
            "quantities": {q: s.shifted(offset) for q, s in register_map.quantities.items()},
            "sunspec": layout.model_copy(update={"model_address": model_address}),
        }
    )


def locate(register_map: RegisterMap, scan: SunSpecScan) -> RegisterMap:
    """``register_map`` moved to where the scanned device keeps its model.

    Raises :class:`SunSpecError` when the device has no such model or its
    length differs from the map's (another revision: the offsets would lie).
    """
    layout = register_map.sunspec
    if layout is None:
        raise SunSpecError(f"map {register_map.name!r} is not a SunSpec map")
    found = find_model(scan.models, layout.model_id)
    if found is None:
        seen = ", ".join(str(m.model_id) for m in scan.models) or "none"
        why = f" ({scan.problem})" if scan.problem else ""
        raise SunSpecError(f"SunSpec model {layout.model_id} not found; models seen: {seen}{why}")
    if found.length != layout.model_length:
        raise SunSpecError(
            f"SunSpec model {layout.model_id} at {found.address} has length {found.length},"
            f" the map expects {layout.model_length}"
        )
    return relocate(register_map, found.address)
