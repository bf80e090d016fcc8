"""MQTT meter payloads to numbers (pure): bare numbers, JSON field paths, timestamps.

Every refusal raises :class:`PayloadError` whose message says exactly what
was wrong (which field, what was there instead), so a log line or the API can
show an operator what their meter sends.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

MAX_PAYLOAD_BYTES = 64 * 1024  # a meter value is a few bytes; more is a misrouted topic
_PREVIEW_BYTES = 60
# A Unix time in seconds above this is past the year 5000: it must be milliseconds.
_UNIX_MS_THRESHOLD = 1e11


class PayloadError(ValueError):
    """A payload cannot be turned into the value the settings ask for."""


def preview(payload: bytes) -> str:
    """The start of ``payload`` as a Python bytes literal, for error messages."""
    head = payload[:_PREVIEW_BYTES]
    return repr(head) + ("…" if len(payload) > _PREVIEW_BYTES else "")


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD_BYTES}")


def bare_number(payload: bytes) -> float:
    """The number a payload such as ``b"1234.5"`` holds; NaN and infinity stay so."""
    _check_size(payload)
    try:
        return float(payload.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError):
        raise PayloadError(f"payload {preview(payload)} is not a number") from None


def parse_json(payload: bytes) -> Any:
    """The JSON document in ``payload``."""
    _check_size(payload)
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"payload {preview(payload)} is not valid JSON: {exc}") from None


def field_value(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` such as ``data.power.total`` (list items by index)."""
    node = document
    walked: list[str] = []
    for key in path.split("."):
        where = ".".join(walked) or "the document"
        if isinstance(node, dict):
            if key not in node:
                keys = ", ".join(sorted(map(str, node))) or "none"
                raise PayloadError(f"field {path!r}: no key {key!r} in {where} (keys: {keys})")
            node = node[key]
        elif isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise PayloadError(
                    f"field {path!r}: {where} is a list of {len(node)}, no item {key!r}"
                )
            node = node[int(key)]
        else:
            raise PayloadError(f"field {path!r}: {where} is {_kind(node)}, not an object")
        walked.append(key)
    return node


def number(value: Any, what: str) -> float:
    """``value`` as a float: a JSON number, or a string holding one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(f"{what} is {_kind(value)} {value!r}, not a number")
    try:
        return float(value)
    except ValueError:
        raise PayloadError(f"{what} is the string {value!r}, not a number") from None


def timestamp(value: Any, what: str) -> datetime:
    """A source timestamp: Unix seconds (or milliseconds), or ISO 8601 with a UTC offset."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PayloadError(f"{what} {value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise PayloadError(f"{what} {value!r} has no UTC offset: its time is ambiguous")
        return parsed
    seconds = number(value, what)
    if not math.isfinite(seconds) or seconds < 0:
        raise PayloadError(f"{what} {value!r} is not a Unix time")
    if seconds > _UNIX_MS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"{what} {value!r} is not a Unix time") from None


def _kind(value: Any) -> str:
    """A JSON-ish name for ``value``'s type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
