"""The OCPP 1.6J central system against simulated charge points over real loopback websockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerMeasurement,
    CommandStatus,
    ConnectorStatusChanged,
    ProfileCommand,
    ProfilePurpose,
    SessionStarted,
    SessionStopped,
)
from controller.ocpp.v16 import ChargePointConnection
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from tests.ocpp_site import Site, running_site, wait_until

OCPP16 = Subprotocol("ocpp1.6")
E = TypeVar("E")


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A site whose chargers have 5 s to answer a command."""
    async with running_site() as running:
        yield running


@pytest.fixture
async def impatient_site() -> AsyncIterator[Site]:
    """A site whose chargers have 0.3 s to answer a command."""
    async with running_site(call_timeout_s=0.3) as running:
        yield running


def tx_default(limit_a: float = 6.0, profile_id: int = 1) -> ProfileCommand:
    """The fail-safe default: connector 0, stack 0, indefinite."""
    return ProfileCommand("cp-1", 0, ProfilePurpose.TX_DEFAULT, limit_a, 0, profile_id)


def tx_profile(
    transaction_id: int, limit_a: float = 16.0, lease_s: float = 120.0
) -> ProfileCommand:
    """A leased live setpoint on connector 1, stack 1."""
    return ProfileCommand(
        "cp-1", 1, ProfilePurpose.TX, limit_a, 1, 100, lease_s, transaction_id=transaction_id
    )


Responder = Callable[[list[Any]], list[Any] | None]


class RawCharger:
    """A bare websocket 'charger': answers CALLs with ``respond`` (None = stay silent).

    With ``hang_up`` it closes the connection on the first CALL instead.
    """

    def __init__(self, ws: ClientConnection, respond: Responder, hang_up: bool = False) -> None:
        self.ws = ws
        self._respond = respond
        self._hang_up = hang_up
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        """Answer (or ignore) each CALL until the connection closes."""
        async for raw in self.ws:
            if self._hang_up:
                await self.ws.close()
                return
            answer = self._respond(json.loads(raw))
            if answer is not None:
                await self.ws.send(json.dumps(answer))

    async def close(self) -> None:
        """Close the connection and wait for the loop to end."""
        await self.ws.close()
        await self._task


async def raw_charger(site: Site, respond: Responder, hang_up: bool = False) -> RawCharger:
    """A connected RawCharger known to the server as ``raw-1``."""
    ws = await connect(f"{site.url}/raw-1", subprotocols=[OCPP16])
    charger = RawCharger(ws, respond, hang_up)
    await wait_until(lambda: site.server.link("raw-1") is not None)
    return charger


def raw_command() -> ProfileCommand:
    """A fail-safe default for the raw charger."""
    return ProfileCommand("raw-1", 0, ProfilePurpose.TX_DEFAULT, 6.0, 0, 1)


# --- connect, boot, events ---------------------------------------------------


async def test_charger_connects_and_boots(site: Site) -> None:
    """A charger's connect and boot reach the sink in order, then its connectors' status."""
    await site.charger("cp-1", n_connectors=2)
    await wait_until(lambda: len(site.of(ConnectorStatusChanged)) == 3)
    assert isinstance(site.events[0], ChargerConnected)
    assert site.events[0].protocol == "ocpp1.6"
    assert isinstance(site.events[1], ChargerBooted)
    assert site.events[1].vendor == "Headroom"
    statuses = [(e.connector_id, e.status) for e in site.of(ConnectorStatusChanged)]
    assert statuses == [(0, "Available"), (1, "Available"), (2, "Available")]
    assert site.server.connected == frozenset({"cp-1"})


async def test_session_and_meter_values_become_events(site: Site) -> None:
    """Start, MeterValues and Stop arrive as events with A, W and Wh from the charger."""
    sim = await site.charger(meter_interval_s=0.1)
    ev = EV(max_current_a=16.0, response_delay_s=0.0)
    transaction_id = await sim.plug_in(1, ev)
    await wait_until(lambda: any(e.current_a[0] for e in site.of(ChargerMeasurement)))
    started = site.of(SessionStarted)[0]
    assert (started.connector_id, started.transaction_id) == (1, transaction_id)
    reading = next(e for e in site.of(ChargerMeasurement) if e.current_a[0])
    assert reading.current_a == (16.0, 16.0, 16.0)
    assert reading.power_w == pytest.approx(3 * 16.0 * 230.0)
    assert reading.offered_a == 32.0  # no profile: the charger's rating
    assert reading.transaction_id == transaction_id
    assert reading.soc_percent == pytest.approx(30.0, abs=0.1)
    await asyncio.sleep(0.5)  # 11 kW for 0.5 s: over 1 Wh on the register
    await sim.unplug(1)
    await wait_until(lambda: bool(site.of(SessionStopped)))
    stopped = site.of(SessionStopped)[0]
    assert stopped.transaction_id == transaction_id
    assert stopped.meter_stop_wh == int(ev.charged_wh) > 0
    assert stopped.reason == "EVDisconnected"
    statuses = [e.status for e in site.of(ConnectorStatusChanged) if e.connector_id == 1]
    assert statuses == ["Available", "Preparing", "Charging", "Available"]


