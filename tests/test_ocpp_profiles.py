"""SetChargingProfile payloads: flooring, leases, back-dating, and the library's schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ocpp.messages import Call, _validate_payload

from controller.model import ProfileCommand, ProfilePurpose
from controller.ocpp.profiles import floor_limit, set_charging_profile_payload, wire_time

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _tx(limit_a: float = 16.0, lease_s: float | None = 120.0) -> ProfileCommand:
    """A leased TxProfile command on connector 1."""
    return ProfileCommand(
        charger_id="cp-1",
        connector_id=1,
        purpose=ProfilePurpose.TX,
        limit_a=limit_a,
        stack_level=1,
        profile_id=7,
        lease_s=lease_s,
        transaction_id=42,
    )


def _default(limit_a: float = 6.0) -> ProfileCommand:
    """The indefinite fail-safe TxDefaultProfile on connector 0."""
    return ProfileCommand("cp-1", 0, ProfilePurpose.TX_DEFAULT, limit_a, 0, 1)


def _schema_check(payload: dict[str, object]) -> None:
    """Validate as the ocpp library does before sending (Decimal parsing, multipleOf 0.1)."""
    _validate_payload(Call("1", "SetChargingProfile", json.loads(json.dumps(payload))), "1.6")


@pytest.mark.parametrize(
    ("limit", "floored"),
    [(7.37, 7.3), (7.3, 7.3), (7.39999, 7.3), (16.0, 16.0), (0.0, 0.0), (6.05, 6.0), (31.99, 31.9)],
)
def test_limit_is_floored_to_a_tenth_never_rounded_up(limit: float, floored: float) -> None:
    """A limit is a safety bound: 7.37 A becomes 7.3 A, and an exact tenth stays as it is."""
    assert floor_limit(limit) == floored
    assert floor_limit(limit) <= limit


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_impossible_limit_is_refused(bad: float) -> None:
    """A negative or non-finite limit is a bug upstream, never sent."""
    with pytest.raises(ValueError, match="limit"):
        floor_limit(bad)


def test_leased_tx_profile_has_the_full_shape() -> None:
    """A leased TxProfile: Absolute, back-dated start, duration = lease + skew, validTo = lease."""
    payload = set_charging_profile_payload(_tx(7.37), NOW, skew_s=5.0)
    assert payload == {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 7,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": 42,
            "validTo": "2026-03-01T12:02:00.250Z",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7.3}],
                "duration": 125,
                "startSchedule": "2026-03-01T11:59:55.250Z",
            },
        },
    }
    _schema_check(payload)


def test_schedule_is_back_dated_by_the_skew() -> None:
    """startSchedule lies skew_s before now, so a charger whose clock lags still applies it."""
    payload = set_charging_profile_payload(_tx(), NOW, skew_s=30.0)
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    start = datetime.fromisoformat(schedule["startSchedule"])
    assert start == NOW - timedelta(seconds=30)
    assert schedule["duration"] == 150


def test_schedule_never_outlives_the_lease() -> None:
    """A fractional lease floors the duration: the schedule ends no later than validTo."""
    payload = set_charging_profile_payload(_tx(lease_s=1.7), NOW, skew_s=5.0)
    profile = payload["csChargingProfiles"]
    schedule = profile["chargingSchedule"]
    end = datetime.fromisoformat(schedule["startSchedule"]) + timedelta(
        seconds=schedule["duration"]
    )
    assert end <= datetime.fromisoformat(profile["validTo"])


def test_indefinite_default_profile_has_no_duration_nor_valid_to() -> None:
    """The fail-safe TxDefaultProfile holds until replaced: no lease fields, no transaction."""
    payload = set_charging_profile_payload(_default(6.0), NOW)
    profile = payload["csChargingProfiles"]
    assert payload["connectorId"] == 0
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    assert "validTo" not in profile
    assert "transactionId" not in profile
    assert "duration" not in profile["chargingSchedule"]
    assert profile["chargingSchedule"]["startSchedule"] == "2026-03-01T11:59:55.250Z"
    _schema_check(payload)


def test_number_of_phases_is_sent_when_known() -> None:
    """A single-phase session's limit carries numberPhases = 1."""
    command = ProfileCommand("cp-1", 1, ProfilePurpose.TX, 20.0, 1, 3, 60.0, 9, number_phases=1)
    period = set_charging_profile_payload(command, NOW)["csChargingProfiles"]["chargingSchedule"][
        "chargingSchedulePeriod"
    ][0]
    assert period == {"startPeriod": 0, "limit": 20.0, "numberPhases": 1}


def test_tx_profile_without_transaction_is_a_bug() -> None:
    """A TxProfile needs its transaction id; building one without is refused."""
    command = ProfileCommand("cp-1", 1, ProfilePurpose.TX, 16.0, 1, 7, 60.0)
    with pytest.raises(ValueError, match="transaction"):
        set_charging_profile_payload(command, NOW)


def test_wire_time_is_utc_with_z_and_needs_a_zone() -> None:
    """Wire times are UTC with a Z suffix; a naive time is refused rather than guessed."""
    cet = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=1)))
    assert wire_time(cet) == "2026-03-01T13:00:00.000Z"
    with pytest.raises(ValueError, match="aware"):
        wire_time(datetime(2026, 3, 1, 13, 0))


def test_w_limits_carry_the_phases_they_assume() -> None:
    """In W a 6 A limit on three phases is 4140 W with numberPhases 3; one phase if stated."""
    from datetime import UTC, datetime

    from controller.model import ProfileCommand, ProfilePurpose
    from controller.ocpp.profiles import set_charging_profile_payload
    from controller.ocpp.v16 import rate_unit

    now = datetime(2026, 11, 21, tzinfo=UTC)
    command = ProfileCommand("cp", 0, ProfilePurpose.TX_DEFAULT, 6.0, 0, 1)
    period = set_charging_profile_payload(command, now, rate_unit="W")["csChargingProfiles"][
        "chargingSchedule"
    ]["chargingSchedulePeriod"][0]
    assert period == {"startPeriod": 0, "limit": 4140.0, "numberPhases": 3}
    one = ProfileCommand("cp", 1, ProfilePurpose.TX, 16.0, 1, 11, 60.0, 7, number_phases=1)
    schedule = set_charging_profile_payload(one, now, rate_unit="W")["csChargingProfiles"][
        "chargingSchedule"
    ]
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 3680.0
    assert rate_unit("Power") == "W"
    assert rate_unit("Current,Power") == "A"
    assert rate_unit(None) == "A"
