"""Bad input on an OCPP 2.0.1 connection: each frame gets the OCPP-J 2.0.1 answer, nothing breaks.

A raw websocket client speaks 2.0.1 and sends broken frames; each gets the
CALLERROR 2.0.1 prescribes (its own codes: ``RpcFrameworkError``,
``MessageTypeNotSupported``, ``FormatViolation``, ``OccurrenceConstraintViolation``),
then a good Heartbeat still gets its answer on the same connection, and the
messages a station sends at boot are answered politely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from controller.model import ChargerDisconnected, ConnectorStatusChanged
from controller.ocpp.rpc import ErrorCode, FrameFault
from tests.ocpp_site import Site, answer_to, call_frame, running_site, wait_until

OCPP201 = Subprotocol("ocpp2.0.1")
NOW = "2026-01-01T00:00:00Z"
STATUS = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
EVENT = {
    "eventId": 1,
    "timestamp": NOW,
    "trigger": "Alerting",
    "actualValue": "Faulted",
    "eventNotificationType": "HardWiredNotification",
    "component": {"name": "Connector"},
    "variable": {"name": "AvailabilityState"},
}
RPC = ErrorCode.RPC_FRAMEWORK_ERROR
FORMAT = ErrorCode.FORMAT_VIOLATION

BAD_FRAMES: dict[str, tuple[str | bytes, ErrorCode, str]] = {
    "not JSON": ("this is not json", RPC, "-1"),
    "binary garbage": (b"\xff\xfe\x00", RPC, "-1"),
    "a JSON object": ('{"action": "Heartbeat"}', RPC, "-1"),
    "numeric unique id": ('[2, 17, "Heartbeat", {}]', RPC, "-1"),
    "type id unknown": ('[7, "m-1", "Heartbeat", {}]', ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, "m-1"),
    "CALL without payload": ('[2, "m-1", "Heartbeat"]', RPC, "m-1"),
    "payload an array": ('[2, "m-1", "Heartbeat", []]', FORMAT, "m-1"),
    "unknown action": (call_frame("Teleport", {}), ErrorCode.NOT_IMPLEMENTED, "m-1"),
    "a 1.6-only action": (call_frame("StartTransaction", {}), ErrorCode.NOT_IMPLEMENTED, "m-1"),
    "a CSMS-side action": (
        call_frame("RequestStartTransaction", {}),
        ErrorCode.NOT_SUPPORTED,
        "m-1",
    ),
    "unknown field": (call_frame("Heartbeat", {"colour": "red"}), FORMAT, "m-1"),
    "missing field": (
        call_frame("StatusNotification", {"timestamp": NOW}),
        ErrorCode.PROTOCOL_ERROR,
        "m-1",
    ),
    "bad enum": (
        call_frame("StatusNotification", {**STATUS, "connectorStatus": "Dancing"}),
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "m-1",
    ),
    "wrong type": (
        call_frame("NotifyEVChargingNeeds", {"evseId": "one", "chargingNeeds": {}}),
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        "m-1",
    ),
    "empty meter value list": (
        call_frame("MeterValues", {"evseId": 1, "meterValue": []}),
        ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
        "m-1",
    ),
}


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A central system on an ephemeral port."""
    async with running_site() as s:
        yield s


@pytest.fixture
async def raw(site: Site) -> AsyncIterator[ClientConnection]:
    """A raw 2.0.1 websocket to the site as cp-1, with one StatusNotification recorded."""
    async with connect(f"{site.url}/cp-1", subprotocols=[OCPP201]) as ws:
        answer = await answer_to(ws, call_frame("StatusNotification", STATUS, "s-1"))
        assert answer == [3, "s-1", {}]
        yield ws


async def heartbeat_answered(ws: ClientConnection) -> bool:
    """True when a Heartbeat still gets a CALLRESULT on this connection."""
    answer = await answer_to(ws, call_frame("Heartbeat", {}, "hb"))
    return answer is not None and answer[:2] == [3, "hb"] and "currentTime" in answer[2]


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frame_gets_its_2_0_1_call_error(
    site: Site, raw: ClientConnection, case: str
) -> None:
    """Each broken frame gets the 2.0.1 code; the link and what it recorded live on."""
    frame, code, unique_id = BAD_FRAMES[case]
    answer = await answer_to(raw, frame)
    assert answer is not None
    assert answer[:3] == [4, unique_id, code.value], answer
    assert len(answer[3]) <= 255
    assert await heartbeat_answered(raw)
    assert len(site.of(ConnectorStatusChanged)) == 1
    assert site.of(ChargerDisconnected) == []


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("NotifyReport", {"requestId": 1, "generatedAt": NOW, "seqNo": 0}),
        ("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": NOW}),
        ("LogStatusNotification", {"status": "Idle"}),
        ("FirmwareStatusNotification", {"status": "Idle"}),
        ("NotifyEvent", {"generatedAt": NOW, "seqNo": 0, "eventData": [EVENT]}),
        ("DataTransfer", {"vendorId": "acme"}),
        ("Authorize", {"idToken": {"idToken": "abc", "type": "ISO14443"}}),
    ],
)
async def test_boot_time_messages_are_answered_politely(
    raw: ClientConnection, action: str, payload: dict[str, object]
) -> None:
    """The messages a station sends around boot get a CALLRESULT, never a CALLERROR."""
    answer = await answer_to(raw, call_frame(action, payload, "p-1"))
    assert answer is not None
    assert answer[:2] == [3, "p-1"], answer


def test_1_6_faults_keep_their_1_6_names() -> None:
    """On a 1.6 link nothing changes: the 1.6 spellings stay."""
    fault = FrameFault(ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION, "x", "m-1")
    assert fault.in_version("1.6") is fault
    assert fault.in_version("2.0.1").code is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION


async def test_a_barrage_of_bad_frames_loses_no_station(site: Site) -> None:
    """A broken 2.0.1 client next to a good station: the station keeps its link."""
    station = await site.station()
    async with connect(f"{site.url}/cp-2", subprotocols=[OCPP201]) as ws:
        for frame, _, _ in BAD_FRAMES.values():
            await answer_to(ws, frame)
        assert await heartbeat_answered(ws)
    await wait_until(lambda: bool(site.of(ChargerDisconnected)))
    assert station.heartbeat_interval_s is not None
    assert site.server.link("cp-1") is not None
    assert [e.charger_id for e in site.of(ChargerDisconnected)] == ["cp-2"]
