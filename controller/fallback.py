"""How to give each charger a setpoint, learned from what it accepts. Pure.

Chargers differ: some reject a TxProfile (always, or just after
StartTransaction, before they have processed its answer), some accept only a
TxDefaultProfile on the connector, some only a ChargePointMaxProfile. Each
charger starts on the most precise purpose and steps down the ladder when a
purpose is refused twice in a row:

    TxProfile (the transaction)  →  TxDefaultProfile (the connector)  →  ChargePointMaxProfile

A refusal in the first seconds of a session does not count: that is the
StartTransaction race, and the same TxProfile is simply sent again. A
timeout does not count either: a silent charger has not refused anything.
Every live setpoint keeps its lease whichever purpose carries it, at a stack
level above the fail-safe default, so it still falls back by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.model import CommandResult, CommandStatus, ProfileCommand, ProfilePurpose

LADDER = (ProfilePurpose.TX, ProfilePurpose.TX_DEFAULT, ProfilePurpose.CHARGE_POINT_MAX)
REFUSALS_TO_STEP_DOWN = 2
START_RACE_S = 5.0
"""A TxProfile refused this soon after the session started is the StartTransaction race."""

SETPOINT_STACK_LEVEL = 1  # above the fail-safe TxDefaultProfile at stack level 0
PROFILE_ID_BASE = {
    ProfilePurpose.TX: 10,
    ProfilePurpose.TX_DEFAULT: 20,
    ProfilePurpose.CHARGE_POINT_MAX: 30,
}


@dataclass(frozen=True, slots=True)
class ProfileRoute:
    """The purpose that carries a charger's setpoints, and refusals of it in a row."""

    purpose: ProfilePurpose = ProfilePurpose.TX
    refusals: int = 0


def setpoint_command(
    route: ProfileRoute,
    charger_id: str,
    connector_id: int,
    transaction_id: int,
    limit_a: float,
    lease_s: float,
) -> ProfileCommand:
    """The command that sets ``limit_a`` on a connector by the charger's route.

    For ChargePointMaxProfile ``limit_a`` must already be the charger's total.
    """
    purpose = route.purpose
    connector = 0 if purpose is ProfilePurpose.CHARGE_POINT_MAX else connector_id
    return ProfileCommand(
        charger_id=charger_id,
        connector_id=connector,
        purpose=purpose,
        limit_a=limit_a,
        stack_level=SETPOINT_STACK_LEVEL,
        profile_id=PROFILE_ID_BASE[purpose] + connector,
        lease_s=lease_s,
        transaction_id=transaction_id if purpose is ProfilePurpose.TX else None,
    )


def after_result(route: ProfileRoute, result: CommandResult, session_age_s: float) -> ProfileRoute:
    """The route after one command's result: reset on success, step down on repeated refusal."""
    if result.ok:
        return replace(route, refusals=0)
    refused = result.status in (CommandStatus.REJECTED, CommandStatus.CALL_ERROR)
    if not refused:
        return route
    if route.purpose is ProfilePurpose.TX and session_age_s < START_RACE_S:
        return route
    refusals = route.refusals + 1
    position = LADDER.index(route.purpose)
    if refusals >= REFUSALS_TO_STEP_DOWN and position + 1 < len(LADDER):
        return ProfileRoute(LADDER[position + 1], 0)
    return replace(route, refusals=refusals)
