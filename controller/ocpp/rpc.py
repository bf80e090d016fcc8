"""OCPP-J 1.6 RPC framing of inbound frames (pure): what is wrong with a frame, and the answer.

The faults are judged by the 1.6 rules below; :meth:`FrameFault.in_version`
names them by the OCPP-J 2.0.1 codes for a 2.0.1 connection, and
:func:`unserved_action` / :func:`payload_fault` take the version whose actions
and schemas apply.

This module owns the rules for bad input on an OCPP 1.6J connection. A frame
is read into a :class:`Frame` or judged a :class:`FrameFault` that says which
OCPP-J 1.6 error code applies (§4.2.3, with the spec's own spellings
``FormationViolation`` and ``OccurenceConstraintViolation``), why, and which
unique id the CALLERROR answers — or that nothing may be answered.

The rules, in the order they are checked:

- not JSON, not a JSON array, no message type id, no string unique id →
  ``FormationViolation`` (the frame is not an OCPP-J PDU);
- a message type id other than 2, 3, 4 → ``PropertyConstraintViolation`` (the
  field is well formed, its value invalid; §4.1.3 says its payload is ignored);
- a CALL with fewer than four elements → ``ProtocolError`` (incomplete); with an
  action that is not a string, a payload that is not an object, or extra
  elements → ``FormationViolation``;
- an action OCPP 1.6 does not define → ``NotImplemented`` ("not known by
  receiver"); one it defines but we do not serve → ``NotSupported`` ("recognized
  but not supported"). The ``ocpp`` library swaps these two; we follow the spec;
- a payload against the action's JSON schema: a missing required field →
  ``ProtocolError``, a wrong JSON type or a too long string →
  ``TypeConstraintViolation``, a value outside its enum or bounds →
  ``PropertyConstraintViolation``, too many or too few items →
  ``OccurenceConstraintViolation``, an unknown field → ``FormationViolation``.

An answer (CALLRESULT, CALLERROR) is never answered, however broken: a
CALLERROR to an answer could bounce between two peers for ever.

When the unique id cannot be read, OCPP-J 1.6 is silent. OCPP 2.0.1 Part 4
(edition 2 on) and 2.1 settle it: the CALLERROR carries the id ``"-1"``. We do
the same on 1.6, because the charger's log then shows that its frame was
refused instead of a CALL that simply timed out, and a 1.6 charger that
cannot match ``"-1"`` to a pending CALL drops it (as it must drop any answer
to an id it did not send).
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.resources import files
from typing import Any, cast

import fastjsonschema
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from ocpp.messages import get_validator
from ocpp.v16.enums import Action
from ocpp.v201.enums import Action as Action201

CALL = 2
CALL_RESULT = 3
CALL_ERROR = 4

UNREADABLE_ID = "-1"
"""The unique id of a CALLERROR answering a frame whose own id cannot be read."""

MAX_DESCRIPTION_CHARS = 255  # OCPP 2.0.1 caps errorDescription; 1.6 peers cope with it too

_V16_ACTIONS = frozenset(action.value for action in Action)
_ACTIONS = {"1.6": _V16_ACTIONS, "2.0.1": frozenset(action.value for action in Action201)}


class ErrorCode(enum.StrEnum):
    """The CALLERROR codes of OCPP-J 1.6 §4.2.3, spelled as the 1.6 spec spells them."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"
    # OCPP-J 2.0.1 §4.3 respells two codes and adds two for the RPC frame itself.
    FORMAT_VIOLATION = "FormatViolation"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"


# JSON-schema keyword that failed → the 1.6 code that names the fault.
_SCHEMA_CODES = {
    "required": ErrorCode.PROTOCOL_ERROR,  # a required field is missing: incomplete
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,  # CiString20Type & co. are types
    "minLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "format": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "uniqueItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMATION_VIOLATION,
}


_V201_SPELLING = {
    ErrorCode.FORMATION_VIOLATION: ErrorCode.FORMAT_VIOLATION,
    ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION: ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
}


@dataclass(frozen=True, slots=True)
class FrameFault:
    """Why an inbound frame cannot be processed; ``unique_id`` None means answer nothing."""

    code: ErrorCode
    reason: str
    unique_id: str | None
    rpc: bool = False
    """The RPC frame itself is broken (not its payload): 2.0.1 names such faults apart."""

    def in_version(self, version: str) -> FrameFault:
        """This fault under the error codes of OCPP-J ``version`` (``1.6`` or ``2.0.1``).

        2.0.1 answers an unknown message type id with ``MessageTypeNotSupported``,
        any other broken frame with ``RpcFrameworkError``, and spells
        ``FormatViolation`` and ``OccurrenceConstraintViolation`` correctly.
        """
        if version != "2.0.1":
            return self
        if self.rpc:
            is_type = self.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
            code = (
                ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED if is_type else ErrorCode.RPC_FRAMEWORK_ERROR
            )
        else:
            code = _V201_SPELLING.get(self.code, self.code)
        return replace(self, code=code)

    def call_error(self) -> str | None:
        """The CALLERROR frame to send back, or ``None`` when the frame must not be answered."""
        if self.unique_id is None:
            return None
        description = self.reason[:MAX_DESCRIPTION_CHARS]
        return json.dumps(
            [CALL_ERROR, self.unique_id, self.code.value, description, {}], separators=(",", ":")
        )


