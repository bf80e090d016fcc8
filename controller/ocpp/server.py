"""The OCPP central system (1.6J and 2.0.1): a websockets server at ``/ocpp/{charge_point_id}``.

The handshake (:mod:`controller.ocpp.handshake`) is where a charger is admitted or
refused: a malformed path or
an id the site does not know gets HTTP 404, a client that offers neither
``ocpp1.6`` nor ``ocpp2.0.1`` gets HTTP 400, each with a log line saying why.
Of the two, the charger's own order decides: the first one it offers that we
speak (:func:`choose_subprotocol`). An admitted charger gets a
:class:`ChargePointConnection` (1.6) or a :class:`ChargingStationConnection`
(2.0.1); its connect and
disconnect become :class:`ChargerConnected` / :class:`ChargerDisconnected`
events. A second connection with the same id replaces the first: the old one
is closed and reported disconnected before the new one is reported connected.

Security profiles 1 and 2: with ``credentials``, a charger that has a stored
password hash must present HTTP Basic auth with its own id as the username
and the matching password, or gets HTTP 401 (logged with the reason, never
the password). With ``ssl`` the server speaks TLS (1.2 or later) only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from http import HTTPStatus
from ssl import SSLContext

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from controller.clock import Clock
from controller.model import ChargerConnected, ChargerDisconnected, ChargerLink, EventSink
from controller.ocpp.handshake import (
    OCPP16,
    OCPP201,
    SUBPROTOCOLS,
    BasicAuth,
    Credentials,
    below_tls12,
    charger_id_from_path,
    choose_subprotocol,
    offered_subprotocols,
    refuse,
    tls_context,
    unauthorized,
)
from controller.ocpp.transactions import TransactionIds
from controller.ocpp.v16 import DEFAULT_CALL_TIMEOUT_S, ChargePointConnection
from controller.ocpp.v201 import ChargingStationConnection

Link = ChargePointConnection | ChargingStationConnection
__all__ = ["OCPP16", "OCPP201", "Credentials", "Link", "OcppServer", "tls_context"]

_log = structlog.get_logger(__name__)


class _Live:
    """One admitted connection and the moment its handler has finished."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.finished = asyncio.Event()


