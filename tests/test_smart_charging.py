"""The simulated charger's OCPP 1.6 composite rule: validity, stack levels, purposes, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hil.smart_charging import ProfileStore, best_limit_a, profile_limit_a, share_cap

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _iso(at: datetime) -> str:
    """A wire timestamp."""
    return at.isoformat().replace("+00:00", "Z")


def profile(
    limit: float,
    purpose: str = "TxDefaultProfile",
    stack: int = 0,
    profile_id: int = 1,
    kind: str = "Absolute",
    start: datetime | None = NOW - timedelta(seconds=5),
    duration_s: int | None = None,
    valid_to: datetime | None = None,
    unit: str = "A",
    **extra: Any,
) -> dict[str, Any]:
    """A camelCase profile as it arrives on the wire."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    if start is not None:
        schedule["startSchedule"] = _iso(start)
    if duration_s is not None:
        schedule["duration"] = duration_s
    result: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }
    if valid_to is not None:
        result["validTo"] = _iso(valid_to)
    return result


def test_profile_in_force_between_start_and_end() -> None:
    """An Absolute schedule holds from startSchedule for duration, and not past validTo."""
    leased = profile(16.0, duration_s=65, valid_to=NOW + timedelta(seconds=60))
    assert profile_limit_a(leased, NOW, None, 230.0) == 16.0
    assert profile_limit_a(leased, NOW - timedelta(seconds=6), None, 230.0) is None
    assert profile_limit_a(leased, NOW + timedelta(seconds=60), None, 230.0) is None


def test_later_periods_take_over() -> None:
    """The period in force is the last one that has started."""
    stepped = profile(16.0, start=NOW)
    stepped["chargingSchedule"]["chargingSchedulePeriod"].append({"startPeriod": 60, "limit": 8})
    assert profile_limit_a(stepped, NOW + timedelta(seconds=59), None, 230.0) == 16.0
    assert profile_limit_a(stepped, NOW + timedelta(seconds=60), None, 230.0) == 8.0


def test_watt_limits_become_amps_per_phase() -> None:
    """A limit in W is spread over numberPhases (3 by default) at the nominal voltage."""
    assert profile_limit_a(profile(11_040.0, unit="W"), NOW, None, 230.0) == pytest.approx(16.0)


def test_relative_schedule_starts_with_the_session() -> None:
    """A Relative schedule counts from the transaction start."""
    relative = profile(10.0, kind="Relative", start=None, duration_s=60)
    started = NOW - timedelta(seconds=90)
    assert profile_limit_a(relative, NOW, started, 230.0) is None
    assert profile_limit_a(relative, NOW, NOW - timedelta(seconds=30), 230.0) == 10.0


def test_highest_stack_wins_and_the_connector_beats_connector_zero() -> None:
    """Within a purpose the highest valid stack level wins; on a tie, the connector's own."""
    store = ProfileStore(n_connectors=2)
    store.install(0, profile(6.0, stack=0, profile_id=1), None)
    store.install(0, profile(20.0, stack=2, profile_id=2, duration_s=1), None)  # expired
    store.install(1, profile(10.0, stack=0, profile_id=3), None)
    defaults = store.held("TxDefaultProfile", 1, 0)
    assert best_limit_a(defaults, 1, NOW, None, 230.0) == 10.0
    assert best_limit_a(store.held("TxDefaultProfile", 2, 0), 2, NOW, None, 230.0) == 6.0


def test_tx_profile_rules() -> None:
    """A TxProfile needs its running transaction; it ends with it."""
    store = ProfileStore(n_connectors=1)
    tx = profile(16.0, purpose="TxProfile", stack=1, profile_id=5, transactionId=7)
    assert store.install(1, tx, running_tx=None) == "Rejected"
    assert store.install(1, tx, running_tx=8) == "Rejected"
    assert store.install(0, tx, running_tx=7) == "Rejected"
    assert store.install(1, tx, running_tx=7) == "Accepted"
    store.end_transaction(1)
    assert store.held("TxProfile", 1) == []


def test_charge_point_max_only_on_connector_zero() -> None:
    """ChargePointMaxProfile belongs to the whole charger: connector 0 only."""
    store = ProfileStore(n_connectors=1)
    assert store.install(1, profile(20.0, purpose="ChargePointMaxProfile"), None) == "Rejected"
    assert store.install(0, profile(20.0, purpose="ChargePointMaxProfile"), None) == "Accepted"


def test_same_id_or_same_slot_replaces() -> None:
    """A profile replaces one with the same id, or the same connector, purpose and stack level."""
    store = ProfileStore(n_connectors=2)
    store.install(0, profile(6.0, profile_id=1), None)
    store.install(0, profile(8.0, profile_id=2), None)  # same slot
    store.install(1, profile(9.0, profile_id=2, stack=3), None)  # same id, elsewhere
    assert [p.profile["chargingProfileId"] for p in store.held("TxDefaultProfile", 0, 1)] == [2]
    assert store.held("TxDefaultProfile", 1)[0].stack_level == 3


def test_clear_by_id_or_by_criteria() -> None:
    """ClearChargingProfile matches by id, else by connector/purpose/stack; else Unknown."""
    store = ProfileStore(n_connectors=1)
    store.install(0, profile(6.0, profile_id=1), None)
    store.install(1, profile(8.0, profile_id=2, stack=1), None)
    assert store.clear(id=1) == "Accepted"
    assert store.clear(id=1) == "Unknown"
    assert store.clear(connector_id=1, charging_profile_purpose="TxDefaultProfile") == "Accepted"
    assert store.held("TxDefaultProfile", 0, 1) == []


@pytest.mark.parametrize(
    ("limits", "cap", "shares"),
    [
        ([32.0, 32.0], None, [32.0, 32.0]),
        ([32.0, 32.0], 40.0, [20.0, 20.0]),
        ([10.0, 32.0], 40.0, [10.0, 30.0]),
        ([32.0], 16.0, [16.0]),
    ],
)
def test_charge_point_cap_is_shared(
    limits: list[float], cap: float | None, shares: list[float]
) -> None:
    """The charger-wide cap is shared among sessions, none above its own limit."""
    assert share_cap(limits, cap) == shares
