"""The site state records what adapters report, field by field."""

from controller.charger_records import HISTORY
from controller.config import ControlSettings
from controller.model import ChargerMeasurement, SessionNeeds, SessionStarted, SessionStopped
from controller.state import SiteState


def test_session_needs_merge_field_by_field_and_end_with_the_session() -> None:
    state = SiteState(ControlSettings())
    state.apply(SessionStarted("cp-1", 1, 7, at=0.0))
    state.apply(SessionNeeds("cp-1", 1, at=1.0, departure_at=1_800_000_000.0, source="ev"))
    state.apply(SessionNeeds("cp-1", 1, at=2.0, energy_wh=20_000.0, priority=3.0))
    (session,) = state.snapshot(3.0).sessions
    assert session.needs is not None
    assert session.needs.departure_at == 1_800_000_000.0
    assert (session.needs.energy_wh, session.needs.priority) == (20_000.0, 3.0)
    assert session.needs.source == "operator"

    state.apply(SessionStopped("cp-1", 7, at=4.0))
    state.apply(SessionStarted("cp-1", 1, 8, at=5.0))
    (session,) = state.snapshot(6.0).sessions
    assert session.needs is None


def test_each_snapshot_has_the_reports_up_to_it_and_none_of_the_last_session() -> None:
    """The reports a snapshot carries are the charger's latest (the history's tuple is
    kept between reports, so a stale one would show here), the oldest leaving a full
    history, and a new session starts with none."""
    state = SiteState(ControlSettings())
    state.apply(SessionStarted("cp-1", 1, 7, at=0.0))
    (session,) = state.snapshot(0.5).sessions
    assert session.reports == ()
    for i in range(HISTORY + 2):
        state.apply(ChargerMeasurement("cp-1", 1, at=1.0 + i, current_a=(float(i), 0.0, 0.0)))
        (session,) = state.snapshot(1.5 + i).sessions
        assert session.reports[-1] == (1.0 + i, (float(i), 0.0, 0.0))
        assert len(session.reports) == min(i + 1, HISTORY)
    assert [at for at, _ in session.reports] == [3.0 + i for i in range(HISTORY)]

    state.apply(SessionStopped("cp-1", 7, at=20.0))
    state.apply(SessionStarted("cp-1", 1, 8, at=21.0))
    (session,) = state.snapshot(21.5).sessions
    assert session.reports == ()