async def test_transaction_ids_increase_across_the_site(site: Site) -> None:
    """Each StartTransaction gets the next site-wide id, whichever charger asks."""
    first = await site.charger("cp-1")
    second = await site.charger("cp-2")
    ids = [await first.plug_in(1, EV()), await second.plug_in(1, EV())]
    await first.unplug(1)
    ids.append(await first.plug_in(1, EV()))
    assert ids == [1, 2, 3]


# --- commands ----------------------------------------------------------------


async def test_profiles_set_the_offer_and_the_ev_follows(site: Site) -> None:
    """Default 6 A then a leased 16 A TxProfile: accepted, the offer moves, the EV follows late."""
    sim = await site.charger(meter_interval_s=0.1)
    result = await site.link().set_profile(tx_default(6.0))
    assert result.status is CommandStatus.ACCEPTED
    assert result.latency_s < 1.0
    assert sim.offered_a(1) == 6.0
    ev = EV(response_delay_s=0.8)
    transaction_id = await sim.plug_in(1, ev)
    await wait_until(lambda: sim.draw_a() == (6.0, 6.0, 6.0))
    result = await site.link().set_profile(tx_profile(transaction_id, 16.37))
    assert result.ok
    assert sim.offered_a(1) == 16.3  # floored, never rounded up
    assert sim.draw_a() == (6.0, 6.0, 6.0)  # the EV has not reacted yet
    await wait_until(lambda: sim.draw_a() == (16.3, 16.3, 16.3))
    await wait_until(lambda: any(e.offered_a == 16.3 for e in site.of(ChargerMeasurement)))
    profile = sim.received_profiles[-1][1]
    assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.3


async def test_tx_profile_without_transaction_is_rejected(site: Site) -> None:
    """A TxProfile for a connector without that transaction comes back REJECTED, not raised."""
    sim = await site.charger()
    result = await site.link().set_profile(tx_profile(transaction_id=99))
    assert result.status is CommandStatus.REJECTED
    assert result.detail == "Rejected"
    assert sim.offered_a(1) == 32.0


async def test_lease_expiry_falls_back_to_the_default(site: Site) -> None:
    """A TxProfile whose lease runs out leaves the charger on its TxDefaultProfile by itself."""
    sim = await site.charger()
    assert (await site.link().set_profile(tx_default(6.0))).ok
    transaction_id = await sim.plug_in(1, EV())
    assert (await site.link().set_profile(tx_profile(transaction_id, 16.0, lease_s=1.0))).ok
    assert sim.offered_a(1) == 16.0
    await wait_until(lambda: sim.offered_a(1) == 6.0, timeout_s=3.0)


async def test_silent_charger_times_out(impatient_site: Site) -> None:
    """A charger that never answers gives TIMEOUT within call_timeout_s, and no exception."""
    charger = await raw_charger(impatient_site, lambda message: None)
    started = time.monotonic()
    result = await impatient_site.link("raw-1").set_profile(raw_command())
    assert result.status is CommandStatus.TIMEOUT
    assert 0.25 <= result.latency_s < 2.0
    assert time.monotonic() - started < 2.0
    await charger.close()


async def test_call_error_is_recorded_with_its_code(site: Site) -> None:
    """A CALLERROR answer becomes CALL_ERROR with the error code and description."""

    def refuse(message: list[Any]) -> list[Any]:
        """Answer every CALL with a CALLERROR."""
        return [4, message[1], "NotImplemented", "no smart charging here", {}]

    charger = await raw_charger(site, refuse)
    result = await site.link("raw-1").set_profile(raw_command())
    assert result.status is CommandStatus.CALL_ERROR
    assert result.detail == "NotImplemented: no smart charging here"
    await charger.close()


async def test_not_supported_answer_is_a_rejection(site: Site) -> None:
    """Status NotSupported maps to REJECTED with the status as detail."""
    charger = await raw_charger(site, lambda m: [3, m[1], {"status": "NotSupported"}])
    result = await site.link("raw-1").set_profile(raw_command())
    assert (result.status, result.detail) == (CommandStatus.REJECTED, "NotSupported")
    await charger.close()


