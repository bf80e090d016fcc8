"""The site state records what adapters report, field by field."""

from controller.config import ControlSettings
from controller.model import SessionNeeds, SessionStarted, SessionStopped
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