class OcppServer:
    """Accepts OCPP 1.6J and 2.0.1 chargers; keeps one live :class:`ChargerLink` per id."""

    def __init__(
        self,
        sink: EventSink,
        clock: Clock,
        admit: Callable[[str], bool],
        host: str = "127.0.0.1",
        port: int = 0,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        first_transaction_id: int = 1,
        credentials: Credentials | None = None,
        ssl: SSLContext | None = None,
        voltage_v: float = 230.0,
        meter_values_interval_s: int = 0,
    ) -> None:
        if ssl is not None and below_tls12(ssl):
            raise ValueError("OCPP security profile 2 needs TLS 1.2 or later (minimum_version)")
        self._sink = sink
        self._clock = clock
        self._voltage_v = voltage_v
        self._meter_values_interval_s = meter_values_interval_s
        self._admit = admit
        self._host = host
        self._port = port
        self._call_timeout_s = call_timeout_s
        # Site-wide, so a transaction id names one session whichever charger runs it.
        self._transaction_ids = itertools.count(first_transaction_id)
        # 2.0.1 stations name transactions with strings: ours per charger, across reconnects.
        self._tx201: dict[str, TransactionIds] = {}
        self._live: dict[str, _Live] = {}
        self._register_lock = asyncio.Lock()
        self._server: Server | None = None
        self._credentials = credentials
        self._ssl = ssl
        self._basic_auth = BasicAuth()

    async def start(self) -> None:
        """Listen; when this returns chargers can connect (port 0: the OS picks one)."""
        self._server = await serve(
            self._serve_connection,
            self._host,
            self._port,
            subprotocols=list(SUBPROTOCOLS),
            select_subprotocol=lambda _connection, offered: choose_subprotocol(offered),
            process_request=self._process_request,
            ssl=self._ssl,
        )
        _log.info(
            "ocpp_server_listening",
            host=self._host,
            port=self.port,
            tls=self._ssl is not None,
            basic_auth=self._credentials is not None,
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the OCPP server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Close every connection and wait until each handler has finished."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        _log.info("ocpp_server_stopped")

    def transactions_201(self, charger_id: str) -> TransactionIds:
        """The 2.0.1 transaction names of ``charger_id`` (kept across its reconnects)."""
        table = self._tx201.get(charger_id)
        if table is None:
            table = self._tx201[charger_id] = TransactionIds(lambda: next(self._transaction_ids))
        return table

    def their_transaction_id(self, charger_id: str, ours: int) -> str | None:
        """The charger's own name of our transaction ``ours``: 2.0.1 only, else ``None``."""
        table = self._tx201.get(charger_id)
        return table.theirs(ours) if table is not None else None

    def link(self, charger_id: str) -> ChargerLink | None:
        """The live connection to ``charger_id``, if any."""
        live = self._live.get(charger_id)
        return live.link if live is not None else None

    @property
    def connected(self) -> frozenset[str]:
        """The ids of the chargers connected now."""
        return frozenset(self._live)

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Refuse malformed paths, unknown ids, bad credentials, clients without a version."""
        charger_id = charger_id_from_path(request.path)
        if charger_id is None:
            return refuse(connection, HTTPStatus.NOT_FOUND, "malformed path", path=request.path)
        if not self._admit(charger_id):
            return refuse(
                connection, HTTPStatus.NOT_FOUND, "unknown charger", charger_id=charger_id
            )
        stored = self._credentials(charger_id) if self._credentials is not None else None
        if stored is not None:
            problem = await self._basic_auth.problem(request, charger_id, stored)
            if problem is not None:
                return unauthorized(connection, problem, charger_id)
        offered = offered_subprotocols(request.headers)
        if choose_subprotocol(offered) is None:
            reason = f"neither ocpp2.0.1 nor ocpp1.6 offered (offered: {offered or 'none'})"
            return refuse(connection, HTTPStatus.BAD_REQUEST, reason, charger_id=charger_id)
        return None

    async def _serve_connection(self, connection: ServerConnection) -> None:
        """Run one admitted connection from ChargerConnected to ChargerDisconnected."""
        path = connection.request.path if connection.request is not None else ""
        charger_id = charger_id_from_path(path) or path  # admitted in _process_request
        protocol = connection.subprotocol or OCPP16
        live = _Live(self._link(charger_id, connection, protocol))
        await self._register(charger_id, live)
        log = _log.bind(charger_id=charger_id)
        log.info("charger_connected", remote=str(connection.remote_address), protocol=protocol)
        self._sink(ChargerConnected(charger_id, self._clock.monotonic(), protocol))
        reason = "connection lost"
        try:
            reason = await self._run(live.link, log)
        finally:
            if self._live.get(charger_id) is live:
                del self._live[charger_id]
            log.info("charger_disconnected", reason=reason)
            self._sink(ChargerDisconnected(charger_id, self._clock.monotonic(), reason))
            live.finished.set()

    def _link(self, charger_id: str, connection: ServerConnection, protocol: str) -> Link:
        """The connection class of the negotiated version."""
        if protocol == OCPP201:
            transactions = self.transactions_201(charger_id)
            return ChargingStationConnection(
                charger_id,
                connection,
                sink=self._sink,
                clock=self._clock,
                transactions=transactions,
                call_timeout_s=self._call_timeout_s,
                voltage_v=self._voltage_v,
                meter_values_interval_s=self._meter_values_interval_s,
            )
        return ChargePointConnection(
            charger_id,
            connection,
            sink=self._sink,
            clock=self._clock,
            next_transaction_id=lambda: next(self._transaction_ids),
            call_timeout_s=self._call_timeout_s,
            voltage_v=self._voltage_v,
            meter_values_interval_s=self._meter_values_interval_s,
        )

    async def _register(self, charger_id: str, live: _Live) -> None:
        """Make ``live`` the charger's link, closing (and awaiting) a previous one first."""
        async with self._register_lock:
            previous = self._live.get(charger_id)
            if previous is not None:
                _log.warning("charger_connection_replaced", charger_id=charger_id)
                await previous.link.close("replaced by a new connection")
                await previous.finished.wait()
            self._live[charger_id] = live

    @staticmethod
    async def _run(link: Link, log: structlog.typing.FilteringBoundLogger) -> str:
        """Run the receive loop; the reason it ended."""
        try:
            await link.run()
        except ConnectionClosed as exc:
            return str(exc)
        except Exception as exc:  # a handler bug must end this connection, not the server
            log.exception("ocpp_connection_failed")
            return f"internal error: {exc!r}"
        return "receive loop ended"
