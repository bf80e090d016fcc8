"""The receive path of an OCPP-J connection, hardened against bad input.

The ``ocpp`` library's ``ChargePoint.route_message`` logs an unparsable frame
and answers nothing, spells error codes the 2.0.1 way on a 1.6 link
(``FormatViolation``), swaps ``NotImplemented`` and ``NotSupported``, and
queues answers nobody waits for; an ``@after`` handler that raises ends the
connection. :class:`GuardedChargePoint` replaces it:
each frame is judged by :mod:`controller.ocpp.rpc`, a bad one gets the answer
that module prescribes and a structlog line with the charger id and the
reason, and the connection keeps running whatever arrives.

It also owns the send path of our own CALLs (:meth:`GuardedChargePoint.request`):
a frame built from the payload dict, its answer handed to a future keyed by the
CALL's unique id. The library's ``call()`` costs about three times the bare
frame per command (dataclass serialisation, schema checks on a thread, extra
tasks; see docs/benchmarks.md), which at depot scale is the whole fan-out
budget. What we send is built by :mod:`controller.ocpp.profiles` and tested
against the OCPP schemas; what comes back is read defensively field by field.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections.abc import Callable
from typing import Any

import structlog
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError
from ocpp.v16 import ChargePoint
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from controller.ocpp.rpc import (
    CALL,
    CALL_ERROR,
    ErrorCode,
    Frame,
    FrameFault,
    parse_frame,
    payload_fault,
    unserved_action,
)

LOGGED_FRAME_CHARS = 200
"""How much of a bad frame a log line quotes: enough to see what it was, not a megabyte."""

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class LinkClosed(Exception):
    """The connection closed before (or while) a CALL of ours could be answered."""


class GuardedChargePoint(ChargePoint):  # type: ignore[misc]  # the ocpp library is untyped
    """The library's 1.6 ``ChargePoint`` with a receive path that survives any frame.

    Subclasses set ``_log`` (a structlog logger bound to the charger id) in
    their ``__init__``. A 2.0.1 subclass sets the library's class attributes
    ``_call``, ``_call_result`` and ``_ocpp_version`` to the 2.0.1 ones; the
    faults are then judged and named by the 2.0.1 actions, schemas and codes.
    """

    _log: structlog.typing.FilteringBoundLogger

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._call_ids = itertools.count(1)
        for action, handlers in self.route_map.items():
            if "_after_action" in handlers:
                handlers["_after_action"] = self._guarded_after(action, handlers["_after_action"])

    def _guarded_after(self, action: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler`` with its failures logged instead of raised.

        An ``@after`` handler runs once the answer has gone out: its exception
        must neither end the receive loop nor trigger a second answer.
        """

        @functools.wraps(handler)  # the library reads the signature (``call_unique_id``)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except Exception:
                self._log.exception("ocpp_after_handler_failed", action=action)
                return None

        return guarded

    async def serve(self) -> None:
        """Receive until the connection closes; a CALL still waiting learns at once."""
        try:
            await self.start()
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(LinkClosed())

    async def request(self, action: str, payload: dict[str, Any], timeout_s: float) -> Any:
        """Send one CALL and return its CALLRESULT payload (a dict).

        One CALL is in flight per connection (OCPP-J); ``timeout_s`` bounds the
        wait for that turn and for the answer together. Raises ``TimeoutError``,
        :class:`LinkClosed` (or ``ConnectionClosed``), or the library's
        ``OCPPError`` for a CALLERROR, so callers record one of those outcomes.
        """
        if self._connection.state is not State.OPEN:
            raise LinkClosed
        unique_id = str(next(self._call_ids))
        frame = _JSON.encode([CALL, unique_id, action, payload])
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(timeout_s), self._call_lock:
            self._pending[unique_id] = future
            try:
                await self._send(frame)
                answer = await future
            finally:
                self._pending.pop(unique_id, None)
        if answer.message_type_id == CALL_ERROR:
            error = CallError(
                unique_id, answer.error_code, answer.error_description, answer.error_details
            )
            raise error.to_exception()
        return answer.payload

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route one inbound frame; bad input gets its CALLERROR (or a log line), never a crash."""
        frame = parse_frame(raw_msg)
        if isinstance(frame, FrameFault):
            await self._refuse(frame, raw_msg)
        elif frame.message_type_id == CALL:
            await self._route_call(frame, raw_msg)
        else:
            self._route_answer(frame)

    async def _route_call(self, frame: Frame, raw: str | bytes) -> None:
        """Run the handler of a well-formed CALL; refuse an unserved action or a bad payload."""
        if "_on_action" not in self.route_map.get(frame.action, {}):
            await self._refuse(unserved_action(frame, self._ocpp_version), raw)
            return
        try:
            await self._handle_call(Call(frame.unique_id, frame.action, frame.payload))
        except ConnectionClosed:
            raise
        except OCPPError as exc:
            # The library's schema check refused the request (or, a bug, our answer):
            # name the fault by the 1.6 rules rather than the library's 2.0.1 codes.
            # Checking again costs only on bad input; good frames are checked once.
            fault = payload_fault(frame, self._ocpp_version) or self._internal_error(frame, exc)
            await self._refuse(fault, raw)
        except Exception as exc:  # our bug before the answer went out: say so, serve on
            await self._refuse(self._internal_error(frame, exc), raw)

    def _internal_error(self, frame: Frame, exc: Exception) -> FrameFault:
        """The fault for our own failure to answer a valid CALL, logged with its traceback."""
        self._log.error("ocpp_answer_failed", action=frame.action, exc_info=exc)
        return FrameFault(ErrorCode.INTERNAL_ERROR, f"{frame.action} failed here", frame.unique_id)

    def _route_answer(self, frame: Frame) -> None:
        """Hand an answer to the CALL waiting for it; one nobody awaits is logged and dropped."""
        future = self._pending.pop(frame.unique_id, None)
        if future is None or future.done():
            # Late after its timeout, or never asked for.
            self._log.warning(
                "ocpp_unexpected_answer",
                unique_id=frame.unique_id,
                reason="no CALL of ours is waiting for an answer",
            )
            return
        future.set_result(frame)

    async def _refuse(self, fault: FrameFault, raw: str | bytes) -> None:
        """Log a bad frame with its reason; send its CALLERROR when it may be answered."""
        fault = fault.in_version(self._ocpp_version)  # a 2.0.1 link spells its codes anew
        answer = fault.call_error()
        self._log.warning(
            "ocpp_bad_frame",
            code=fault.code.value,
            reason=fault.reason,
            unique_id=fault.unique_id,
            answered=answer is not None,
            frame=_excerpt(raw),
        )
        if answer is not None:
            await self._send(answer)


def _excerpt(raw: str | bytes) -> str:
    """The start of a frame for a log line."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    return text if len(text) <= LOGGED_FRAME_CHARS else text[:LOGGED_FRAME_CHARS] + "…"
