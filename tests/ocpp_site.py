"""A running OCPP central system on loopback, for the tests of bad input, security and quirks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection

from controller.clock import SystemClock
from controller.model import ChargerLink, Event
from controller.ocpp.server import OcppServer
from controller.ocpp.v16 import ChargePointConnection
from hil.charge_point import SimulatedChargePoint
from hil.charge_point_201 import SimulatedStation

KNOWN = frozenset({"cp-1", "cp-2", "raw-1"})
E = TypeVar("E")


@dataclass
class Site:
    """A running central system, the events its sink received, and the sims to stop after."""

    server: OcppServer
    events: list[Event] = field(default_factory=list)
    sims: list[SimulatedChargePoint] = field(default_factory=list)
    scheme: str = "ws"

    @property
    def url(self) -> str:
        """The central system's base URL (``…/ocpp``)."""
        return f"{self.scheme}://127.0.0.1:{self.server.port}/ocpp"

    async def charger(self, charger_id: str = "cp-1", **kwargs: Any) -> SimulatedChargePoint:
        """A started simulated charge point, booted and known to the server."""
        sim = SimulatedChargePoint(charger_id, self.url, **kwargs)
        await sim.start()
        self.sims.append(sim)
        await wait_until(lambda: self.server.link(charger_id) is not None)
        return sim

    async def station(self, charger_id: str = "cp-1", **kwargs: Any) -> SimulatedStation:
        """A started simulated OCPP 2.0.1 station, booted and known to the server."""
        sim = SimulatedStation(charger_id, self.url, **kwargs)
        await sim.start()
        self.sims.append(sim)
        await wait_until(lambda: self.server.link(charger_id) is not None)
        return sim

    def of(self, kind: type[E]) -> list[E]:
        """The events of one kind, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    def link(self, charger_id: str = "cp-1") -> ChargePointConnection:
        """The live link to a charger (it must be connected)."""
        link: ChargerLink | None = self.server.link(charger_id)
        assert isinstance(link, ChargePointConnection)
        return link


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Poll until ``predicate`` holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_site(scheme: str = "ws", **server_kwargs: Any) -> AsyncIterator[Site]:
    """A started server on an ephemeral loopback port; every sim and the server stopped after."""
    events: list[Event] = []
    server_kwargs.setdefault("call_timeout_s", 5.0)
    server = OcppServer(events.append, SystemClock(), KNOWN.__contains__, **server_kwargs)
    site = Site(server, events, scheme=scheme)
    await server.start()
    try:
        yield site
    finally:
        for sim in site.sims:
            await sim.stop()
        await server.stop()


async def answer_to(ws: ClientConnection, frame: str | bytes, wait_s: float = 2.0) -> Any:
    """Send ``frame`` and return the next frame the server sends, parsed (None if none came)."""
    await ws.send(frame)
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), wait_s))
    except TimeoutError:
        return None


def call_frame(action: str, payload: dict[str, Any], unique_id: str = "m-1") -> str:
    """An OCPP-J CALL as text."""
    return json.dumps([2, unique_id, action, payload])
