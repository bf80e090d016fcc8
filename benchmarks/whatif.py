"""Scratch experiments for the OCPP benchmarks: patches applied in the benchmark's process only.

Each one changes how a library or a controller object behaves *in this
process*, so a benchmark can show how much a change to ``controller/`` would
give before anyone makes it. No file of the service changes, and nothing here
is meant to ship: the report in ``docs/benchmarks.md`` says which change each
experiment stands for.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

WHAT_IFS = {
    "inline-validation": "ocpp.messages.ASYNC_VALIDATION = False: the library's schema checks "
    "run on the event loop instead of in the default thread pool",
    "skip-outbound-validation": "ChargePointConnection.call(..., skip_schema_validation=True): "
    "our own SetChargingProfile and the charger's answer are not schema-checked",
    "no-compression": "the OCPP websockets server without permessage-deflate "
    "(serve(..., compression=None))",
    "direct-set-profile": "SetChargingProfile sent as a JSON frame we build (json.dumps of the "
    "profiles.py payload) under the connection's call lock, its answer taken from the "
    "library's response queue: no serialize_as_dict, uuid4, schema checks or thread hops",
    "lean-set-profile": "SetChargingProfile as a JSON frame we build, its answer delivered by "
    "_route_answer straight to a future keyed by the CALL id (failed when the connection "
    "ends), awaited under asyncio.timeout: no library call(), no extra tasks per call",
    "gc-freeze": "gc.freeze() once the chargers are connected and steady: the objects of "
    "start-up leave the collector's generations, so a full collection has little to scan",
    "charger-index": "HeadroomConfig.charger(id) as a dict lookup instead of a linear scan "
    "(decide.py calls it 3 times per session: O(N²) per decision)",
    "fast-meter-values": "MeterValues validated against the same OCPP 1.6 schema compiled by "
    "fastjsonschema, read straight from the camelCase payload, answered with a constant "
    "frame; anything invalid goes down the library path (for its CALLERROR)",
}


FROZEN_AFTER_START = False
"""Set by ``gc-freeze``: the benchmark calls :func:`after_start` once the site is steady."""


def after_start() -> None:
    """What an experiment does once the chargers are connected (``gc-freeze``)."""
    if FROZEN_AFTER_START:
        import gc

        gc.collect()
        gc.freeze()


def apply_what_if(names: str | None) -> str:
    """Apply the comma-separated experiments; a description of what runs."""
    if not names:
        return "none: the code as it is"
    applied = []
    for name in names.split(","):
        if name not in WHAT_IFS:
            raise SystemExit(f"unknown --what-if {name!r}; known: {', '.join(WHAT_IFS)}")
        _PATCHES[name]()
        applied.append(f"{name} ({WHAT_IFS[name]})")
    return "; ".join(applied)


def _inline_validation() -> None:
    import ocpp.messages

    ocpp.messages.ASYNC_VALIDATION = False


def _skip_outbound_validation() -> None:
    from controller.ocpp.v16 import ChargePointConnection

    library_call = ChargePointConnection.call

    async def call(
        self: Any,
        payload: Any,
        suppress: bool = True,
        unique_id: Any = None,
        skip_schema_validation: bool = False,
    ) -> Any:
        return await library_call(self, payload, suppress, unique_id, True)

    ChargePointConnection.call = call


def _no_compression() -> None:
    from websockets.asyncio.server import serve

    import controller.ocpp.server

    controller.ocpp.server.serve = functools.partial(serve, compression=None)  # type: ignore[attr-defined]


def _direct_set_profile() -> None:
    """``call()`` replaced, for SetChargingProfile only, by a frame we build ourselves."""
    from ocpp.messages import MessageType

    from controller.ocpp.v16 import ChargePointConnection

    library_call = ChargePointConnection.call
    ids = itertools.count(1)

    async def call(self: Any, payload: Any, suppress: bool = True, **kwargs: Any) -> Any:
        if type(payload).__name__ != "SetChargingProfile":
            return await library_call(self, payload, suppress, **kwargs)
        unique_id = f"h{next(ids)}"
        body = {
            "connectorId": payload.connector_id,
            "csChargingProfiles": payload.cs_charging_profiles,
        }
        frame = json.dumps([2, unique_id, "SetChargingProfile", body], separators=(",", ":"))
        async with self._call_lock:  # one CALL in flight per connection, as before
            await self._send(frame)
            response = await self._get_specific_response(unique_id, self._response_timeout)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        return SimpleNamespace(status=response.payload.get("status"))

    ChargePointConnection.call = call


def _fast_meter_values() -> None:
    """MeterValues handled in ``_route_call`` before the library's pipeline."""
    import os

    import fastjsonschema
    import ocpp

    from controller.model import ChargerMeasurement
    from controller.ocpp.measurands import parse_meter_values
    from controller.ocpp.rpc import Frame
    from controller.ocpp.v16 import ChargePointConnection

    path = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas", "MeterValues.json")
    with open(path, encoding="utf-8") as f:
        check: Callable[[Any], Any] = fastjsonschema.compile(json.load(f))
    library_route = ChargePointConnection._route_call

    async def route_call(self: Any, frame: Frame, raw: str | bytes) -> None:
        if frame.action != "MeterValues":
            await library_route(self, frame, raw)
            return
        try:
            check(frame.payload)
        except fastjsonschema.JsonSchemaException:
            await library_route(self, frame, raw)  # the library path names the fault
            return
        payload = frame.payload
        fields = parse_meter_values(payload["meterValue"])
        if fields.problems:
            self._log.warning("meter_values_unreadable", problems=list(fields.problems))
        self._sink(
            ChargerMeasurement(
                self.charger_id,
                payload["connectorId"],
                self._clock.monotonic(),
                current_a=fields.current_a,
                power_w=fields.power_w,
                offered_a=fields.offered_a,
                energy_wh=fields.energy_wh,
                soc_percent=fields.soc_percent,
                transaction_id=payload.get("transactionId"),
            )
        )
        await self._send(json.dumps([3, frame.unique_id, {}], separators=(",", ":")))

    ChargePointConnection._route_call = route_call  # type: ignore[method-assign]


