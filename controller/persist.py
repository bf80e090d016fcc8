"""What a restart needs of the site state, as records for the state store. Pure.

One record per running session (kind ``session/<site>``, key ``charger/connector``):
who it is (charger, connector, transaction, start, meter start), what it needs
(departure, energy, EV limits, priority), what was learned of the car (the phases
it draws on, the most it showed it takes) and the last setpoint its charger
accepted (value, purpose, when, lease expiry) with ``ceiling_a``, the most the
charger may hold: an increase is stored before it is sent, so the record never
says less than the charger may have taken. One record per charger whose
setpoints travel by another purpose than TxProfile (kind ``route/<site>``):
the step it took down the fallback ladder. One record per charger whose car
has been seen to follow a setpoint (kind ``response/<site>``): the last
observations its response time is learned from (:mod:`controller.response`).

Times in records are wall-clock UNIX seconds; in the state they are the
controller's monotonic seconds, which restart from anywhere with the process.
:class:`Instant` converts between the two at one moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controller.dispatch import Held
from controller.fallback import ProfileRoute
from controller.learning import EvBelief
from controller.model import ProfilePurpose, SessionNeeds, connector_key
from controller.response import KEEP
from controller.restored import Restored
from controller.snapshot import SessionView

SESSION_KIND = "session"
ROUTE_KIND = "route"
RESPONSE_KIND = "response"


def kind(name: str, site_id: str) -> str:
    """The store kind of ``name`` records of one site (sites may share a store)."""
    return f"{name}/{site_id}"


@dataclass(frozen=True, slots=True)
class Instant:
    """One moment on both clocks: monotonic ``mono`` s is wall-clock UNIX ``wall`` s."""

    mono: float
    wall: float

    def to_wall(self, mono: float) -> float:
        return self.wall - (self.mono - mono)

    def to_mono(self, wall: float) -> float:
        return self.mono - (self.wall - wall)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NeedsRecord(_Record):
    departure_at: float | None = None
    energy_wh: float | None = Field(default=None, ge=0)
    ev_min_a: float | None = Field(default=None, ge=0)
    ev_max_a: float | None = Field(default=None, ge=0)
    priority: float | None = Field(default=None, gt=0)
    source: str = "operator"


class BeliefRecord(_Record):
    phases: tuple[int, ...] | None = Field(default=None, min_length=1, max_length=3)
    ev_max_a: float | None = Field(default=None, ge=0)


class SetpointRecord(_Record):
    limit_a: float | None = Field(default=None, ge=0)
    """The last setpoint the charger accepted (``None``: none yet)."""
    ceiling_a: float = Field(ge=0)
    """The most the charger may hold: ``limit_a`` or a target sent after it."""
    purpose: ProfilePurpose = ProfilePurpose.TX
    accepted_at: float | None = None
    lease_until: float | None = None
    floor_a: float | None = Field(default=None, ge=0)
    """The least the charger may hold: ``limit_a`` or a target sent after it (``None``:
    unknown, as in a record written before floors were)."""


class SessionRecord(_Record):
    charger_id: str = Field(min_length=1)
    connector_id: int = Field(ge=1)
    transaction_id: int
    charger_transaction_id: str | None = Field(default=None, min_length=1)
    """The charger's own name of the transaction (OCPP 2.0.1), to know it again."""
    started_at: float
    meter_start_wh: float | None = None
    needs: NeedsRecord | None = None
    needs_register_wh: float | None = None
    belief: BeliefRecord = BeliefRecord()
    setpoint: SetpointRecord | None = None
    noncompliant: str | None = Field(default=None, min_length=1)
    """Why its charger was found not to follow its setpoints (``None``: it follows)."""

    @property
    def key(self) -> str:
        return connector_key(self.charger_id, self.connector_id)


class RouteRecord(_Record):
    purpose: ProfilePurpose


class ResponseRecord(_Record):
    observed_s: tuple[Annotated[float, Field(gt=0, allow_inf_nan=False)], ...] = Field(min_length=1)
    """How long the charger's cars took to follow its last accepted changes, oldest first."""