async def test_wire_carries_camel_case_ocpp(site: Site) -> None:
    """The CALL on the wire is camelCase OCPP 1.6 with the floored limit, as a charger reads it."""
    calls: list[list[Any]] = []

    def record(message: list[Any]) -> list[Any]:
        calls.append(message)
        return [3, message[1], {"status": "Accepted"}]

    charger = await raw_charger(site, record)
    command = ProfileCommand("raw-1", 1, ProfilePurpose.TX, 7.37, 1, 9, 60.0, transaction_id=3)
    assert (await site.link("raw-1").set_profile(command)).ok
    [[message_type, _, action, payload]] = calls
    assert (message_type, action) == (2, "SetChargingProfile")
    profile = payload["csChargingProfiles"]
    assert payload["connectorId"] == 1
    assert (profile["chargingProfilePurpose"], profile["transactionId"]) == ("TxProfile", 3)
    period = profile["chargingSchedule"]["chargingSchedulePeriod"]
    assert period == [{"startPeriod": 0, "limit": 7.3}]
    assert profile["chargingSchedule"]["duration"] == 65
    await charger.close()


async def test_connection_lost_mid_call_is_not_connected(site: Site) -> None:
    """A charger that hangs up while a command waits answers NOT_CONNECTED at once."""
    charger = await raw_charger(site, lambda m: None, hang_up=True)
    result = await site.link("raw-1").set_profile(raw_command())
    assert result.status is CommandStatus.NOT_CONNECTED
    assert result.latency_s < 2.0  # the call timeout is 5 s: the close cut it short
    await charger.close()


async def test_simulated_charger_answers_configuration_and_clear(site: Site) -> None:
    """The sim reports its smart-charging keys and clears a profile, falling back to its rating."""
    sim = await site.charger(n_connectors=2)
    assert (await site.link().set_profile(tx_default(6.0, profile_id=4))).ok
    link = site.link()
    assert isinstance(link, ChargePointConnection)
    answer = await link.request(
        "GetConfiguration", {"key": ["NumberOfConnectors", "Nope"]}, timeout_s=5
    )
    assert answer["configurationKey"] == [
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
    ]
    assert answer["unknownKey"] == ["Nope"]
    assert (await link.request("ClearChargingProfile", {"id": 4}, timeout_s=5))[
        "status"
    ] == "Accepted"
    assert sim.offered_a(1) == 32.0


# --- refusals, disconnects, replacement ----------------------------------------


async def test_unknown_charger_is_refused_at_the_handshake(site: Site) -> None:
    """An id the site does not know gets HTTP 404 and the sink hears nothing."""
    sim = SimulatedChargePoint("intruder", site.url)
    with pytest.raises(InvalidStatus) as refused:
        await sim.start()
    assert refused.value.response.status_code == 404
    assert site.events == []


async def test_malformed_path_is_refused(site: Site) -> None:
    """A path that is not /ocpp/{id} gets HTTP 404."""
    for path in ("/", "/ocpp/", "/other/cp-1", "/ocpp/cp-1/extra"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{site.server.port}{path}", subprotocols=[OCPP16])
        assert refused.value.response.status_code == 404, path
    assert site.events == []


@pytest.mark.parametrize("offered", [None, ["ocpp2.1"]])
async def test_client_without_ocpp16_is_refused(site: Site, offered: list[str] | None) -> None:
    """A client that offers neither ocpp1.6 nor ocpp2.0.1 is refused with HTTP 400 before any
    event (2.0.1 alone is accepted: tests/test_ocpp201_server.py)."""
    protocols = None if offered is None else [Subprotocol(p) for p in offered]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{site.url}/cp-1", subprotocols=protocols)
    assert refused.value.response.status_code == 400
    assert site.events == []


async def test_disconnect_is_reported_and_the_link_is_gone(site: Site) -> None:
    """A charger that leaves gives ChargerDisconnected; link() is None; the old link says so."""
    sim = await site.charger()
    link = site.link()
    await sim.stop()
    await wait_until(lambda: bool(site.of(ChargerDisconnected)))
    assert site.server.link("cp-1") is None
    assert site.server.connected == frozenset()
    assert "1000" in site.of(ChargerDisconnected)[0].reason
    result = await link.set_profile(tx_default())
    assert result.status is CommandStatus.NOT_CONNECTED


async def test_second_connection_replaces_the_first(site: Site) -> None:
    """The same id connecting again closes the old connection, reported before the new one."""
    first = await site.charger()
    old_link = site.link()
    await site.charger()
    await wait_until(lambda: site.server.link("cp-1") is not old_link)
    kinds = [type(e).__name__ for e in site.events if not isinstance(e, ConnectorStatusChanged)]
    assert kinds == [
        "ChargerConnected",
        "ChargerBooted",
        "ChargerDisconnected",
        "ChargerConnected",
        "ChargerBooted",
    ]
    assert "replaced" in site.of(ChargerDisconnected)[0].reason
    assert (await site.link().set_profile(tx_default())).ok
    site.sims.remove(first)
    await first.stop()


async def test_server_stop_closes_every_connection(site: Site) -> None:
    """Stopping the server disconnects each charger and reports it."""
    await site.charger("cp-1")
    await site.charger("cp-2")
    await site.server.stop()
    assert {e.charger_id for e in site.of(ChargerDisconnected)} == {"cp-1", "cp-2"}
    assert site.server.connected == frozenset()
