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

What a refusal is (:func:`refused`), and what may have been applied
(:func:`maybe_applied`, which :mod:`controller.dispatcher` counts as the most
the charger may hold), are one question. A ``Rejected`` (or ``NotSupported``)
status is a refusal. A CALLERROR is one when its code says the charger cannot
take that call as sent: ``NotSupported``/``NotImplemented`` (chargers answer
so for a purpose they do not implement) or a payload it could not read
(``FormationViolation``, ``PropertyConstraintViolation``, …: OCPP-J answers
those before the call is processed), :data:`REFUSING_CALL_ERRORS`. Any other
CALLERROR (``InternalError``, ``GenericError``, ``SecurityError``, a code
OCPP does not define) failed while the charger processed the call: it may be
transient and the profile may be stored, so it is no refusal, like a
timeout. Stepping down after it would be unsafe besides: a TxProfile the
charger did keep overrules every TxDefaultProfile for the transaction (OCPP
1.6 and 2.0.1), so the setpoints sent by the purpose below would go
unheeded until its lease ran out. A charger that keeps failing so is
escalated in the log; its sessions are planned at the most it may hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.model import CommandResult, CommandStatus, ProfileCommand, ProfilePurpose

LADDER = (ProfilePurpose.TX, ProfilePurpose.TX_DEFAULT, ProfilePurpose.CHARGE_POINT_MAX)
REFUSING_CALL_ERRORS = frozenset(
    {
        "NotSupported",
        "NotImplemented",
        "FormationViolation",
        "FormatViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",  # OCPP 1.6's spelling
        "OccurrenceConstraintViolation",
        "TypeConstraintViolation",
        "ProtocolError",
    }
)
"""CALLERROR codes that say the charger cannot take the call as sent: it was not applied."""
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


def call_error_code(result: CommandResult) -> str:
    """The CALLERROR's code (``""`` for another status): the detail begins with it
    (:func:`controller.ocpp.commands.send_profile`; a code OCPP does not define has none)."""
    if result.status is not CommandStatus.CALL_ERROR:
        return ""
    code, colon, _ = result.detail.partition(":")
    return code if colon else ""


def refused(result: CommandResult) -> bool:
    """The charger refused the profile: it did not apply it, and the refusal counts."""
    return result.status is CommandStatus.REJECTED or (
        call_error_code(result) in REFUSING_CALL_ERRORS
    )


def maybe_applied(result: CommandResult) -> bool:
    """Unknown whether the charger applied the profile: no answer, or a CALLERROR raised
    while it processed the call."""
    return result.status is CommandStatus.TIMEOUT or (
        result.status is CommandStatus.CALL_ERROR and not refused(result)
    )


def after_result(route: ProfileRoute, result: CommandResult, session_age_s: float) -> ProfileRoute:
    """The route after one command's result: reset on success, step down on repeated refusal."""
    if result.ok:
        return replace(route, refusals=0)
    if not refused(result):
        return route
    if route.purpose is ProfilePurpose.TX and session_age_s < START_RACE_S:
        return route
    refusals = route.refusals + 1
    position = LADDER.index(route.purpose)
    if refusals >= REFUSALS_TO_STEP_DOWN and position + 1 < len(LADDER):
        return ProfileRoute(LADDER[position + 1], 0)
    return replace(route, refusals=refusals)
