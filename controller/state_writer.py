"""Restart state written to the state store after each decision: :class:`StateWriter`.

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

On start, :func:`controller.resume.resume` reads it back and seeds the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.clock import Clock
from controller.dispatch import Held
from controller.fallback import ProfileRoute
from controller.model import ProfilePurpose
from controller.persist import (
    RESPONSE_KIND,
    ROUTE_KIND,
    SESSION_KIND,
    Instant,
    SessionRecord,
    SetpointRecord,
    kind,
    response_record,
    route_record,
    session_record,
    setpoint_record,
)
from controller.snapshot import SessionView
from controller.store import StateStore
from controller.targets import Target

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