def _lean_set_profile() -> None:
    """``_call_while_open`` without the library's ``call()`` and without extra tasks."""
    import asyncio

    from ocpp.messages import CallError
    from websockets.protocol import State

    from controller.ocpp.rpc import CALL_ERROR, Frame
    from controller.ocpp.v16 import ChargePointConnection, _LinkClosed

    ids = itertools.count(1)
    library_route_answer = ChargePointConnection._route_answer
    library_run = ChargePointConnection.run
    library_call_while_open = ChargePointConnection._call_while_open

    def pending_of(self: Any) -> dict[str, asyncio.Future[Frame]]:
        pending: dict[str, asyncio.Future[Frame]] = self.__dict__.setdefault("_lean_pending", {})
        return pending

    def route_answer(self: Any, frame: Frame) -> None:
        future = pending_of(self).pop(frame.unique_id, None)
        if future is None:
            library_route_answer(self, frame)
        elif not future.done():
            future.set_result(frame)

    async def run(self: Any) -> None:
        try:
            await library_run(self)
        finally:  # a call waiting for an answer learns at once that none can come
            for future in pending_of(self).values():
                if not future.done():
                    future.set_exception(_LinkClosed())

    async def call_while_open(self: Any, request: Any) -> Any:
        if type(request).__name__ != "SetChargingProfile":  # GetConfiguration & co. on boot
            return await library_call_while_open(self, request)
        if self._ws.state is not State.OPEN:
            raise _LinkClosed
        unique_id = f"h{next(ids)}"
        body = {
            "connectorId": request.connector_id,
            "csChargingProfiles": request.cs_charging_profiles,
        }
        frame = json.dumps([2, unique_id, "SetChargingProfile", body], separators=(",", ":"))
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        async with self._call_lock:  # one CALL in flight per connection, as before
            pending_of(self)[unique_id] = future
            try:
                await self._send(frame)
                async with asyncio.timeout(self._call_timeout_s):
                    answer = await future
            finally:
                pending_of(self).pop(unique_id, None)
        if answer.message_type_id == CALL_ERROR:
            error = CallError(
                unique_id, answer.error_code, answer.error_description, answer.error_details
            )
            raise error.to_exception()
        return SimpleNamespace(status=answer.payload.get("status"))

    ChargePointConnection._route_answer = route_answer  # type: ignore[method-assign]
    ChargePointConnection.run = run  # type: ignore[method-assign]
    ChargePointConnection._call_while_open = call_while_open  # type: ignore[method-assign]


def _gc_freeze() -> None:
    global FROZEN_AFTER_START
    FROZEN_AFTER_START = True


def _charger_index() -> None:
    from controller.config import ChargerSettings, HeadroomConfig

    indexes: dict[int, dict[str, ChargerSettings]] = {}

    def charger(self: HeadroomConfig, charger_id: str) -> ChargerSettings | None:
        index = indexes.get(id(self))
        if index is None:
            index = indexes[id(self)] = {c.id: c for c in self.chargers}
        return index.get(charger_id)

    HeadroomConfig.charger = charger  # type: ignore[method-assign]


_PATCHES: dict[str, Callable[[], None]] = {
    "gc-freeze": _gc_freeze,
    "lean-set-profile": _lean_set_profile,
    "charger-index": _charger_index,
    "inline-validation": _inline_validation,
    "skip-outbound-validation": _skip_outbound_validation,
    "no-compression": _no_compression,
    "direct-set-profile": _direct_set_profile,
    "fast-meter-values": _fast_meter_values,
}
