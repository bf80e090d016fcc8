"""The simulated charge point's reconnects, reboots and field quirks, over real websockets.

Each quirk must behave as the catalogue says, seen from the central
system: what a command answers, how long it takes, and what the charger
then offers its EV. (Detecting and working around the quirks is the
controller's job, tested elsewhere.)
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve
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
)
from controller.ocpp.profiles import set_charging_profile_payload
from controller.ocpp.v16 import ChargePointConnection
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.quirks import Quirks
from tests.ocpp_site import Site, running_site, wait_until


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A central system whose chargers have 0.5 s to answer a command."""
    async with running_site(call_timeout_s=0.5) as running:
        yield running


def default(limit_a: float = 10.0) -> ProfileCommand:
    """A TxDefaultProfile for every connector of cp-1."""
    return ProfileCommand("cp-1", 0, ProfilePurpose.TX_DEFAULT, limit_a, 0, 1)


def tx(transaction_id: int, limit_a: float = 8.0) -> ProfileCommand:
    """A TxProfile for connector 1's transaction."""
    return ProfileCommand(
        "cp-1", 1, ProfilePurpose.TX, limit_a, 1, 2, 60.0, transaction_id=transaction_id
    )


def in_watts(command: ProfileCommand, limit_w: float) -> dict[str, Any]:
    """The SetChargingProfile payload for ``command``, but with a limit in W."""
    payload = set_charging_profile_payload(command, datetime.now(UTC))
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    schedule["chargingRateUnit"] = "W"
    schedule["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": limit_w, "numberPhases": 3}]
    return payload


async def send_watts(site: Site, limit_w: float) -> str:
    """Send a W TxDefaultProfile to cp-1; the status it answers."""
    link = site.link()
    assert isinstance(link, ChargePointConnection)
    answer = await link.request("SetChargingProfile", in_watts(default(), limit_w), timeout_s=5)
    return str(answer["status"])


def kinds(site: Site, since: int = 0) -> list[str]:
    """The event type names from index ``since`` on, without status and meter events."""
    skip = (ConnectorStatusChanged, ChargerMeasurement)
    return [type(e).__name__ for e in site.events[since:] if not isinstance(e, skip)]


# --- reconnects and reboots ------------------------------------------------------


async def test_reconnect_mid_session_is_reported_and_the_session_runs_on(site: Site) -> None:
    """A network blip: Disconnected then Connected (no boot); the transaction meters on."""
    sim = await site.charger(meter_interval_s=0.1)
    transaction_id = await sim.plug_in(1, EV(response_delay_s=0.0))
    await wait_until(lambda: bool(site.of(ChargerMeasurement)))
    before = list(site.events)
    old_link = site.link()
    await sim.reconnect()
    await wait_until(lambda: site.server.link("cp-1") not in (None, old_link))
    assert site.events[: len(before)] == before
    assert kinds(site, len(before)) == ["ChargerDisconnected", "ChargerConnected"]
    seen = len(site.events)
    await wait_until(lambda: any(isinstance(e, ChargerMeasurement) for e in site.events[seen:]))
    assert site.of(ChargerMeasurement)[-1].transaction_id == transaction_id
    assert (await site.link().set_profile(tx(transaction_id))).ok
    assert sim.offered_a(1) == 8.0
    assert len(site.of(SessionStarted)) == 1


async def test_reboot_boots_again_and_keeps_profiles(site: Site) -> None:
    """A reboot: Disconnected, Connected, Booted, connectors reported; compliant profiles stay."""
    sim = await site.charger()
    assert (await site.link().set_profile(default(10.0))).ok
    await sim.plug_in(1, EV())
    before = len(site.events)
    await sim.reconnect(reboot=True)
    await wait_until(lambda: len(site.of(ChargerBooted)) == 2)
    assert kinds(site, before) == ["ChargerDisconnected", "ChargerConnected", "ChargerBooted"]
    await wait_until(lambda: len(site.of(ConnectorStatusChanged)) == 6)  # 2 + plug-in 2 + 2
    statuses = [(e.connector_id, e.status) for e in site.of(ConnectorStatusChanged)[-2:]]
    assert statuses == [(0, "Available"), (1, "Charging")]
    assert sim.offered_a(1) == 10.0


