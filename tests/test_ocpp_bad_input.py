"""Bad input on an OCPP 1.6J connection: each frame gets the OCPP-J 1.6 answer, nothing breaks.

A raw websocket client plays a charger that sends broken frames; after
each, a good Heartbeat must still get its answer on the same connection,
the events recorded before must all still be there, and no disconnect may
be reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from structlog.testing import capture_logs
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from controller.clock import SystemClock
from controller.model import (
    ChargerBooted,
    ChargerDisconnected,
    CommandStatus,
    ConnectorStatusChanged,
    Event,
    ProfileCommand,
    ProfilePurpose,
)
from controller.ocpp.rpc import ErrorCode, Frame, FrameFault, parse_frame, schema_code
from controller.ocpp.server import OcppServer
from controller.ocpp.v16 import ChargePointConnection, on_action
from tests.ocpp_site import Site, answer_to, call_frame, running_site, wait_until

OCPP16 = Subprotocol("ocpp1.6")
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}

FORMATION = ErrorCode.FORMATION_VIOLATION
PROPERTY = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
TYPE = ErrorCode.TYPE_CONSTRAINT_VIOLATION

# frame sent → (error code, unique id of the CALLERROR)
SAMPLE = {"timestamp": "2026-11-21T18:00:00Z", "sampledValue": [{"value": "7.5"}]}

BAD_FRAMES: dict[str, tuple[str | bytes, ErrorCode, str]] = {
    "not JSON": ("this is not json", FORMATION, "-1"),
    "truncated JSON": ('[2, "m-1", "Heartbeat", {', FORMATION, "-1"),
    "binary garbage": (b"\xff\xfe\x00", FORMATION, "-1"),
    "nested too deep": ("[" * 100_000, FORMATION, "-1"),
    "a JSON object": ('{"action": "Heartbeat"}', FORMATION, "-1"),
    "an empty array": ("[]", FORMATION, "-1"),
    "no unique id": ("[2]", FORMATION, "-1"),
    "numeric unique id": ('[2, 17, "Heartbeat", {}]', FORMATION, "-1"),
    "type id a string": ('["2", "m-1", "Heartbeat", {}]', FORMATION, "m-1"),
    "type id unknown": ('[7, "m-1", "Heartbeat", {}]', PROPERTY, "m-1"),
    "CALL without payload": ('[2, "m-1", "Heartbeat"]', ErrorCode.PROTOCOL_ERROR, "m-1"),
    "CALL with extra element": ('[2, "m-1", "Heartbeat", {}, 1]', FORMATION, "m-1"),
    "action not a string": ('[2, "m-1", 42, {}]', FORMATION, "m-1"),
    "payload an array": ('[2, "m-1", "Heartbeat", []]', FORMATION, "m-1"),
    "unknown action": (call_frame("BakeCake", {}), ErrorCode.NOT_IMPLEMENTED, "m-1"),
    "1.6 action not served": (call_frame("Reset", {}), ErrorCode.NOT_SUPPORTED, "m-1"),
    "required field missing": (
        call_frame("StatusNotification", {"connectorId": 1, "errorCode": "NoError"}),
        ErrorCode.PROTOCOL_ERROR,
        "m-1",
    ),
    "wrong type": (call_frame("StatusNotification", {**STATUS, "connectorId": "one"}), TYPE, "m-1"),
    "string too long": (
        call_frame("StatusNotification", {**STATUS, "info": "x" * 51}),
        TYPE,
        "m-1",
    ),
    "value not in enum": (
        call_frame("StatusNotification", {**STATUS, "status": "Exploded"}),
        PROPERTY,
        "m-1",
    ),
    "unknown field": (
        call_frame("StatusNotification", {**STATUS, "colour": "red"}),
        FORMATION,
        "m-1",
    ),
    "empty list": (
        call_frame("MeterValues", {"connectorId": 1, "meterValue": []}),
        ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
        "m-1",
    ),
    "meter values of the wrong type": (
        call_frame("MeterValues", {"connectorId": "one", "meterValue": [SAMPLE]}),
        TYPE,
        "m-1",
    ),
    "meter values without a timestamp": (
        call_frame("MeterValues", {"connectorId": 1, "meterValue": [{"sampledValue": []}]}),
        ErrorCode.PROTOCOL_ERROR,
        "m-1",
    ),
}


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A running central system."""
    async with running_site() as running:
        yield running


