"""Restart state through the state store: written after each decision, read back on start.

:class:`StateWriter` is the one write path. After each decision it compares
every running session with what it last wrote (cheap marks, no record is built
for a session that did not change) and writes, in one transaction, only what
changed: a session started or ended, a setpoint accepted, a target above the
stored ceiling or below the stored floor (written before the command goes out,
so the store always bounds what the charger may hold), a belief or a need
changed. MeterValues alone never cause a write. A setpoint accepted after a
decision is written at the next one; its ceiling was stored before it was sent.
A charger's learned response time is written in the same transaction when it
changes (a new observation that leaves the slowest of the kept ones as it was
is not written: the stored observations still give the time in use).

:func:`resume` runs on start, before the OCPP server listens: it loads the
sessions into the site state as restored (unconfirmed, see
:mod:`controller.restored`), each charger's learned profile route into the
dispatcher, 2.0.1 chargers' transaction names into the OCPP server, each
charger's learned response time into the loop's pacing, and seeds the writer,
so that an unchanged record is not written again. Unreadable records and those
of chargers the config no longer has are dropped, with a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from controller.clock import Clock
from controller.decide import Target
from controller.dispatch import Held
from controller.fallback import ProfileRoute
from controller.model import ProfilePurpose
from controller.persist import (
    RESPONSE_KIND,
    ROUTE_KIND,
    SESSION_KIND,
    Instant,
    ResponseRecord,
    RouteRecord,
    SessionRecord,
    SetpointRecord,
    kind,
    response_record,
    restored_observations,
    restored_route,
    restored_view,
    route_record,
    session_record,
    setpoint_record,
)
from controller.snapshot import SessionView
from controller.state import SiteState
from controller.store import StateStore

log = structlog.get_logger(__name__)

Mark = tuple[Any, ...]
"""What of a session a record depends on, apart from its target."""


@dataclass(frozen=True, slots=True)
class _Written:
    record: SessionRecord
    mark: Mark
    held: tuple[float, float] | None  # (limit, acked_at) of the acceptance last written


def _mark(view: SessionView) -> Mark:
    b = view.belief
    return (view.transaction_id, b.phases, b.ev_max_a, view.needs, view.needs_register_wh)


class StateWriter:
    """Writes one site's restart state to the store when it changes."""

    def __init__(
        self,
        store: StateStore,
        site_id: str,
        clock: Clock,
        lease_s: float,
        their_id: Callable[[str, int], str | None] = lambda _charger, _ours: None,
    ) -> None:
        self._store = store
        self._their_id = their_id
        """The charger's own name of one of our transactions (OCPP 2.0.1), if it has one."""
        self._sessions_kind = kind(SESSION_KIND, site_id)
        self._routes_kind = kind(ROUTE_KIND, site_id)
        self._responses_kind = kind(RESPONSE_KIND, site_id)
        self._clock = clock
        self.lease_s = lease_s
        self._written: dict[str, _Written] = {}
        self._routes: dict[str, ProfilePurpose] = {}
        self._slowest: dict[str, float] = {}  # charger → the slowest observation written
        self._observed: Mapping[str, tuple[float, ...]] | None = None  # as of the last call
        self.writes = 0
        """Transactions committed (for tests and benchmarks)."""

    def seed(self, view: SessionView, record: SessionRecord) -> None:
        """``record`` is stored already and ``view`` is what the state made of it."""
        mark = (*_mark(view), record.charger_transaction_id, record.noncompliant)
        self._written[view.key] = _Written(record, mark, None)

    def seed_route(self, charger_id: str, purpose: ProfilePurpose) -> None:
        self._routes[charger_id] = purpose

    def seed_response(self, charger_id: str, observed_s: tuple[float, ...]) -> None:
        self._slowest[charger_id] = max(observed_s)

    def after_decision(
        self,
        sessions: Sequence[SessionView],
        targets: Mapping[str, Target],
        held: Mapping[str, Held],
        routes: Mapping[str, ProfileRoute],
        noncompliant: Mapping[str, str] | None = None,
        observed_s: Mapping[str, tuple[float, ...]] | None = None,
    ) -> None:
        """Write what changed since the last call, in one transaction.

        ``noncompliant``: the sessions whose chargers do not follow, and why;
        ``observed_s``: the response-time observations by charger
        (:attr:`controller.response.ResponseBook.observed_s`)."""
        flags = noncompliant or {}
        now = Instant(self._clock.monotonic(), self._clock.now().timestamp())
        puts: list[tuple[str, str, Mapping[str, Any]]] = []
        live = set()
        for view in sessions:
            live.add(view.key)
            record = self._changed(
                view, targets.get(view.key), held.get(view.key), routes, now, flags.get(view.key)
            )
            if record is not None:
                puts.append((self._sessions_kind, view.key, record.model_dump(mode="json")))
        deletes = [(self._sessions_kind, key) for key in self._written if key not in live]
        for _, key in deletes:
            del self._written[key]
        for charger_id, route in routes.items():
            if self._routes.get(charger_id, ProfilePurpose.TX) is not route.purpose:
                self._routes[charger_id] = route.purpose
                value = route_record(route).model_dump(mode="json")
                puts.append((self._routes_kind, charger_id, value))
        if observed_s is not None and observed_s is not self._observed:
            self._observed = observed_s  # the book makes a new mapping for each observation
            puts.extend(self._responses(observed_s))
        if puts or deletes:
            self._store.write(puts, deletes, self._clock.now())
            self.writes += 1

    def _responses(
        self, observed_s: Mapping[str, tuple[float, ...]]
    ) -> list[tuple[str, str, Mapping[str, Any]]]:
        """The records of the chargers whose response time changed since last written."""
        puts: list[tuple[str, str, Mapping[str, Any]]] = []
        for charger_id, seen in observed_s.items():
            slowest = max(seen, default=None)
            if slowest is None or self._slowest.get(charger_id) == slowest:
                continue
            self._slowest[charger_id] = slowest
            value = response_record(seen).model_dump(mode="json")
            puts.append((self._responses_kind, charger_id, value))
        return puts

    def _changed(
        self,
        view: SessionView,
        target: Target | None,
        held: Held | None,
        routes: Mapping[str, ProfileRoute],
        now: Instant,
        noncompliant: str | None,
    ) -> SessionRecord | None:
        """The session's new record, or ``None`` if the stored one still says it all."""
        tx = view.transaction_id
        written = self._written.get(view.key)
        if written is not None and written.record.transaction_id != tx:
            written = None  # a new transaction on the connector
        if held is not None and (held.transaction_id != tx or held.unsure):
            held = None  # an unsure one is no acceptance (controller/rejoin.py)
        target_a = target.limit_a if target is not None and target.transaction_id == tx else None
        acked = (held.limit_a, held.acked_at) if held is not None else None
        before = written.record.setpoint if written is not None else None
        theirs = self._their_id(view.charger_id, tx)
        mark = (*_mark(view), theirs, noncompliant)
        if (
            written is not None
            and mark == written.mark
            and (acked is None or acked == written.held)
            and (target_a is None or (before is not None and _within(target_a, before)))
        ):
            return None
        purpose = routes.get(view.charger_id, ProfileRoute()).purpose
        acked_since = acked is not None and (written is None or acked != written.held)
        setpoint = setpoint_record(held, target_a, purpose, self.lease_s, now, before, acked_since)
        record = session_record(view, setpoint, now, theirs, noncompliant)
        self._written[view.key] = _Written(
            record, mark, acked if acked is not None else (written.held if written else None)
        )
        return record


