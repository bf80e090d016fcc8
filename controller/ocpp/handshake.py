"""The OCPP websocket handshake: who may connect, in which version, with which credentials.

The server (:mod:`controller.ocpp.server`) asks this module three things of
each opening handshake: the charger id in the path (:func:`charger_id_from_path`),
the version to speak (:func:`choose_subprotocol`, the charger's order decides)
and, for chargers with a stored password hash, whether its HTTP Basic auth
admits it (:class:`BasicAuth`, security profiles 1 and 2). A refusal is an
HTTP answer with a log line saying why (:func:`refuse`, :func:`unauthorized`:
a 401 never tells the client why). :func:`tls_context` builds the server side
of security profile 2 (TLS 1.2 or later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from ssl import PROTOCOL_TLS_SERVER, SSLContext, TLSVersion
from urllib.parse import unquote, urlsplit

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from controller.ocpp.auth import VerifiedPasswords, verify_password

OCPP16 = Subprotocol("ocpp1.6")
OCPP201 = Subprotocol("ocpp2.0.1")
SUBPROTOCOLS = (OCPP201, OCPP16)
PATH_PREFIX = "/ocpp/"
MAX_ID_LENGTH = 48  # OCPP 2.0.1 caps the identity at 48 characters; 1.6 chargers stay within
REALM = "headroom"
PARALLEL_HASHES = 2  # scrypt needs 16 MiB and ~50 ms each: a burst of handshakes queues here

Credentials = Callable[[str], str | None]
"""Charger id → its stored password hash (:func:`~controller.ocpp.auth.hash_password`);
``None`` = that charger connects without a password."""

_log = structlog.get_logger(__name__)


def charger_id_from_path(path: str) -> str | None:
    """The charge point id in ``/ocpp/{id}`` (query ignored), or ``None`` if malformed."""
    raw = urlsplit(path).path
    if not raw.startswith(PATH_PREFIX):
        return None
    charger_id = unquote(raw[len(PATH_PREFIX) :])
    valid = 0 < len(charger_id) <= MAX_ID_LENGTH and charger_id.isprintable()
    return charger_id if valid and "/" not in charger_id and " " not in charger_id else None


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a client offers in its ``Sec-WebSocket-Protocol`` headers."""
    return [
        item.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


def choose_subprotocol(offered: Sequence[str]) -> Subprotocol | None:
    """The first subprotocol in the charger's offer that we speak; ``None`` if none.

    A charger lists its versions in its order of preference (RFC 6455 §4.1),
    so 2.0.1 is chosen only where the charger put it before 1.6.
    """
    return next((Subprotocol(p) for p in offered if p in SUBPROTOCOLS), None)


def refuse(
    connection: ServerConnection, status: HTTPStatus, reason: str, **context: str
) -> Response:
    """Log a refused handshake and build its HTTP answer."""
    _log.warning(
        "ocpp_connection_refused",
        reason=reason,
        http_status=int(status),
        remote=str(connection.remote_address),
        **context,
    )
    return connection.respond(status, f"{reason}\n")


def unauthorized(connection: ServerConnection, reason: str, charger_id: str) -> Response:
    """Log why a charger failed Basic auth; answer 401 without telling the client why."""
    _log.warning(
        "ocpp_connection_refused",
        reason=reason,
        http_status=int(HTTPStatus.UNAUTHORIZED),
        remote=str(connection.remote_address),
        charger_id=charger_id,
    )
    response = connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or missing credentials\n")
    response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
    return response


class BasicAuth:
    """Checks a handshake's HTTP Basic auth against a charger's stored password hash.

    A password verified once is remembered (:class:`VerifiedPasswords`), so a
    charger that reconnects does not pay scrypt again; at most
    ``PARALLEL_HASHES`` hashes run at once, off the event loop.
    """

    def __init__(self) -> None:
        self._verified = VerifiedPasswords()
        self._hash_slots = asyncio.Semaphore(PARALLEL_HASHES)

    async def problem(self, request: Request, charger_id: str, stored: str) -> str | None:
        """Why the request's Basic auth does not admit ``charger_id``; ``None`` if it does."""
        header = request.headers.get("Authorization")
        if header is None:
            return "no credentials: HTTP Basic auth is required"
        try:
            username, password = parse_authorization_basic(header)
        except InvalidHeader:
            return "Authorization header is not HTTP Basic"
        if username != charger_id:  # OCPP: the username is the charge point's identity
            return f"username {username[:MAX_ID_LENGTH]!r} is not the charger id"
        if self._verified.knows(stored, password):
            return None
        try:
            async with self._hash_slots:  # scrypt releases the GIL: the loop runs on meanwhile
                matches = await asyncio.to_thread(verify_password, stored, password)
        except ValueError as exc:
            _log.error("ocpp_stored_password_unreadable", charger_id=charger_id, reason=str(exc))
            return "the stored password hash is unreadable (a config error)"
        if not matches:
            return "wrong password"
        self._verified.remember(stored, password)
        return None


def tls_context(certfile: str | Path, keyfile: str | Path | None = None) -> SSLContext:
    """A server TLS context for security profile 2: the given certificate, TLS 1.2 or later."""
    context = SSLContext(PROTOCOL_TLS_SERVER)
    context.minimum_version = TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def below_tls12(context: SSLContext) -> bool:
    """True when ``context`` would accept a TLS version older than 1.2."""
    minimum = context.minimum_version
    return minimum is TLSVersion.MINIMUM_SUPPORTED or minimum < TLSVersion.TLSv1_2
