"""Restart state read back from the state store on start: :func:`resume`.

:func:`resume` runs on start, before the OCPP server listens: it loads the
sessions into the site state as restored (unconfirmed, see
:mod:`controller.restored`), each charger's learned profile route into the
dispatcher, 2.0.1 chargers' transaction names into the OCPP server, each
charger's learned response time into the loop's pacing, and seeds the writer
(:mod:`controller.state_writer`), so that an unchanged record is not written
again. Unreadable records and those of chargers the config no longer has are
dropped, with a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from controller.clock import Clock
from controller.fallback import ProfileRoute
from controller.persist import (
    RESPONSE_KIND,
    ROUTE_KIND,
    SESSION_KIND,
    Instant,
    ResponseRecord,
    RouteRecord,
    SessionRecord,
    kind,
    restored_observations,
    restored_route,
    restored_view,
)
from controller.state import SiteState
from controller.state_writer import StateWriter
from controller.store import StateStore

log = structlog.get_logger(__name__)

_R = TypeVar("_R")


def resume(
    store: StateStore,
    site_id: str,
    state: SiteState,
    routes: dict[str, ProfileRoute],
    writer: StateWriter,
    clock: Clock,
    known: Callable[[str], bool],
    adopt: Callable[[str, str, int, int], None] = lambda _c, _theirs, _ours, _evse: None,
    flag: Callable[[str, int, str], None] = lambda _key, _tx, _why: None,
    learned: Callable[[Mapping[str, tuple[float, ...]]], None] = lambda _observed: None,
) -> int:
    """Load the stored sessions, routes and response times of ``site_id``; returns the
    sessions restored.

    ``known`` tells whether a charger may still connect (is in the config, or unknown
    chargers are admitted). ``adopt(charger, theirs, ours, evse)`` binds a 2.0.1
    charger's transaction name to ours again, so its next report continues the session.
    ``flag(key, transaction, why)`` marks a session whose charger did not follow;
    ``learned(observations by charger)`` gives the response times back to the loop.
    """
    now = Instant(clock.monotonic(), clock.now().timestamp())
    sessions_kind = kind(SESSION_KIND, site_id)
    restored = 0
    for key, record in _readable(store, sessions_kind, SessionRecord.model_validate):
        if record.key != key:
            _drop(store, sessions_kind, key, f"stored under {key} but names {record.key}")
            continue
        if not known(record.charger_id):
            _drop(store, sessions_kind, key, f"charger {record.charger_id} is not configured")
            continue
        view = restored_view(record, now)
        if record.charger_transaction_id is not None:
            adopt(
                record.charger_id,
                record.charger_transaction_id,
                record.transaction_id,
                record.connector_id,
            )
        if record.noncompliant is not None:
            flag(record.key, record.transaction_id, record.noncompliant)
        state.restore(view)
        writer.seed(view, record)
        restored += 1
        setpoint = record.setpoint
        log.info(
            "session restored",
            charger_id=record.charger_id,
            connector_id=record.connector_id,
            transaction_id=record.transaction_id,
            phases=list(record.belief.phases) if record.belief.phases else None,
            ev_max_a=record.belief.ev_max_a,
            setpoint_a=setpoint.limit_a if setpoint else None,
            ceiling_a=setpoint.ceiling_a if setpoint else None,
            noncompliant=record.noncompliant,
            lease_left_s=None
            if setpoint is None or setpoint.lease_until is None
            else round(setpoint.lease_until - now.wall, 1),
        )
    routes_kind = kind(ROUTE_KIND, site_id)
    for charger_id, route in _readable(store, routes_kind, _route):
        routes[charger_id] = route
        writer.seed_route(charger_id, route.purpose)
        log.info("profile route restored", charger_id=charger_id, purpose=route.purpose.value)
    learned(_resume_responses(store, site_id, writer, known))
    return restored


def _resume_responses(
    store: StateStore, site_id: str, writer: StateWriter, known: Callable[[str], bool]
) -> dict[str, tuple[float, ...]]:
    """The stored response-time observations of the chargers that may still connect."""
    responses_kind = kind(RESPONSE_KIND, site_id)
    observed: dict[str, tuple[float, ...]] = {}
    for charger_id, seen in _readable(store, responses_kind, _observations):
        if not known(charger_id):
            _drop(store, responses_kind, charger_id, f"charger {charger_id} is not configured")
            continue
        observed[charger_id] = seen
        writer.seed_response(charger_id, seen)
        log.info("response time restored", charger_id=charger_id, observed_s=list(seen))
    return observed


def _readable(
    store: StateStore, kind_: str, read: Callable[[dict[str, Any]], _R]
) -> Iterator[tuple[str, _R]]:
    """Each record of one kind that ``read`` can read, by key; the others are dropped."""
    for key, value in store.items(kind_).items():
        try:
            record = read(value)
        except ValidationError as exc:
            _drop(store, kind_, key, f"unreadable: {_first_error(exc)}")
            continue
        yield key, record


def _route(value: dict[str, Any]) -> ProfileRoute:
    return restored_route(RouteRecord.model_validate(value))


def _observations(value: dict[str, Any]) -> tuple[float, ...]:
    return restored_observations(ResponseRecord.model_validate(value))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return f"{where}: {error['msg']}"


def _drop(store: StateStore, kind_: str, key: str, why: str) -> None:
    log.error("stored record dropped", kind=kind_, key=key, reason=why)
    store.delete(kind_, key)
