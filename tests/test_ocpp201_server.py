"""OCPP 2.0.1 on the central system's endpoint, over real websockets on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerMeasurement,
    CommandStatus,
    ConnectorStatusChanged,
    ExternalLimitChanged,
    ProfileCommand,
    ProfilePurpose,
    SessionNeeds,
    SessionStarted,
    SessionStopped,
)
from controller.ocpp.v16 import ChargePointConnection
from controller.ocpp.v201 import ChargingStationConnection
from hil.ev import EV
from hil.quirks import Quirks
from tests.ocpp_site import Site, running_site, wait_until


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A central system on an ephemeral port that sets a 1 s sample interval on connect."""
    async with running_site(meter_values_interval_s=1) as s:
        yield s


def failsafe(limit_a: float = 6.0) -> ProfileCommand:
    """The fail-safe default the dispatcher installs on every charger."""
    return ProfileCommand("cp-1", 0, ProfilePurpose.TX_DEFAULT, limit_a, 0, 1)


def tx_profile(transaction_id: int, limit_a: float, lease_s: float = 60.0) -> ProfileCommand:
    """A leased TxProfile setpoint on EVSE 1."""
    return ProfileCommand(
        "cp-1", 1, ProfilePurpose.TX, limit_a, 1, 11, lease_s, transaction_id=transaction_id
    )


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (["ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
        (["ocpp2.1", "ocpp2.0.1"], "ocpp2.0.1"),
    ],
)
async def test_the_chargers_first_supported_version_is_chosen(
    site: Site, offer: list[str], expected: str
) -> None:
    """The charger's order of preference decides; the matching link class serves it."""
    async with connect(f"{site.url}/cp-1", subprotocols=[Subprotocol(p) for p in offer]) as ws:
        assert ws.subprotocol == expected
        await wait_until(lambda: site.server.link("cp-1") is not None)
        link_class = ChargingStationConnection if expected == "ocpp2.0.1" else ChargePointConnection
        assert isinstance(site.server.link("cp-1"), link_class)
    [connected] = site.of(ChargerConnected)
    assert connected.protocol == expected


@pytest.mark.parametrize("offer", [None, ["ocpp2.1"], ["ocpp1.5", "json"]])
async def test_a_client_offering_no_version_we_speak_is_refused(
    site: Site, offer: list[str] | None
) -> None:
    """No common version: HTTP 400 at the handshake, and no connection is registered."""
    protocols = [Subprotocol(p) for p in offer] if offer else None
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{site.url}/cp-1", subprotocols=protocols)
    assert refused.value.response.status_code == 400
    assert site.server.connected == frozenset()


async def test_boot_learns_the_station_and_sets_its_sampling(site: Site) -> None:
    """BootNotification becomes ChargerBooted; prepare() reads SmartChargingCtrlr and sets
    SampledDataCtrlr over GetVariables/SetVariables; the fail-safe default is accepted."""
    station = await site.station(quirks=Quirks(w_only=True))
    await wait_until(lambda: bool(site.of(ChargerBooted)))
    [booted] = site.of(ChargerBooted)
    assert (booted.vendor, booted.model) == ("Headroom", "SimAC201")
    assert [e.status for e in site.of(ConnectorStatusChanged)] == ["Available"]
    link = site.server.link("cp-1")
    assert isinstance(link, ChargingStationConnection)
    await link.prepare()
    assert link.rate_unit == "W"
    assert link.capabilities["SmartChargingCtrlr.ProfileStackLevel"] == "8"
    assert ("SampledDataCtrlr", "TxUpdatedInterval", "1") in station.side.variables_set
    measurands = dict((v, value) for _, v, value in station.side.variables_set)
    assert "Current.Import" in measurands["TxUpdatedMeasurands"]
    result = await link.set_profile(failsafe(6.0))
    assert result.status is CommandStatus.ACCEPTED
    [(evse, profile)] = station.received_201
    assert evse == 0
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    [schedule] = profile["chargingSchedule"]  # a list in 2.0.1, each schedule with an id
    assert schedule["id"] == 1
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"][0] == {
        "startPeriod": 0,
        "limit": 6.0 * 230 * 3,
        "numberPhases": 3,
    }
    assert station.offered_a(1) == pytest.approx(6.0)