@dataclass(frozen=True, slots=True)
class Frame:
    """A well-formed OCPP-J message: a CALL, a CALLRESULT or a CALLERROR."""

    message_type_id: int
    unique_id: str
    action: str = ""  # CALL only
    payload: dict[str, Any] = field(default_factory=dict)  # CALL and CALLRESULT
    error_code: str = ""  # CALLERROR only, as the peer sent it
    error_description: str = ""
    error_details: dict[str, Any] = field(default_factory=dict)


def parse_frame(raw: str | bytes) -> Frame | FrameFault:
    """Read one websocket message as an OCPP-J frame, or say what is wrong with it."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSON and UTF-8 errors
        reason = f"not JSON: {exc}"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, UNREADABLE_ID, rpc=True)
    if not isinstance(message, list) or not message:
        kind = type(message).__name__
        reason = f"not an OCPP-J message: a JSON {kind}, not a non-empty array"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, UNREADABLE_ID, rpc=True)
    type_id = message[0]
    readable = len(message) > 1 and isinstance(message[1], str)
    is_answer = type_id in (CALL_RESULT, CALL_ERROR) and not isinstance(type_id, bool)
    reply_id = None if is_answer else message[1] if readable else UNREADABLE_ID
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        reason = f"message type id {type_id!r} is not an integer"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, reply_id, rpc=True)
    if type_id not in (CALL, CALL_RESULT, CALL_ERROR):
        reason = f"message type id {type_id} is not 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR)"
        return FrameFault(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, reason, reply_id, rpc=True)
    if not readable:
        reason = "unique id missing or not a string"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, reply_id, rpc=True)
    if type_id == CALL:
        return _call(message)
    if type_id == CALL_RESULT:
        return _call_result(message)
    return _call_error(message)


def _call(message: list[Any]) -> Frame | FrameFault:
    """``[2, id, action, payload]``."""
    unique_id: str = message[1]
    if len(message) < 4:
        reason = f"a CALL has 4 elements, this one {len(message)}"
        return FrameFault(ErrorCode.PROTOCOL_ERROR, reason, unique_id, rpc=True)
    if len(message) > 4:
        reason = f"a CALL has 4 elements, this one {len(message)}"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, unique_id, rpc=True)
    _, _, action, payload = message
    if not isinstance(action, str):
        reason = f"action {action!r} is not a string"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, unique_id, rpc=True)
    if not isinstance(payload, dict):
        reason = f"{action} payload is a JSON {type(payload).__name__}, not an object"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, unique_id)
    return Frame(CALL, unique_id, action=action, payload=payload)


def _call_result(message: list[Any]) -> Frame | FrameFault:
    """``[3, id, payload]``; a broken one is logged, never answered."""
    if len(message) != 3 or not isinstance(message[2], dict):
        reason = "a CALLRESULT is [3, id, {payload}]"
        return FrameFault(ErrorCode.FORMATION_VIOLATION, reason, None, rpc=True)
    return Frame(CALL_RESULT, message[1], payload=message[2])


def _call_error(message: list[Any]) -> Frame | FrameFault:
    """``[4, id, code, description, details]``; details may be left out (lenient)."""
    fault = FrameFault(
        ErrorCode.FORMATION_VIOLATION, "a CALLERROR is [4, id, code, description, {details}]", None
    )
    if len(message) not in (4, 5):
        return fault
    code, description = message[2], message[3]
    details = message[4] if len(message) == 5 else {}
    if not (isinstance(code, str) and isinstance(description, str) and isinstance(details, dict)):
        return fault
    return Frame(
        CALL_ERROR,
        message[1],
        error_code=code,
        error_description=description,
        error_details=details,
    )


def unserved_action(frame: Frame, version: str = "1.6") -> FrameFault:
    """The answer to a CALL whose action we have no handler for (OCPP ``version``)."""
    if frame.action in _ACTIONS[version]:
        reason = f"{frame.action} is an OCPP {version} action this central system does not serve"
        return FrameFault(ErrorCode.NOT_SUPPORTED, reason, frame.unique_id)
    reason = f"{frame.action!r} is not an OCPP {version} action"
    return FrameFault(ErrorCode.NOT_IMPLEMENTED, reason, frame.unique_id)


def schema_code(keyword: str) -> ErrorCode:
    """The 1.6 error code for a failed JSON-schema keyword (``FormationViolation`` if unlisted)."""
    return _SCHEMA_CODES.get(keyword, ErrorCode.FORMATION_VIOLATION)


def payload_fault(frame: Frame, version: str = "1.6") -> FrameFault | None:
    """Check a CALL's payload against its OCPP ``version`` schema; the fault, or ``None``."""
    try:
        validator = get_validator(CALL, frame.action, version)
    except OSError:  # no schema shipped for this action: nothing to check it against
        return None
    error = best_match(validator.iter_errors(frame.payload))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "payload"
    reason = f"{frame.action} {where}: {error.message}"
    return FrameFault(schema_code(str(error.validator)), reason, frame.unique_id)


@functools.cache
def fast_check(action: str) -> Callable[[Any], object]:
    """The action's OCPP 1.6 request schema compiled to Python (raises ``JsonSchemaException``).

    About 20× faster than interpreting the schema on every frame; used on the
    messages every charger sends every few seconds (MeterValues).
    """
    schema = files("ocpp") / "v16" / "schemas" / f"{action}.json"
    return cast(Callable[[Any], object], fastjsonschema.compile(json.loads(schema.read_text())))
