"""Operator settings over the YAML config: ceilings, schedules, persistence, audit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.audit import AuditLog, AuditQuery, read_audit
from controller.clock import ManualClock
from controller.config import HeadroomConfig
from controller.operator import OperatorControl, PreconditionFailed, SettingsRejected
from controller.overrides import (
    ChargerOverride,
    LimitOverride,
    OperatorSettings,
    ScheduleEntry,
    check_settings,
    effective_config,
)
from controller.store import StateStore
from tests.rig import config_for

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _base() -> HeadroomConfig:
    return config_for(
        1502,
        chargers=2,
        config_keys={"groups": [{"id": "feeder", "max_current_a": 40}]},
    ).model_copy()


def test_a_limit_above_the_rating_is_refused_with_the_reason() -> None:
    """The YAML's rating is the ceiling: 80 A on a 63 A site names the field and the rating."""
    problems = check_settings(_base(), OperatorSettings(site=LimitOverride(max_current_a=80)))
    assert [p.field for p in problems] == ["site.max_current_a"]
    assert "above the physical rating of 63 A" in problems[0].reason


def test_a_charger_cap_must_lie_between_6_a_and_its_rating() -> None:
    """A cap of 4 A (the EV would stop) and one of 40 A (over 32 A) are both refused."""
    for cap in (4.0, 40.0):
        settings_ = OperatorSettings(chargers={"cp-0": ChargerOverride(max_current_a=cap)})
        problems = check_settings(_base(), settings_)
        assert [p.field for p in problems] == ["chargers.cp-0.max_current_a"]
    ok = OperatorSettings(chargers={"cp-0": ChargerOverride(max_current_a=16, priority=3)})
    config = effective_config(_base(), ok, MONDAY_NOON)
    charger = config.charger("cp-0")
    assert charger is not None
    assert (charger.max_current_a, charger.priority) == (16, 3)


def test_unknown_groups_and_chargers_are_refused() -> None:
    """Settings may only name what the config has."""
    settings_ = OperatorSettings(
        groups={"nope": LimitOverride(max_current_a=10)},
        chargers={"cp-9": ChargerOverride(priority=2)},
    )
    assert [p.field for p in check_settings(_base(), settings_)] == ["groups.nope", "chargers.cp-9"]


def test_a_limit_too_low_for_the_failsafe_profiles_is_refused() -> None:
    """Two chargers × 6 A fail-safe + 1 A margin do not fit under 10 A: the config's reason."""
    problems = check_settings(_base(), OperatorSettings(site=LimitOverride(max_current_a=10)))
    assert problems
    assert problems[0].field == "site"
    assert "failsafe_current_a" in problems[0].reason


def test_a_schedule_holds_only_in_its_window_including_over_midnight() -> None:
    """22:00–06:00 on Mondays: Monday 23:00 and Tuesday 05:00 are in it, Monday 12:00 is not."""
    night = ScheduleEntry(days=["mon"], start="22:00", end="06:00", max_current_a=40)
    settings_ = OperatorSettings(schedules=[night])
    limit = lambda at: effective_config(_base(), settings_, at).site.max_current_a  # noqa: E731
    assert limit(MONDAY_NOON) == 63
    assert limit(MONDAY_NOON.replace(hour=23)) == 40
    assert limit(datetime(2026, 11, 24, 5, 0, tzinfo=UTC)) == 40
    assert limit(datetime(2026, 11, 24, 23, 0, tzinfo=UTC)) == 63


def test_schedules_follow_the_site_time_zone() -> None:
    """A 18:00–20:00 window in Europe/Berlin holds at 17:30 UTC in winter (18:30 local)."""
    entry = ScheduleEntry(start="18:00", end="20:00", max_current_a=30)
    settings_ = OperatorSettings(timezone="Europe/Berlin", schedules=[entry])
    at = MONDAY_NOON.replace(hour=17, minute=30)
    assert effective_config(_base(), settings_, at).site.max_current_a == 30


limits = st.one_of(st.none(), st.floats(min_value=1, max_value=200))