def setpoint_record(
    held: Held | None,
    target_a: float | None,
    purpose: ProfilePurpose,
    lease_s: float,
    now: Instant,
    before: SetpointRecord | None = None,
    acked_since: bool = False,
) -> SetpointRecord | None:
    """The setpoint part of a session's record.

    ``held`` is what the charger accepted (``None`` once forgotten, as on a boot, or while
    only the most it may hold is known, after a reconnect: what ``before`` says still
    stands); ``target_a`` the latest target, which may be on its way. The ceiling only
    comes down, and the floor only up, when an acceptance arrived since ``before``
    (``acked_since``): until then a change sent earlier may still be accepted.
    """
    if held is None and before is None and target_a is None:
        return None
    keep = before is not None and not acked_since
    keep_a = before.ceiling_a if before is not None and keep else 0.0
    ceiling_a = max(keep_a, held.limit_a if held else 0.0, target_a or 0.0)
    floor_a = _floor_a(before if keep else None, held, target_a)
    if held is None:
        return SetpointRecord(
            limit_a=before.limit_a if before else None,
            ceiling_a=ceiling_a,
            purpose=before.purpose if before else purpose,
            accepted_at=before.accepted_at if before else None,
            lease_until=before.lease_until if before else None,
            floor_a=floor_a,
        )
    return SetpointRecord(
        limit_a=held.limit_a,
        ceiling_a=ceiling_a,
        purpose=purpose,
        accepted_at=now.to_wall(held.acked_at),
        lease_until=now.to_wall(held.acked_at + lease_s),
        floor_a=floor_a,
    )


def _floor_a(
    kept: SetpointRecord | None, held: Held | None, target_a: float | None
) -> float | None:
    """The least of what the charger accepted, the latest target and the ``kept`` floor;
    unknown while the kept one is."""
    if kept is not None and kept.floor_a is None:
        return None
    values = [v for v in (held.limit_a if held else None, target_a) if v is not None]
    if kept is not None and kept.floor_a is not None:
        values.append(kept.floor_a)
    return min(values) if values else None


def session_record(
    view: SessionView,
    setpoint: SetpointRecord | None,
    now: Instant,
    theirs: str | None = None,
    noncompliant: str | None = None,
) -> SessionRecord:
    """The record of a running session (``theirs``: the charger's name of its transaction;
    ``noncompliant``: why its charger does not follow, if it does not)."""
    needs = view.needs
    return SessionRecord(
        charger_id=view.charger_id,
        connector_id=view.connector_id,
        transaction_id=view.transaction_id,
        charger_transaction_id=theirs,
        started_at=now.to_wall(view.started_at),
        meter_start_wh=view.meter_start_wh,
        needs=None
        if needs is None
        else NeedsRecord(
            departure_at=needs.departure_at,
            energy_wh=needs.energy_wh,
            ev_min_a=needs.ev_min_a,
            ev_max_a=needs.ev_max_a,
            priority=needs.priority,
            source=needs.source,
        ),
        needs_register_wh=view.needs_register_wh,
        belief=BeliefRecord(phases=view.belief.phases, ev_max_a=view.belief.ev_max_a),
        setpoint=setpoint,
        noncompliant=noncompliant,
    )


def restored_view(record: SessionRecord, now: Instant) -> SessionView:
    """The session a record describes, as the state restores it: unconfirmed.

    What the car showed it takes must be shown again before it is probed
    (``probed_at`` is now); what it was offered is learned afresh.
    """
    s = record.setpoint
    needs = record.needs
    return SessionView(
        key=record.key,
        charger_id=record.charger_id,
        connector_id=record.connector_id,
        transaction_id=record.transaction_id,
        started_at=now.to_mono(record.started_at),
        status="Unknown",
        measured_a=None,
        measured_at=None,
        offered_a=None,
        belief=EvBelief(
            phases=record.belief.phases, ev_max_a=record.belief.ev_max_a, probed_at=now.mono
        ),
        needs=None
        if needs is None
        else SessionNeeds(
            record.charger_id,
            record.connector_id,
            now.mono,
            departure_at=needs.departure_at,
            energy_wh=needs.energy_wh,
            ev_min_a=needs.ev_min_a,
            ev_max_a=needs.ev_max_a,
            priority=needs.priority,
            source=needs.source,
        ),
        needs_register_wh=record.needs_register_wh,
        meter_start_wh=record.meter_start_wh,
        restored=Restored(
            setpoint_a=s.limit_a if s else None,
            ceiling_a=s.ceiling_a if s else None,
            lease_until=None if s is None or s.lease_until is None else now.to_mono(s.lease_until),
            floor_a=s.floor_a if s else None,
            loaded_at=now.mono,
        ),
    )


def route_record(route: ProfileRoute) -> RouteRecord:
    return RouteRecord(purpose=route.purpose)


def restored_route(record: RouteRecord) -> ProfileRoute:
    """A charger's route as learned before the restart (its refusal count starts again)."""
    return ProfileRoute(record.purpose)


def response_record(observed_s: tuple[float, ...]) -> ResponseRecord:
    return ResponseRecord(observed_s=observed_s)


def restored_observations(record: ResponseRecord) -> tuple[float, ...]:
    """The observations a charger's response time is learned from again (the last
    :data:`~controller.response.KEEP`: a record may come from a version that kept more)."""
    return record.observed_s[-KEEP:]