@pytest.fixture
async def raw(site: Site) -> AsyncIterator[ClientConnection]:
    """A bare websocket charger ``raw-1`` that has booted and reported connector 1 Available."""
    async with connect(f"{site.url}/raw-1", subprotocols=[OCPP16]) as ws:
        boot = {"chargePointVendor": "Raw", "chargePointModel": "Bare"}
        assert (await answer_to(ws, call_frame("BootNotification", boot, "boot")))[0] == 3
        assert (await answer_to(ws, call_frame("StatusNotification", STATUS, "st")))[0] == 3
        yield ws


async def assert_still_serving(site: Site, ws: ClientConnection, before: list[Any]) -> None:
    """A Heartbeat is answered, earlier events are all kept, and no disconnect was reported."""
    answer = await answer_to(ws, call_frame("Heartbeat", {}, "hb"))
    assert answer is not None
    assert answer[:2] == [3, "hb"]
    assert "currentTime" in answer[2]
    assert site.events[: len(before)] == before
    assert not site.of(ChargerDisconnected)


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frame_gets_its_call_error(site: Site, raw: ClientConnection, case: str) -> None:
    """Each kind of bad frame gets a CALLERROR with the 1.6 code and id; the link serves on."""
    frame, code, unique_id = BAD_FRAMES[case]
    before = list(site.events)
    with capture_logs() as logs:
        answer = await answer_to(raw, frame)
    assert answer is not None
    assert answer[:3] == [4, unique_id, code.value]
    assert isinstance(answer[3], str)
    assert 0 < len(answer[3]) <= 255
    assert answer[4] == {}
    [entry] = [e for e in logs if e["event"] == "ocpp_bad_frame"]
    assert (entry["charger_id"], entry["code"], entry["answered"]) == ("raw-1", code.value, True)
    assert entry["reason"] == answer[3]
    await assert_still_serving(site, raw, before)


@pytest.mark.parametrize(
    "frame",
    [
        '[3, "nobody-asked", {}]',
        '[4, "nobody-asked", "GenericError", "oops", {}]',
        '[3, "short"]',
        '[4, "x", 5, "description", {}]',
        "[3]",
    ],
)
async def test_answers_are_never_answered(site: Site, raw: ClientConnection, frame: str) -> None:
    """A stray or broken CALLRESULT / CALLERROR is logged and dropped: no answer, link serves on."""
    before = list(site.events)
    with capture_logs() as logs:
        assert await answer_to(raw, frame, wait_s=0.3) is None
    assert {e["event"] for e in logs} & {"ocpp_bad_frame", "ocpp_unexpected_answer"}
    assert all(e["charger_id"] == "raw-1" for e in logs if e["event"].startswith("ocpp_"))
    await assert_still_serving(site, raw, before)


async def test_a_barrage_of_bad_frames_loses_nothing(site: Site, raw: ClientConnection) -> None:
    """All bad frames in a row on one link: each answered, then a good message is still recorded."""
    before = list(site.events)
    for frame, code, _ in BAD_FRAMES.values():
        answer = await answer_to(raw, frame)
        assert answer is not None
        assert answer[2] == code.value
    status = {**STATUS, "status": "Preparing"}
    assert (await answer_to(raw, call_frame("StatusNotification", status, "late")))[0] == 3
    await assert_still_serving(site, raw, before)
    assert site.of(ConnectorStatusChanged)[-1].status == "Preparing"


async def test_the_rest_of_the_site_keeps_running(site: Site, raw: ClientConnection) -> None:
    """While one charger sends garbage, another is commanded as usual."""
    sim = await site.charger("cp-1")

    async def garbage() -> None:
        for frame, _, _ in BAD_FRAMES.values():
            await raw.send(frame)
            await raw.recv()  # read each answer, or websockets stops reading the link

    command = ProfileCommand("cp-1", 0, ProfilePurpose.TX_DEFAULT, 6.0, 0, 1)
    result, _ = await asyncio.gather(site.link("cp-1").set_profile(command), garbage())
    assert result.status is CommandStatus.ACCEPTED
    assert sim.offered_a(1) == 6.0
    await wait_until(lambda: site.server.connected == {"cp-1", "raw-1"})


