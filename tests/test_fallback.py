"""Stepping down the profile purposes a charger accepts: TxProfile → TxDefault → ChargePointMax."""

from __future__ import annotations

import asyncio

from controller.clock import ManualClock
from controller.decide import Target
from controller.dispatch import Change, ChangeKind
from controller.dispatcher import Dispatcher
from controller.fallback import ProfileRoute, after_result, setpoint_command
from controller.model import CommandResult, CommandStatus, ProfileCommand, ProfilePurpose

TX = ProfilePurpose.TX
TX_DEFAULT = ProfilePurpose.TX_DEFAULT
CP_MAX = ProfilePurpose.CHARGE_POINT_MAX


def result(status: CommandStatus, purpose: ProfilePurpose = TX) -> CommandResult:
    """A result for a command of ``purpose``."""
    command = ProfileCommand("cp", 1, purpose, 16.0, 1, 11, 60.0, 7)
    return CommandResult(command, status, 0.01)


def test_two_refusals_step_down_once() -> None:
    """A purpose refused twice in a row is replaced by the next one down."""
    route = after_result(ProfileRoute(), result(CommandStatus.REJECTED), 60.0)
    assert route == ProfileRoute(TX, 1)
    route = after_result(route, result(CommandStatus.CALL_ERROR), 60.0)
    assert route == ProfileRoute(TX_DEFAULT, 0)


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
