"""Stepping down the profile purposes a charger accepts: TxProfile → TxDefault → ChargePointMax."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controller.clock import ManualClock, SystemClock
from controller.dispatch import Change, ChangeKind, Held
from controller.dispatcher import Dispatcher
from controller.fallback import (
    ProfileRoute,
    after_result,
    maybe_applied,
    refused,
    setpoint_command,
)
from controller.model import CommandResult, CommandStatus, ProfileCommand, ProfilePurpose
from controller.targets import Target
from tests.ocpp_site import Site, running_site
from tests.test_ocpp_server import raw_charger

TX = ProfilePurpose.TX
TX_DEFAULT = ProfilePurpose.TX_DEFAULT
CP_MAX = ProfilePurpose.CHARGE_POINT_MAX


def result(status: CommandStatus, purpose: ProfilePurpose = TX, detail: str = "") -> CommandResult:
    """A result for a command of ``purpose``."""
    command = ProfileCommand("cp", 1, purpose, 16.0, 1, 11, 60.0, 7)
    return CommandResult(command, status, 0.01, detail)


def call_error(code: str) -> CommandResult:
    """A CALLERROR answer with ``code``, as the OCPP link records it."""
    return result(CommandStatus.CALL_ERROR, detail=f"{code}: as the charger said")


def test_two_refusals_step_down_once() -> None:
    """A purpose refused twice in a row is replaced by the next one down: a Rejected status, or
    a CALLERROR saying the charger does not support it."""
    route = after_result(ProfileRoute(), result(CommandStatus.REJECTED), 60.0)
    assert route == ProfileRoute(TX, 1)
    route = after_result(route, call_error("NotSupported"), 60.0)
    assert route == ProfileRoute(TX_DEFAULT, 0)


def test_a_call_error_is_a_refusal_or_may_have_been_applied_never_both() -> None:
    """A CALLERROR that says the charger cannot take the call as sent (it does not support or
    implement it, or cannot read it) is a refusal, not applied; one raised while it processed
    the call (InternalError, GenericError, a code OCPP does not define) may have been applied,
    and is no refusal: stepping down would leave a TxProfile it kept overruling the
    TxDefaultProfiles sent next. A timeout may have been applied; Rejected is a refusal."""
    for code in ("NotSupported", "NotImplemented", "FormationViolation", "ProtocolError"):
        assert refused(call_error(code)), code
        assert not maybe_applied(call_error(code)), code
    for code in ("InternalError", "GenericError", "SecurityError"):
        assert maybe_applied(call_error(code)), code
        assert not refused(call_error(code)), code
    undefined = result(CommandStatus.CALL_ERROR, detail="Error code 'Busy' is not defined")
    assert maybe_applied(undefined)
    assert not refused(undefined)
    assert maybe_applied(result(CommandStatus.TIMEOUT))
    assert refused(result(CommandStatus.REJECTED))
    assert not maybe_applied(result(CommandStatus.REJECTED))
    route = ProfileRoute(TX, 1)
    assert after_result(route, call_error("InternalError"), 60.0) == route


def test_refusal_just_after_start_is_the_race_not_a_refusal() -> None:
    """A TxProfile refused in the first seconds of a session is sent again, not given up."""
    route = ProfileRoute()
    for _ in range(5):
        route = after_result(route, result(CommandStatus.REJECTED), 1.0)
    assert route == ProfileRoute()


def test_timeouts_and_success_do_not_step_down() -> None:
    """Silence is not a refusal; an acceptance clears the count."""
    route = after_result(ProfileRoute(TX, 1), result(CommandStatus.TIMEOUT), 60.0)
    assert route == ProfileRoute(TX, 1)
    assert after_result(route, result(CommandStatus.ACCEPTED), 60.0) == ProfileRoute(TX, 0)


def test_the_last_purpose_is_kept() -> None:
    """ChargePointMaxProfile is the bottom of the ladder: refusals are counted, not stepped."""
    route = ProfileRoute(CP_MAX, 0)
    for _ in range(3):
        route = after_result(route, result(CommandStatus.REJECTED, CP_MAX), 60.0)
    assert route.purpose is CP_MAX


def test_commands_by_route() -> None:
    """Each purpose goes where the spec wants it, with a lease and a stack above the fail-safe."""
    tx = setpoint_command(ProfileRoute(TX), "cp", 2, 7, 16.0, 120.0)
    assert (tx.connector_id, tx.transaction_id, tx.stack_level, tx.lease_s) == (2, 7, 1, 120.0)
    default = setpoint_command(ProfileRoute(TX_DEFAULT), "cp", 2, 7, 16.0, 120.0)
    assert (default.connector_id, default.transaction_id) == (2, None)
    cp_max = setpoint_command(ProfileRoute(CP_MAX), "cp", 2, 7, 16.0, 120.0)
    assert (cp_max.connector_id, cp_max.purpose) == (0, CP_MAX)


class RefusingLink:
    """A charger port that refuses the purposes it is given (a fake of the OCPP link)."""

    charger_id = "cp"

    def __init__(self, refuses: set[ProfilePurpose]) -> None:
        self.refuses = refuses
        self.sent: list[ProfileCommand] = []

    async def prepare(self) -> None:
        """Nothing to learn."""

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        """Refuse or accept at once."""
        self.sent.append(command)
        refused = command.purpose in self.refuses
        status = CommandStatus.REJECTED if refused else CommandStatus.ACCEPTED
        return CommandResult(command, status, 0.001)


async def test_dispatcher_finds_what_a_charger_accepts() -> None:
    """A charger that refuses TxProfile and TxDefaultProfile still gets its setpoint, as a
    ChargePointMaxProfile, in the same round; later setpoints go straight there."""
    clock = ManualClock()
    link = RefusingLink({TX, TX_DEFAULT})
    dispatcher = Dispatcher(lambda _cid: link, clock, failsafe_a=6.0, lease_s=60.0)
    target = Target("cp", 1, 7, 16.0, "site L1", started_at=clock.monotonic() - 60)
    dispatcher.submit([Change("cp/1", target, 6.0, ChangeKind.INCREASE)])
    await dispatcher.drain()
    assert [c.purpose for c in link.sent] == [TX, TX, TX_DEFAULT, TX_DEFAULT, CP_MAX]
    assert dispatcher.held["cp/1"].limit_a == 16.0
    link.sent.clear()
    target = Target("cp", 1, 7, 10.0, "site L1", started_at=clock.monotonic() - 60)
    dispatcher.submit([Change("cp/1", target, 16.0, ChangeKind.DECREASE)])
    await asyncio.wait_for(dispatcher.drain(), 5)
    assert [(c.purpose, c.limit_a) for c in link.sent] == [(CP_MAX, 10.0)]


KEY = "raw-1/1"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with running_site(call_timeout_s=1.0) as running:
        yield running


def failing_tx_profiles(code: str) -> Any:
    """A charger that answers every TxProfile with a CALLERROR ``code`` and accepts the rest."""

    def respond(message: list[Any]) -> list[Any]:
        profile = message[3].get("csChargingProfiles", {})
        if profile.get("chargingProfilePurpose") == "TxProfile":
            return [4, message[1], code, "as the firmware says", {}]
        return [3, message[1], {"status": "Accepted"}]

    return respond


async def _increase(site: Site, respond: Any) -> tuple[Dispatcher, list[str]]:
    """A charger holding 6 A for transaction 5, answering as ``respond`` does, sent an
    increase to 16 A over a real websocket. The dispatcher and the purposes sent."""
    sent: list[str] = []

    def recording(message: list[Any]) -> list[Any]:
        sent.append(message[3]["csChargingProfiles"]["chargingProfilePurpose"])
        return respond(message)

    charger = await raw_charger(site, recording)
    clock = SystemClock()
    dispatcher = Dispatcher(site.server.link, clock, 6.0, 120.0)
    long_ago = clock.monotonic() - 1000.0
    dispatcher.held[KEY] = Held(6.0, long_ago, 5, changed_at=long_ago)
    target = Target("raw-1", 1, 5, 16.0, "test", started_at=long_ago)
    try:
        dispatcher.submit([Change(KEY, target, 6.0, ChangeKind.INCREASE)])
        await asyncio.wait_for(dispatcher.drain(), 10)
    finally:
        await dispatcher.close()
        await charger.close()
    return dispatcher, sent


@pytest.mark.parametrize("code", ["NotSupported", "NotImplemented"])
async def test_a_charger_that_cannot_do_tx_profiles_steps_down(site: Site, code: str) -> None:
    """A TxProfile answered with a CALLERROR that says the charger cannot do it is refused
    twice and the setpoint goes as a TxDefaultProfile in the same round: accepted, held."""
    dispatcher, sent = await _increase(site, failing_tx_profiles(code))
    assert sent == ["TxProfile", "TxProfile", "TxDefaultProfile"]
    assert dispatcher.routes["raw-1"] == ProfileRoute(TX_DEFAULT, 0)
    held = dispatcher.held[KEY]
    assert (held.limit_a, held.unsure) == (16.0, False)


@pytest.mark.parametrize("code", ["InternalError", "GenericError"])
async def test_a_failing_tx_profile_may_hold_and_is_not_stepped_down(site: Site, code: str) -> None:
    """A TxProfile answered with an InternalError or GenericError may be stored: the charger
    counts as holding up to 16 A (unsure, no lease renewed) and keeps its TxProfile route, to
    be tried again at the next decision. It stepped down before, and the TxDefaultProfile it
    then accepted wiped that maybe: a TxProfile it did keep overrules it."""
    dispatcher, sent = await _increase(site, failing_tx_profiles(code))
    assert sent == ["TxProfile"]
    assert dispatcher.routes["raw-1"] == ProfileRoute(TX, 0)
    held = dispatcher.held[KEY]
    assert (held.limit_a, held.unsure, held.acked_at) == (16.0, True, -math.inf)


async def test_a_charger_without_smart_charging_holds_what_it_held(site: Site) -> None:
    """A charger answering NotImplemented to every SetChargingProfile applied none of them: it
    still holds its 6 A, not the 16 A it was sent (which counted as maybe held before)."""

    def respond(message: list[Any]) -> list[Any]:
        return [4, message[1], "NotImplemented", "no smart charging here", {}]

    dispatcher, sent = await _increase(site, respond)
    assert sent[-1] == "ChargePointMaxProfile"
    held = dispatcher.held[KEY]
    assert (held.limit_a, held.unsure) == (6.0, False)
