"""What ``bench_ocpp.py`` runs its fleet against, and the raw-frame fan-out (the floor).

* :class:`OcppUnderTest`: the controller's ``OcppServer`` feeding a ``SiteState``;
* :class:`SiteUnderTest`: the whole ``SiteController`` with a simulated meter;
* :class:`BareUnderTest`: a bare ``websockets`` server answering with ``json.dumps``;
* :class:`RawFanout`: raw ``SetChargingProfile`` frames on server-side websockets,
  their answers picked off the receive path.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from controller.clock import SystemClock
from controller.config import ControlSettings
from controller.model import Event, ProfileCommand, ProfilePurpose, SessionStarted
from controller.ocpp import OcppServer, set_charging_profile_payload
from controller.ocpp.v16 import ChargePointConnection
from controller.state import SiteState

LEASE_S = 120.0
PROFILE_ID = 11  # the dispatcher's TxProfile id for connector 1
STACK_LEVEL = 1
FANOUT_TIMEOUT_S = 60.0


# --- the three servers ------------------------------------------------------


class OcppUnderTest:
    """The controller's OCPP server feeding a SiteState; it remembers each transaction id."""

    def __init__(self) -> None:
        self.state = SiteState(ControlSettings())
        self.transactions: dict[str, int] = {}
        self.server = OcppServer(
            sink=self._sink, clock=SystemClock(), admit=lambda _cid: True, port=0
        )

    def _sink(self, event: Event) -> None:
        if isinstance(event, SessionStarted):
            self.transactions[event.charger_id] = event.transaction_id
        self.state.apply(event)

    async def start(self) -> int:
        """Listen; the port."""
        await self.server.start()
        return self.server.port

    async def stop(self) -> None:
        """Close every connection."""
        await self.server.stop()


class SiteUnderTest:
    """The whole SiteController with a simulated meter (ingestion plus the loop)."""

    def __init__(self, chargers: int) -> None:
        from benchmarks.site import BenchSite

        self.site = BenchSite(chargers)

    async def start(self) -> int:
        """Start meter and controller; the OCPP port."""
        await self.site.start()
        return self.site.controller.ocpp.port

    async def stop(self) -> None:
        """Stop controller and meter."""
        await self.site.stop()


class BareUnderTest:
    """The floor: a websockets server that answers each CALL with json.loads / json.dumps."""

    def __init__(self) -> None:
        self._server: Any = None
        self._transaction_ids = itertools.count(1)
        self.transactions: dict[str, int] = {}
        self.connections: dict[str, ServerConnection] = {}
        self.raw: RawFanout | None = None

    async def start(self) -> int:
        """Listen; the port."""
        self._server = await serve(
            self._handle, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")]
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, ws: ServerConnection) -> None:
        charger_id = ws.request.path.rsplit("/", 1)[-1] if ws.request else ""
        self.connections[charger_id] = ws
        async for raw in ws:
            if self.raw is not None and self.raw.take_answer(raw):
                continue
            message = json.loads(raw)
            if message[0] != 2:
                continue
            await ws.send(self._answer(charger_id, message[1], message[2]))

    def _answer(self, charger_id: str, unique_id: str, action: str) -> str:
        payload: dict[str, Any] = {}
        if action == "BootNotification":
            payload = {"currentTime": "2026-11-21T00:00:00Z", "interval": 30, "status": "Accepted"}
        elif action == "StartTransaction":
            transaction_id = next(self._transaction_ids)
            self.transactions[charger_id] = transaction_id
            payload = {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
        return json.dumps([3, unique_id, payload], separators=(",", ":"))

    def raw_fanout(self) -> RawFanout:
        """Raw SetChargingProfile frames on this server's connections."""
        self.raw = RawFanout(
            [(cid, self.transactions[cid], ws.send) for cid, ws in self.connections.items()]
        )
        return self.raw

    async def stop(self) -> None:
        """Close every connection."""
        self._server.close()
        await self._server.wait_closed()


def profile_command(charger_id: str, transaction_id: int, limit_a: float) -> ProfileCommand:
    return ProfileCommand(
        charger_id=charger_id,
        connector_id=1,
        purpose=ProfilePurpose.TX,
        limit_a=limit_a,
        stack_level=STACK_LEVEL,
        profile_id=PROFILE_ID,
        lease_s=LEASE_S,
        transaction_id=transaction_id,
    )


Send = Callable[[str], Coroutine[Any, Any, None]]


class RawFanout:
    """Raw SetChargingProfile JSON frames, one per charger, and their answers picked off.

    ``targets`` are (charger id, transaction id, the websocket's ``send``);
    the server's receive path hands every frame to :meth:`take_answer` first.
    """

    def __init__(self, targets: list[tuple[str, int, Send]]) -> None:
        self._targets = targets
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count()

    def take_answer(self, raw: str | bytes) -> bool:
        """True when ``raw`` answers one of our frames (and is consumed)."""
        if not (isinstance(raw, str) and raw.startswith('[3,"bare-')):
            return False
        message = json.loads(raw)
        future = self._pending.pop(message[1], None)
        if future is None:
            return False
        future.set_result(message[2])
        return True

    async def run(self, limit_a: float) -> float:
        """Seconds until every charger answered its raw frame with Accepted."""
        start = time.monotonic()
        answers = await asyncio.gather(*(self._one(*target, limit_a) for target in self._targets))
        elapsed = time.monotonic() - start
        refused = [a for a in answers if a.get("status") != "Accepted"]
        if refused:
            raise RuntimeError(f"{len(refused)} raw frames not accepted")
        return elapsed

    async def _one(self, cid: str, tx: int, send: Send, limit_a: float) -> dict[str, Any]:
        payload = set_charging_profile_payload(
            profile_command(cid, tx, limit_a), SystemClock().now()
        )
        unique_id = f"bare-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        frame = json.dumps([2, unique_id, "SetChargingProfile", payload], separators=(",", ":"))
        await send(frame)
        return await asyncio.wait_for(future, FANOUT_TIMEOUT_S)


def raw_fanout_on_ocpp(under: OcppUnderTest, ids: list[str]) -> RawFanout:
    """Raw frames on the controller's own server-side websockets.

    Each live :class:`ChargePointConnection` keeps its receive loop (``start()``
    calls ``self.route_message``); an instance attribute in front of it takes
    the answers to our frames and lets every other frame through to the library.
    """
    targets: list[tuple[str, int, Send]] = []
    links: list[ChargePointConnection] = []
    for cid in ids:
        link = under.server.link(cid)
        assert isinstance(link, ChargePointConnection)
        targets.append((cid, under.transactions[cid], link._connection.send))
        links.append(link)
    fanout = RawFanout(targets)
    for link in links:
        link.route_message = _interceptor(fanout, link.route_message)  # type: ignore[method-assign,assignment]
    return fanout


def _interceptor(
    fanout: RawFanout, route: Callable[[str | bytes], Coroutine[Any, Any, None]]
) -> Callable[[str | bytes], Coroutine[Any, Any, None]]:
    async def intercept(raw: str | bytes) -> None:
        if not fanout.take_answer(raw):
            await route(raw)

    return intercept