def _within(target_a: float, stored: SetpointRecord) -> bool:
    """True when the stored record already bounds ``target_a``: no higher than its ceiling
    and, where it knows a floor, no lower than that."""
    floor_a = stored.floor_a
    return target_a <= stored.ceiling_a and (floor_a is None or target_a >= floor_a)


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
    for key, value in store.items(sessions_kind).items():
        try:
            record = SessionRecord.model_validate(value)
        except ValidationError as exc:
            _drop(store, sessions_kind, key, f"unreadable: {_first_error(exc)}")
            continue
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
    for charger_id, value in store.items(routes_kind).items():
        try:
            route = restored_route(RouteRecord.model_validate(value))
        except ValidationError as exc:
            _drop(store, routes_kind, charger_id, f"unreadable: {_first_error(exc)}")
            continue
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
    for charger_id, value in store.items(responses_kind).items():
        try:
            seen = restored_observations(ResponseRecord.model_validate(value))
        except ValidationError as exc:
            _drop(store, responses_kind, charger_id, f"unreadable: {_first_error(exc)}")
            continue
        if not known(charger_id):
            _drop(store, responses_kind, charger_id, f"charger {charger_id} is not configured")
            continue
        observed[charger_id] = seen
        writer.seed_response(charger_id, seen)
        log.info("response time restored", charger_id=charger_id, observed_s=list(seen))
    return observed


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return f"{where}: {error['msg']}"


def _drop(store: StateStore, kind_: str, key: str, why: str) -> None:
    log.error("stored record dropped", kind=kind_, key=key, reason=why)
    store.delete(kind_, key)