@settings(max_examples=60, deadline=None)
@given(
    now_a=limits,
    scheduled_a=limits,
    group_a=limits,
    hour=st.integers(0, 23),
    day=st.integers(0, 6),
)
def test_accepted_settings_never_raise_a_limit_over_the_rating(
    now_a: float | None, scheduled_a: float | None, group_a: float | None, hour: int, day: int
) -> None:
    """Invariant 1's input: settings that pass the check give a valid config whose limits
    never exceed the configured rating, at any time of the week."""
    base = _base()
    schedules = (
        []
        if scheduled_a is None
        else [ScheduleEntry(start="08:00", end="20:00", max_current_a=scheduled_a)]
    )
    settings_ = OperatorSettings(
        site=LimitOverride(max_current_a=now_a),
        schedules=schedules,
        groups={"feeder": LimitOverride(max_current_a=group_a)},
    )
    at = datetime(2026, 11, 23 + day, hour, 30, tzinfo=UTC)
    if check_settings(base, settings_):
        return
    config = effective_config(base, settings_, at)
    assert config.site.max_current_a is not None
    assert config.site.max_current_a <= 63
    assert config.groups[0].max_current_a is not None
    assert config.groups[0].max_current_a <= 40
    if now_a is not None:
        assert config.site.max_current_a <= now_a


def test_changes_are_persisted_audited_and_restored(tmp_path: Path) -> None:
    """A change goes to the store and the audit log (who, before, after); a new control
    over the same store applies it again; a stale If-Match is refused."""
    base, clock = _base(), ManualClock(wall=MONDAY_NOON)
    store = StateStore(tmp_path / "state.db")
    audit = AuditLog(tmp_path / "audit.db", base.site.id)
    applied: list[HeadroomConfig] = []
    control = OperatorControl(base, clock, applied.append, store, audit)
    etag = control.settings.etag()
    lowered = OperatorSettings(site=LimitOverride(max_current_a=40))
    control.update(lowered, "alice", if_match=etag)
    assert applied[-1].site.max_current_a == 40
    with pytest.raises(PreconditionFailed):
        control.update(OperatorSettings(), "bob", if_match=etag)
    with pytest.raises(SettingsRejected):
        control.update(OperatorSettings(site=LimitOverride(max_current_a=99)), "bob")
    audit.close()
    changes = list(read_audit(tmp_path / "audit.db", AuditQuery(kind="changes")))
    assert [(c["who"], c["resource"]) for c in changes] == [("alice", "settings")]
    assert '"max_current_a":40' in changes[0]["after"]

    restored: list[HeadroomConfig] = []
    again = OperatorControl(base, clock, restored.append, store)
    again.load()
    assert again.settings == lowered
    assert restored[-1].site.max_current_a == 40
    store.close()


def test_the_recheck_keeps_the_config_once_the_loop_has_read_it() -> None:
    """The schedule recheck builds the effective config anew; with nothing changed it leaves
    the site alone, also after the loop looked chargers up in the config it decides with
    (a config's charger index once made it unequal: a new config every 15 s)."""
    base, clock = _base(), ManualClock(wall=MONDAY_NOON)
    applied: list[HeadroomConfig] = []
    control = OperatorControl(base, clock, applied.append)
    assert base.charger(base.chargers[0].id) is base.chargers[0]
    control.refresh()
    assert applied == []
    assert effective_config(base, OperatorSettings(), MONDAY_NOON) == base


def test_the_recheck_builds_anew_only_when_a_schedule_opens_or_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recheck inside the same schedules does not build the effective config again (at
    depot scale a build stalls the event loop ~20 ms); one that finds a window opened or
    closed does, and reconfigures the site."""
    import controller.operator

    builds: list[datetime] = []

    def counted(base: HeadroomConfig, settings: OperatorSettings, at: datetime) -> HeadroomConfig:
        builds.append(at)
        return effective_config(base, settings, at)

    monkeypatch.setattr(controller.operator, "effective_config", counted)
    base, clock = _base(), ManualClock(wall=MONDAY_NOON)
    applied: list[HeadroomConfig] = []
    control = OperatorControl(base, clock, applied.append)
    evening = ScheduleEntry(start="12:30", end="13:00", max_current_a=30)
    control.update(OperatorSettings(schedules=[evening]), "alice")
    assert [c.site.max_current_a for c in applied] == [63]
    for _ in range(3):  # 12:00:15 .. 12:00:45: the window has not opened
        clock.advance(15.0)
        control.refresh()
    assert len(builds) == 1
    assert len(applied) == 1
    clock.advance(30 * 60.0)  # 12:30:45
    control.refresh()
    control.refresh()
    assert len(builds) == 2
    assert [c.site.max_current_a for c in applied] == [63, 30]
    clock.advance(30 * 60.0)  # 13:00:45: closed again
    control.refresh()
    assert [c.site.max_current_a for c in applied] == [63, 30, 63]