async def test_drops_profiles_on_reboot(site: Site) -> None:
    """With the quirk, a reboot forgets the default profile: the offer is the rating again."""
    sim = await site.charger(quirks=Quirks(drops_profiles_on_reboot=True))
    assert (await site.link().set_profile(default(10.0))).ok
    await sim.reconnect()  # a plain reconnect keeps them...
    assert sim.offered_a(1) == 10.0
    await sim.reconnect(reboot=True)  # ...a reboot does not
    assert sim.offered_a(1) == 32.0


# --- profile quirks ---------------------------------------------------------------


async def test_a_only_rejects_watts(site: Site) -> None:
    """An A-only charger rejects a W profile, accepts an A one, and reports only Current."""
    sim = await site.charger(quirks=Quirks(a_only=True))
    assert await send_watts(site, 4140.0) == "Rejected"
    assert (await site.link().set_profile(default(10.0))).ok
    assert sim.offered_a(1) == 10.0
    assert sim.configuration()["ChargingScheduleAllowedChargingRateUnit"] == "Current"


async def test_w_only_rejects_amps(site: Site) -> None:
    """A W-only charger rejects an A profile and applies a W one (4140 W on 3 × 230 V = 6 A)."""
    sim = await site.charger(quirks=Quirks(w_only=True))
    result = await site.link().set_profile(default(10.0))
    assert (result.status, result.detail) == (CommandStatus.REJECTED, "Rejected")
    assert await send_watts(site, 4140.0) == "Accepted"
    assert sim.offered_a(1) == pytest.approx(6.0)
    assert sim.configuration()["ChargingScheduleAllowedChargingRateUnit"] == "Power"


async def test_rejects_tx_profile_even_in_a_transaction(site: Site) -> None:
    """The charger refuses TxProfiles during a transaction, yet takes a TxDefaultProfile."""
    sim = await site.charger(quirks=Quirks(rejects_tx_profile=True))
    transaction_id = await sim.plug_in(1, EV())
    assert (await site.link().set_profile(tx(transaction_id))).status is CommandStatus.REJECTED
    assert (await site.link().set_profile(default(10.0))).ok
    assert sim.offered_a(1) == 10.0


async def test_ignores_profiles(site: Site) -> None:
    """Accepted, recorded as received, and never applied: the offer stays at the rating."""
    sim = await site.charger(quirks=Quirks(ignores_profiles=True))
    transaction_id = await sim.plug_in(1, EV())
    assert (await site.link().set_profile(default(10.0))).ok
    assert (await site.link().set_profile(tx(transaction_id))).ok
    assert len(sim.received_profiles) == 2
    assert sim.offered_a(1) == 32.0


# --- link quirks ------------------------------------------------------------------


async def test_slow_ack_answers_late_without_blocking_its_own_messages() -> None:
    """Commands are answered slow_ack_s late; the charger's own meter values go on meanwhile."""
    async with running_site(call_timeout_s=3.0) as site:
        sim = await site.charger(quirks=Quirks(slow_ack_s=0.3), meter_interval_s=0.05)
        await sim.plug_in(1, EV(response_delay_s=0.0))
        seen = len(site.of(ChargerMeasurement))
        result = await site.link().set_profile(default(10.0))
        assert result.ok
        assert 0.3 <= result.latency_s < 2.0
        assert len(site.of(ChargerMeasurement)) >= seen + 2  # metered while the answer waited
        assert sim.offered_a(1) == 10.0


async def test_slow_ack_beyond_the_timeout_is_a_timeout(site: Site) -> None:
    """An answer later than the call timeout is a TIMEOUT; the late answer is logged and dropped."""
    await site.charger(quirks=Quirks(slow_ack_s=0.8))
    with capture_logs() as logs:
        result = await site.link().set_profile(default(10.0))
        assert result.status is CommandStatus.TIMEOUT
        await wait_until(lambda: any(e["event"] == "ocpp_unexpected_answer" for e in logs))
    assert site.server.connected == {"cp-1"}
    assert not site.of(ChargerDisconnected)


