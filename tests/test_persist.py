"""Restart state as store records: the mapping, the write path and the resume, on plain data."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.clock import ManualClock
from controller.dispatch import Held
from controller.fallback import ProfileRoute
from controller.learning import EvBelief
from controller.model import ProfilePurpose, SessionNeeds
from controller.persist import (
    Instant,
    SessionRecord,
    restored_view,
    session_record,
    setpoint_record,
)
from controller.response import ResponseBook, learned_before, response_s
from controller.restored import Restored
from controller.resume import resume
from controller.snapshot import SessionView
from controller.state import SiteState
from controller.state_writer import StateWriter
from controller.store import StateStore
from controller.targets import Target
from tests.helpers import session, site_config

CONFIG = site_config()
BEFORE = Instant(mono=500.0, wall=1_800_000_000.0)
AFTER = Instant(mono=20.0, wall=1_800_000_060.0)  # a minute later, in a new process
SESSIONS = "session/site"
RESPONSES = "response/site"


def running() -> SessionView:
    """cp-0/1 with a car learned to draw on L1 only, up to 16.5 A, and a need."""
    view = session(0, tx=4711, measured_a=(16.0, 0.0, 0.0), belief=EvBelief((0,), 16.5))
    needs = SessionNeeds("cp-0", 1, 480.0, departure_at=1_800_003_600.0, energy_wh=20_000.0)
    return replace(
        view, started_at=200.0, needs=needs, needs_register_wh=1_234.0, meter_start_wh=1_000.0
    )


def test_a_session_survives_the_trip_through_a_record_in_the_new_clock() -> None:
    """What is stored comes back as the same session: transaction, start (on the new
    process's monotonic clock), needs, learned phases and maximum, the accepted setpoint and
    when its lease runs out; restored and unconfirmed, with nothing measured yet."""
    view = running()
    held = Held(limit_a=16.0, acked_at=490.0, transaction_id=4711)
    setpoint = setpoint_record(held, 16.0, ProfilePurpose.TX, 120.0, BEFORE)
    stored = session_record(view, setpoint, BEFORE).model_dump(mode="json")
    back = restored_view(SessionRecord.model_validate(stored), AFTER)
    assert (back.key, back.transaction_id, back.meter_start_wh) == ("cp-0/1", 4711, 1_000.0)
    assert back.started_at == pytest.approx(20.0 - 360.0)  # started 6 minutes before now
    assert (back.belief.phases, back.belief.ev_max_a) == ((0,), 16.5)
    assert back.needs is not None
    assert (back.needs.departure_at, back.needs.energy_wh) == (1_800_003_600.0, 20_000.0)
    assert back.needs_register_wh == 1_234.0
    # Accepted 70 s ago with a 120 s lease, nothing else on its way; read back now (20 s).
    assert back.restored == Restored(16.0, 16.0, 20.0 - 70.0 + 120.0, 16.0, 20.0)
    assert back.measured_a is None


def test_the_ceiling_rises_before_an_increase_and_falls_only_with_an_acceptance() -> None:
    """An increase is stored before it is sent; a later lower target does not lower the
    ceiling while the increase may still be accepted; an acceptance does."""
    held = Held(limit_a=10.0, acked_at=490.0, transaction_id=1)
    rising = setpoint_record(held, 20.0, ProfilePurpose.TX, 120.0, BEFORE)
    assert rising is not None
    assert (rising.limit_a, rising.ceiling_a) == (10.0, 20.0)
    lower = setpoint_record(held, 15.0, ProfilePurpose.TX, 120.0, BEFORE, rising)
    assert lower is not None
    assert lower.ceiling_a == 20.0
    accepted = Held(limit_a=15.0, acked_at=495.0, transaction_id=1)
    after = setpoint_record(accepted, 15.0, ProfilePurpose.TX, 120.0, BEFORE, lower, True)
    assert after is not None
    assert (after.limit_a, after.ceiling_a) == (15.0, 15.0)


def test_the_floor_falls_before_a_decrease_and_rises_only_with_an_acceptance() -> None:
    """A decrease is stored before it is sent; a later higher target does not raise the
    floor while the decrease may still be accepted; an acceptance does. A record without a
    floor (written before floors were) keeps it unknown until an acceptance."""
    held = Held(limit_a=20.0, acked_at=490.0, transaction_id=1)
    falling = setpoint_record(held, 10.0, ProfilePurpose.TX, 120.0, BEFORE)
    assert falling is not None
    assert (falling.limit_a, falling.floor_a, falling.ceiling_a) == (20.0, 10.0, 20.0)
    higher = setpoint_record(held, 15.0, ProfilePurpose.TX, 120.0, BEFORE, falling)
    assert higher is not None
    assert higher.floor_a == 10.0
    accepted = Held(limit_a=15.0, acked_at=495.0, transaction_id=1)
    after = setpoint_record(accepted, 15.0, ProfilePurpose.TX, 120.0, BEFORE, higher, True)
    assert after is not None
    assert (after.limit_a, after.floor_a, after.ceiling_a) == (15.0, 15.0, 15.0)
    old = falling.model_copy(update={"floor_a": None})
    assert (
        setpoint_record(held, 20.0, ProfilePurpose.TX, 120.0, BEFORE, old) or old
    ).floor_a is None


def test_a_forgotten_setpoint_keeps_what_the_record_said() -> None:
    """A charger that reconnects makes the dispatcher forget what it held, but its lease
    still runs: the stored acceptance stands (a lower target only lowers the floor)."""
    held = Held(limit_a=16.0, acked_at=490.0, transaction_id=1)
    before = setpoint_record(held, 16.0, ProfilePurpose.TX_DEFAULT, 120.0, BEFORE)
    kept = setpoint_record(None, 6.0, ProfilePurpose.TX, 120.0, BEFORE, before)
    assert before is not None
    assert kept == before.model_copy(update={"floor_a": 6.0})


class Writes:
    """A store that counts its transactions, over a real SQLite file."""

    def __init__(self, path: Path) -> None:
        self.store = StateStore(path)
        self.clock = ManualClock(500.0, datetime(2027, 1, 15, 18, tzinfo=UTC))
        self.writer = StateWriter(self.store, "site", self.clock, lease_s=120.0)

    def decide(
        self,
        sessions: list[SessionView],
        held: dict[str, Held] | None = None,
        target_a: float = 16.0,
        routes: dict[str, ProfileRoute] | None = None,
        noncompliant: dict[str, str] | None = None,
        observed_s: dict[str, tuple[float, ...]] | None = None,
    ) -> int:
        before = self.writer.writes
        targets = {
            s.key: Target(s.charger_id, s.connector_id, s.transaction_id, target_a, "")
            for s in sessions
        }
        self.writer.after_decision(
            sessions, targets, held or {}, routes or {}, noncompliant, observed_s
        )
        return self.writer.writes - before


def test_the_writer_writes_changes_only(tmp_path: Path) -> None:
    """A new session, an acceptance, a learned belief, a target above the ceiling or below
    the floor and an ended session are written; the same state again, or new MeterValues
    alone, are not."""
    w = Writes(tmp_path / "state.db")
    view = running()
    assert w.decide([view]) == 1
    assert w.decide([view]) == 0
    assert w.decide([replace(view, measured_a=(15.0, 0.0, 0.0), measured_at=101.0)]) == 0
    held = {"cp-0/1": Held(16.0, 501.0, 4711)}
    assert w.decide([view], held) == 1
    assert w.store.items(SESSIONS)["cp-0/1"]["setpoint"]["limit_a"] == 16.0
    assert w.decide([view], {}) == 0  # forgotten on a reconnect: the record stands
    assert w.decide([view], held, target_a=10.0) == 1  # a decrease: before it is sent
    assert w.store.items(SESSIONS)["cp-0/1"]["setpoint"]["floor_a"] == 10.0
    assert w.decide([view], held, target_a=12.0) == 0  # within the floor and the ceiling
    assert w.decide([view], held, target_a=20.0) == 1
    assert w.store.items(SESSIONS)["cp-0/1"]["setpoint"]["ceiling_a"] == 20.0
    learned = replace(view, belief=EvBelief((0,), 18.5))
    assert w.decide([learned], held, target_a=20.0) == 1
    assert w.decide([], held) == 1
    assert w.store.items(SESSIONS) == {}


def test_a_noncompliance_flag_is_written_when_it_comes_and_goes(tmp_path: Path) -> None:
    """A charger found not following its setpoint is a learned fact a restart must keep."""
    w = Writes(tmp_path / "state.db")
    view = running()
    assert w.decide([view]) == 1
    assert w.decide([view], noncompliant={"cp-0/1": "draws more than its setpoint"}) == 1
    assert w.store.items(SESSIONS)["cp-0/1"]["noncompliant"] == "draws more than its setpoint"
    assert w.decide([view], noncompliant={"cp-0/1": "draws more than its setpoint"}) == 0
    assert w.decide([view]) == 1
    assert w.store.items(SESSIONS)["cp-0/1"]["noncompliant"] is None


def test_a_profile_route_step_is_written_once(tmp_path: Path) -> None:
    """A charger that stepped down the fallback ladder is written; TxProfile, the default,
    is not."""
    w = Writes(tmp_path / "state.db")
    routes = {"cp-0": ProfileRoute(), "cp-1": ProfileRoute(ProfilePurpose.TX_DEFAULT)}
    assert w.decide([], routes=routes) == 1
    assert w.decide([], routes=routes) == 0
    assert w.store.items("route/site") == {"cp-1": {"purpose": "TxDefaultProfile"}}


def test_a_learned_response_time_is_written_when_it_changes(tmp_path: Path) -> None:
    """A charger's observations are written when the slowest of them changes, in the
    decision's one transaction; an observation that leaves the time as it was is not."""
    w = Writes(tmp_path / "state.db")
    assert w.decide([], observed_s={"cp-0": (8.0,)}) == 1
    assert w.store.items(RESPONSES) == {"cp-0": {"observed_s": [8.0]}}
    assert w.decide([], observed_s={"cp-0": (8.0,)}) == 0  # the same, in a new mapping
    assert w.decide([], observed_s={"cp-0": (8.0, 3.0)}) == 0  # still 8 s
    assert w.decide([], observed_s={"cp-0": (8.0, 3.0, 9.5)}) == 1
    assert w.store.items(RESPONSES)["cp-0"] == {"observed_s": [8.0, 3.0, 9.5]}
    # With a new session and a second charger's first observation: still one transaction.
    observed = {"cp-0": (8.0, 3.0, 9.5), "cp-1": (4.0,)}
    assert w.decide([running()], observed_s=observed) == 1
    assert set(w.store.items(SESSIONS)) == {"cp-0/1"}
    assert w.store.items(RESPONSES)["cp-1"] == {"observed_s": [4.0]}


def test_resume_gives_back_learned_response_times(tmp_path: Path) -> None:
    """On start the stored observations go back to the loop (the last KEEP of them); an
    unreadable record or one of a charger no longer configured is dropped; the seeded
    writer does not write the restored times again."""
    w = Writes(tmp_path / "state.db")
    w.decide([], observed_s={"cp-0": (7.5, 8.0), "cp-2": (3.0,)})
    at = datetime(2027, 1, 15, 18, tzinfo=UTC)
    w.store.put(RESPONSES, "cp-1", {"observed_s": [-1.0]}, at)
    w.store.put(RESPONSES, "cp-3", {"observed_s": [1.0, 2.0, 3.0, 4.0, 5.0]}, at)
    clock = ManualClock(30.0, datetime(2027, 1, 15, 18, 1, tzinfo=UTC))
    writer = StateWriter(w.store, "site", clock, 120.0)
    got: list[Mapping[str, tuple[float, ...]]] = []
    state = SiteState(CONFIG.control)
    known = lambda c: c != "cp-2"  # noqa: E731
    resume(w.store, "site", state, {}, writer, clock, known, learned=got.append)
    assert got == [{"cp-0": (7.5, 8.0), "cp-3": (3.0, 4.0, 5.0)}]
    assert set(w.store.items(RESPONSES)) == {"cp-0", "cp-3"}
    writer.after_decision([], {}, {}, {}, None, dict(got[0]))
    assert writer.writes == 0
    book = learned_before(ResponseBook(), got[0])
    assert response_s(book, "cp-0", default_s=5.0, max_s=60.0) == 8.0


def test_a_store_of_the_previous_version_opens_and_learns(tmp_path: Path) -> None:
    """A database written before response times were stored (its table and a session record
    as that version wrote them, byte for byte) opens: the session is restored, no response
    time is (the configured default applies), and the first one learned is written to it."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute(PREVIOUS_SCHEMA)
        db.execute("INSERT INTO state VALUES (?, ?, ?, ?)", PREVIOUS_SESSION)
    store = StateStore(path)
    clock = ManualClock(30.0, datetime(2027, 1, 15, 18, 1, tzinfo=UTC))
    writer = StateWriter(store, "site", clock, 120.0)
    state, got = SiteState(CONFIG.control), list[Mapping[str, tuple[float, ...]]]()
    assert resume(store, "site", state, {}, writer, clock, bool, learned=got.append) == 1
    assert got == [{}]
    [back] = state.snapshot(30.0).sessions
    assert (back.key, back.transaction_id, back.belief.ev_max_a) == ("cp-0/1", 4711, 16.5)
    writer.after_decision(state.snapshot(30.0).sessions, {}, {}, {}, None, {"cp-0": (8.0,)})
    assert writer.writes == 1
    assert store.items(RESPONSES) == {"cp-0": {"observed_s": [8.0]}}
    store.close()


PREVIOUS_SCHEMA = """CREATE TABLE state (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)"""
PREVIOUS_SESSION = (
    "session/site",
    "cp-0/1",
    '{"belief":{"ev_max_a":16.5,"phases":[0]},"charger_id":"cp-0",'
    '"charger_transaction_id":null,"connector_id":1,"meter_start_wh":null,"needs":null,'
    '"needs_register_wh":null,"noncompliant":null,"setpoint":{"accepted_at":1800035999.0,'
    '"ceiling_a":16.0,"lease_until":1800036119.0,"limit_a":16.0,"purpose":"TxProfile"},'
    '"started_at":1800035500.0,"transaction_id":4711}',
    "2027-01-15T18:00:00+00:00",
)


def test_resume_restores_good_records_and_drops_the_rest(tmp_path: Path) -> None:
    """On start the stored sessions are in the state, unconfirmed, and the routes in the
    dispatcher's table; an unreadable record or one of a charger no longer configured is
    dropped from the store."""
    w = Writes(tmp_path / "state.db")
    held = {"cp-0/1": Held(16.0, 499.0, 4711)}
    w.decide([running()], held, routes={"cp-0": ProfileRoute(ProfilePurpose.TX_DEFAULT)})
    at = datetime(2027, 1, 15, 18, tzinfo=UTC)
    w.store.put(SESSIONS, "cp-1/1", {"charger_id": "cp-1", "connector_id": 0}, at)
    gone = session_record(session(2, tx=9), None, BEFORE).model_dump(mode="json")
    w.store.put(SESSIONS, "cp-2/1", gone, at)
    state, routes = SiteState(CONFIG.control), dict[str, ProfileRoute]()
    clock = ManualClock(30.0, datetime(2027, 1, 15, 18, 1, tzinfo=UTC))
    writer = StateWriter(w.store, "site", clock, 120.0)
    restored = resume(w.store, "site", state, routes, writer, clock, lambda c: c != "cp-2")
    assert restored == 1
    [back] = state.snapshot(30.0).sessions
    assert (back.key, back.transaction_id, back.belief.phases) == ("cp-0/1", 4711, (0,))
    assert back.restored is not None
    assert back.restored.setpoint_a == 16.0
    assert back.restored.lease_until == pytest.approx(30.0 - 61.0 + 120.0)
    assert routes == {"cp-0": ProfileRoute(ProfilePurpose.TX_DEFAULT)}
    assert set(w.store.items(SESSIONS)) == {"cp-0/1"}
    # The seeded writer does not write the unchanged record again.
    writer.after_decision(state.snapshot(30.0).sessions, {}, {}, routes)
    assert writer.writes == 0


def test_sites_sharing_a_store_do_not_see_each_others_sessions(tmp_path: Path) -> None:
    """Records are kept per site: another site's resume finds none of them."""
    w = Writes(tmp_path / "state.db")
    w.decide([running()])
    clock = ManualClock()
    other = StateWriter(w.store, "other", clock, 120.0)
    assert resume(w.store, "other", SiteState(CONFIG.control), {}, other, clock, bool) == 0