async def test_vendor_and_status_notifications_are_acknowledged(
    site: Site, raw: ClientConnection
) -> None:
    """DataTransfer gets UnknownVendorId; firmware and diagnostics status are acknowledged."""
    answer = await answer_to(raw, call_frame("DataTransfer", {"vendorId": "acme"}, "dt"))
    assert answer == [3, "dt", {"status": "UnknownVendorId"}]
    firmware = call_frame("FirmwareStatusNotification", {"status": "Idle"}, "fw")
    assert await answer_to(raw, firmware) == [3, "fw", {}]
    diagnostics = call_frame("DiagnosticsStatusNotification", {"status": "Idle"}, "dg")
    assert await answer_to(raw, diagnostics) == [3, "dg", {}]


async def test_a_failing_handler_answers_internal_error_and_the_link_lives() -> None:
    """A sink that raises (a bug downstream) costs one InternalError answer, not the connection."""
    events: list[Event] = []

    def sink(event: Event) -> None:
        if isinstance(event, ConnectorStatusChanged | ChargerBooted):
            raise RuntimeError("state bug")
        events.append(event)

    server = OcppServer(sink, SystemClock(), "raw-1".__eq__)
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}/ocpp/raw-1"
        async with connect(url, subprotocols=[OCPP16]) as ws:
            with capture_logs() as logs:
                boot = {"chargePointVendor": "Raw", "chargePointModel": "Bare"}
                booted = await answer_to(ws, call_frame("BootNotification", boot, "b"))
                status = await answer_to(ws, call_frame("StatusNotification", STATUS, "s"))
                heartbeat = await answer_to(ws, call_frame("Heartbeat", {}, "h"))
            assert booted[:2] == [3, "b"]  # the answer left before the @after handler failed
            assert status[:3] == [4, "s", "InternalError"]
            assert heartbeat[:2] == [3, "h"]
            assert any(e["event"] == "ocpp_after_handler_failed" for e in logs)
            assert not [e for e in events if isinstance(e, ChargerDisconnected)]
    finally:
        await server.stop()


async def test_an_answer_that_fails_its_schema_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our own bug (an answer the schema refuses) answers InternalError, logged, link kept."""

    @on_action(Action.heartbeat)
    def broken(self: ChargePointConnection, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=12)  # not a date-time string

    monkeypatch.setattr(ChargePointConnection, "_on_heartbeat", broken)
    async with running_site() as site, connect(f"{site.url}/raw-1", subprotocols=[OCPP16]) as ws:
        with capture_logs() as logs:
            answer = await answer_to(ws, call_frame("Heartbeat", {}, "h"))
        assert answer == [4, "h", "InternalError", "Heartbeat failed here", {}]
        assert any(e["event"] == "ocpp_answer_failed" for e in logs)
        status = await answer_to(ws, call_frame("StatusNotification", STATUS, "s"))
        assert status == [3, "s", {}]


# --- the pure rules ------------------------------------------------------------


def test_parse_frame_reads_the_three_message_types() -> None:
    """Well-formed CALL, CALLRESULT and CALLERROR frames come back as Frames."""
    assert parse_frame('[2, "a", "Heartbeat", {}]') == Frame(2, "a", action="Heartbeat")
    assert parse_frame('[3, "b", {"x": 1}]') == Frame(3, "b", payload={"x": 1})
    error = parse_frame('[4, "c", "NotSupported", "no", {"k": 1}]')
    assert error == Frame(
        4, "c", error_code="NotSupported", error_description="no", error_details={"k": 1}
    )
    lenient = parse_frame('[4, "c", "NotSupported", "no"]')
    assert isinstance(lenient, Frame)
    assert lenient.error_details == {}


def test_call_error_json_is_an_ocpp_j_frame() -> None:
    """A fault becomes [4, id, code, description, {}]; an answer's fault becomes nothing."""
    fault = FrameFault(ErrorCode.PROTOCOL_ERROR, "x" * 400, "u-1")
    frame = fault.call_error()
    assert frame is not None
    message = json.loads(frame)
    assert message[:3] == [4, "u-1", "ProtocolError"]
    assert len(message[3]) == 255
    assert FrameFault(ErrorCode.FORMATION_VIOLATION, "bad", None).call_error() is None


def test_unlisted_schema_keywords_are_formation_violations() -> None:
    """A schema keyword without its own code maps to FormationViolation, the 1.6 spelling."""
    assert schema_code("dependencies") is ErrorCode.FORMATION_VIOLATION
    assert ErrorCode.FORMATION_VIOLATION.value == "FormationViolation"