async def test_silent_to_commands_keeps_heartbeating(site: Site) -> None:
    """Every command times out, yet heartbeats and meter values keep coming and are answered."""
    sim = await site.charger(
        quirks=Quirks(silent_to_commands=True), heartbeat_interval_s=0.05, meter_interval_s=0.05
    )
    await sim.plug_in(1, EV())
    started = time.monotonic()
    result = await site.link().set_profile(default(10.0))
    assert result.status is CommandStatus.TIMEOUT
    assert time.monotonic() - started < 1.5
    beats = sim.heartbeats_answered
    await wait_until(lambda: sim.heartbeats_answered >= beats + 2)
    assert site.of(ChargerMeasurement)
    assert sim.offered_a(1) == 32.0
    assert not site.of(ChargerDisconnected)


async def test_heartbeat_follows_the_boot_interval(site: Site) -> None:
    """Without an override the charger heartbeats at the interval the boot answer gave (30 s)."""
    sim = await site.charger()
    assert sim.heartbeat_interval_s == 30.0
    assert len(site.of(ChargerConnected)) == 1


# --- the catalogue itself -----------------------------------------------------------


def test_contradictory_quirks_are_refused() -> None:
    """A-only and W-only together, or a negative delay, are errors."""
    with pytest.raises(ValueError, match="both"):
        Quirks(a_only=True, w_only=True)
    with pytest.raises(ValueError, match="slow_ack_s"):
        Quirks(slow_ack_s=-1.0)


def test_quirks_from_a_scenario_mapping() -> None:
    """A mapping builds Quirks; an unknown name is refused with the known ones listed."""
    assert Quirks.from_mapping({"a_only": True, "slow_ack_s": 2}) == Quirks(
        a_only=True, slow_ack_s=2
    )
    with pytest.raises(ValueError, match="unknown quirks \\['teleports'\\]"):
        Quirks.from_mapping({"teleports": True})


def test_default_quirks_are_a_compliant_charger() -> None:
    """No quirk: both units reported, no refusal of any profile."""
    quirks = Quirks()
    assert quirks.rate_units == "Current,Power"
    profile = {"chargingProfilePurpose": "TxProfile", "chargingSchedule": {"chargingRateUnit": "W"}}
    assert quirks.refusal(profile) is None
    assert SimulatedChargePoint("cp-1", "ws://x/ocpp").quirks == quirks


# --- the charger's own ordering -----------------------------------------------------


async def test_a_tx_profile_right_behind_the_start_answer_is_taken() -> None:
    """A TxProfile the central system sends right behind its StartTransaction answer is Accepted.

    A charger reads the answer (its transaction id) before the next frame; the
    simulated one answered that frame before its plug-in had stored the session
    and rejected the first setpoint of every car the controller served at once.
    """
    answers: list[Any] = []

    async def central_system(ws: ServerConnection) -> None:
        async for frame in ws:
            message = json.loads(frame)
            if message[0] == 3:  # the answer to our SetChargingProfile
                answers.append(message[2])
                continue
            _, unique_id, action, _payload = message
            now = datetime.now(UTC).isoformat()
            reply = {
                "BootNotification": {"status": "Accepted", "currentTime": now, "interval": 30},
                "Heartbeat": {"currentTime": now},
                "StartTransaction": {"transactionId": 7, "idTagInfo": {"status": "Accepted"}},
            }.get(action, {})
            await ws.send(json.dumps([3, unique_id, reply]))
            if action == "StartTransaction":  # both frames in one go, as a busy server sends them
                payload = set_charging_profile_payload(tx(7), datetime.now(UTC))
                await ws.send(json.dumps([2, "p-1", "SetChargingProfile", payload]))

    async with serve(central_system, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")]) as cs:
        port = cs.sockets[0].getsockname()[1]
        sim = SimulatedChargePoint("cp-1", f"ws://127.0.0.1:{port}/ocpp")
        await sim.start()
        try:
            await sim.plug_in(1, EV())
            await wait_until(lambda: bool(answers))
            assert answers == [{"status": "Accepted"}]
            assert sim.offered_a(1) == 8.0
        finally:
            await sim.stop()