async def test_a_transaction_becomes_a_session_with_meter_values(site: Site) -> None:
    """Started/Updated/Ended map the station's string id to one int of ours; the meter
    values (kW, A per phase, Wh) reach the events in W, A and Wh."""
    station = await site.station(meter_interval_s=0.2)
    await station.plug_in(1, EV(max_current_a=16.0, response_delay_s=0.0))
    await wait_until(lambda: len(site.of(ChargerMeasurement)) >= 3)
    [started] = site.of(SessionStarted)
    assert started.connector_id == 1
    link = site.server.link("cp-1")
    assert isinstance(link, ChargingStationConnection)
    measured = [m for m in site.of(ChargerMeasurement) if m.current_a[0]]
    await wait_until(lambda: any(m.current_a[0] for m in site.of(ChargerMeasurement)))
    measured = [m for m in site.of(ChargerMeasurement) if m.current_a[0]]
    assert measured[-1].current_a == (16.0, 16.0, 16.0)
    assert measured[-1].power_w == pytest.approx(16 * 230 * 3, rel=1e-3)
    assert measured[-1].transaction_id == started.transaction_id
    await station.unplug(1)
    await wait_until(lambda: bool(site.of(SessionStopped)))
    [stopped] = site.of(SessionStopped)
    assert stopped.transaction_id == started.transaction_id
    assert stopped.reason == "EVDisconnected"
    assert stopped.meter_stop_wh >= started.meter_start_wh


async def test_a_tx_profile_carries_the_stations_transaction_id(site: Site) -> None:
    """A leased TxProfile goes out with the station's own string id and a validTo; the EV
    follows it; a TxProfile for a transaction not open here is refused without a call."""
    station = await site.station()
    await station.plug_in(1, EV(response_delay_s=0.0))
    await wait_until(lambda: bool(site.of(SessionStarted)))
    ours = site.of(SessionStarted)[0].transaction_id
    link = site.server.link("cp-1")
    assert isinstance(link, ChargingStationConnection)
    result = await link.set_profile(tx_profile(ours, 10.0))
    assert result.ok, result.detail
    _, profile = station.received_201[-1]
    assert profile["transactionId"] == station.transaction_name(1)
    assert "validTo" in profile
    assert profile["chargingSchedule"][0]["duration"] >= 60
    assert station.offered_a(1) == pytest.approx(10.0)
    unknown = await link.set_profile(tx_profile(ours + 1000, 10.0))
    assert unknown.status is CommandStatus.REJECTED
    assert "not open" in unknown.detail


async def test_ev_charging_needs_reach_the_sink(site: Site) -> None:
    """NotifyEVChargingNeeds is Accepted and becomes SessionNeeds(source="ev"), after the
    one the TransactionEvent's numberOfPhasesUsed gave."""
    station = await site.station()
    await station.plug_in(1, EV())
    departure = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    status = await station.notify_ev_charging_needs(1, departure, 20_000, 6, 16)
    assert status == "Accepted"
    from_transaction, needs = site.of(SessionNeeds)
    assert (from_transaction.phases, from_transaction.departure_at) == (3, None)
    assert needs.source == "ev"
    assert needs.connector_id == 1
    assert needs.departure_at == departure.timestamp()
    assert (needs.energy_wh, needs.ev_min_a, needs.ev_max_a) == (20_000, 6, 16)
    assert needs.phases == 3  # AC_three_phase


async def test_charging_limits_are_recorded_and_cleared(site: Site) -> None:
    """NotifyChargingLimit in W becomes A per phase; ClearedChargingLimit clears it."""
    station = await site.station()
    await station.notify_charging_limit(None, 6900.0, unit="W", source="SO")
    await station.cleared_charging_limit(None, source="SO")
    first, cleared = site.of(ExternalLimitChanged)
    assert (first.evse_id, first.source) == (0, "SO")
    assert first.limit_a == pytest.approx(10.0)
    assert cleared.limit_a is None


async def test_reconnect_keeps_the_sessions_id(site: Site) -> None:
    """A station that reconnects mid-session keeps our id for its transaction."""
    station = await site.station(meter_interval_s=0.2)
    await station.plug_in(1, EV(response_delay_s=0.0))
    await wait_until(lambda: bool(site.of(SessionStarted)))
    ours = site.of(SessionStarted)[0].transaction_id
    await station.reconnect()
    before = len(site.of(ChargerMeasurement))
    await wait_until(lambda: len(site.of(ChargerMeasurement)) >= before + 2)
    assert len(site.of(ChargerConnected)) == 2
    assert {m.transaction_id for m in site.of(ChargerMeasurement)} == {ours}
