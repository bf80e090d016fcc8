"""OCPP 2.0.1 payloads and readings (pure), and external limits in the allocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import Call, validate_payload

from controller.decide import decide
from controller.model import (
    ExternalLimitChanged,
    ProfileCommand,
    ProfilePurpose,
    SessionStarted,
)
from controller.ocpp.measurands import parse_meter_values
from controller.ocpp.transactions import TransactionIds
from controller.ocpp.wire201 import (
    limit_from_schedules,
    needs_from,
    rate_unit_201,
    set_charging_profile_payload_201,
)
from controller.state import SiteState
from policies import POLICIES, get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def command(purpose: ProfilePurpose, lease_s: float | None = 120.0) -> ProfileCommand:
    """A setpoint of 7.37 A on EVSE 2."""
    tx = 5 if purpose is ProfilePurpose.TX else None
    return ProfileCommand("cp", 2, purpose, 7.37, 1, 12, lease_s, transaction_id=tx)


@pytest.mark.parametrize("purpose", list(ProfilePurpose))
async def test_profile_payload_passes_the_2_0_1_schema(purpose: ProfilePurpose) -> None:
    """Every purpose we send is a valid 2.0.1 SetChargingProfile (the library's schema)."""
    payload = set_charging_profile_payload_201(command(purpose), NOW, "tx-abc")
    await validate_payload(Call("1", "SetChargingProfile", payload), "2.0.1")


def test_profile_payload_has_the_2_0_1_shape() -> None:
    """A TxProfile: id, the station's string transaction id, a lease, the schedule as a list
    with its own id, the limit floored to 0.1 A, a back-dated start, numberPhases."""
    payload = set_charging_profile_payload_201(command(ProfilePurpose.TX), NOW, "tx-abc")
    assert payload["evseId"] == 2
    profile = payload["chargingProfile"]
    assert profile["id"] == 12
    assert profile["transactionId"] == "tx-abc"
    assert profile["validTo"] == "2026-01-01T12:02:00.000Z"
    [schedule] = profile["chargingSchedule"]
    assert schedule["id"] == 12
    assert schedule["startSchedule"] == "2026-01-01T11:59:55.000Z"
    assert schedule["duration"] == 125
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 7.3, "numberPhases": 3}
    ]


def test_station_max_profile_is_named_the_2_0_1_way() -> None:
    """1.6's ChargePointMaxProfile is ChargingStationMaxProfile in 2.0.1."""
    payload = set_charging_profile_payload_201(command(ProfilePurpose.CHARGE_POINT_MAX), NOW, None)
    assert payload["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"


def test_tx_profile_without_the_stations_id_is_refused() -> None:
    """A TxProfile cannot be built without the station's transaction id."""
    with pytest.raises(ValueError, match="transaction id"):
        set_charging_profile_payload_201(command(ProfilePurpose.TX), NOW, None)


@pytest.mark.parametrize(
    ("value", "unit"), [("A", "A"), ("W", "W"), ("A,W", "A"), ("W, A", "A"), (None, "A")]
)
def test_rate_unit_is_w_only_when_the_station_takes_only_w(value: str | None, unit: str) -> None:
    """SmartChargingCtrlr.RateUnit: W alone means W; anything else, A."""
    assert rate_unit_201(value) == unit


def test_ev_needs_are_read_from_ac_and_dc_parameters() -> None:
    """AC gives energy, min and max current; DC gives energy and max current."""
    ac = needs_from(
        "cp",
        1,
        3.0,
        {
            "departureTime": "2026-01-01T18:00:00Z",
            "acChargingParameters": {"energyAmount": 30000, "evMinCurrent": 6, "evMaxCurrent": 16},
        },
    )
    assert ac.departure_at == datetime(2026, 1, 1, 18, tzinfo=UTC).timestamp()
    assert (ac.energy_wh, ac.ev_min_a, ac.ev_max_a, ac.source) == (30000, 6, 16, "ev")
    dc = needs_from("cp", 1, 3.0, {"dcChargingParameters": {"evMaxCurrent": 125}})
    assert (dc.departure_at, dc.energy_wh, dc.ev_max_a) == (None, None, 125)


def test_external_limit_is_the_lowest_period_in_amperes() -> None:
    """W becomes A per phase with numberPhases; the lowest period of any schedule counts."""
    schedules = [
        {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 11040},
                {"startPeriod": 600, "limit": 2300, "numberPhases": 1},
            ],
        },
        {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 12}]},
    ]
    assert limit_from_schedules(schedules, 230.0) == pytest.approx(10.0)
    assert limit_from_schedules([], 230.0) is None


def test_2_0_1_meter_values_with_unit_of_measure_and_multiplier() -> None:
    """unitOfMeasure with a multiplier, numbers (and Decimals) as values, kW and kWh."""
    fields = parse_meter_values(
        [
            {
                "timestamp": "2026-01-01T12:00:00Z",
                "sampledValue": [
                    {
                        "value": 16,
                        "measurand": "Current.Import",
                        "phase": "L1",
                        "unitOfMeasure": {"unit": "A"},
                    },
                    {
                        "value": Decimal("11.04"),
                        "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "kW"},
                    },
                    {
                        "value": 12,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh", "multiplier": 3},
                    },
                    {
                        "value": 1,
                        "measurand": "SoC",
                        "unitOfMeasure": {"unit": "Percent", "multiplier": 1.5},
                    },
                ],
            }
        ]
    )
    assert fields.current_a == (16.0, None, None)
    assert fields.power_w == pytest.approx(11040.0)
    assert fields.energy_wh == pytest.approx(12000.0)
    assert fields.soc_percent is None
    assert fields.problems == ("SoC: multiplier 1.5 is not an integer",)


def test_transaction_ids_map_both_ways_and_end() -> None:
    """The station's string ids get site-wide ints once, both ways, per EVSE, until ended."""
    counter = iter(range(100, 200))
    ids = TransactionIds(lambda: next(counter))
    assert ids.ours("a", 1) == 100
    assert ids.ours("b", 2) == 101
    assert ids.ours("a") == 100
    assert (ids.theirs(101), ids.evse_of("b"), ids.on_evse(1)) == ("b", 2, 100)
    ids.end("a")
    assert (ids.theirs(100), ids.known("a"), ids.on_evse(1)) == (None, None, None)


def test_external_limits_reach_the_snapshot_and_clear() -> None:
    """EVSE limits land on the session, station limits on the charger; the lowest source wins."""
    state = SiteState(site_config().control)
    state.apply(SessionStarted("cp-0", 1, 7, 0.5))
    state.apply(ExternalLimitChanged("cp-0", 1, 1.0, 12.0, "EMS"))
    state.apply(ExternalLimitChanged("cp-0", 1, 1.0, 8.0, "SO"))
    state.apply(ExternalLimitChanged("cp-0", 0, 1.0, 20.0, "EMS"))
    snap = state.snapshot(2.0)
    assert snap.charger_limits_a == {"cp-0": 20.0}
    assert snap.sessions[0].external_limit_a == 8.0
    state.apply(ExternalLimitChanged("cp-0", 1, 3.0, None, "SO"))
    assert state.snapshot(4.0).sessions[0].external_limit_a == 12.0


limit_a = st.floats(min_value=0, max_value=40, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    evse_caps=st.lists(st.one_of(st.none(), limit_a), min_size=3, max_size=3),
    station_caps=st.lists(st.one_of(st.none(), limit_a), min_size=3, max_size=3),
    meter=st.tuples(limit_a, limit_a, limit_a),
)
def test_external_limits_hold_in_every_decision(
    policy: str,
    evse_caps: list[float | None],
    station_caps: list[float | None],
    meter: tuple[float, float, float],
) -> None:
    """Invariants 1 and 2 hold with limits set by others, and no session (EVSE limit) or
    charger (station limit) is given more than the limit others set."""
    config = site_config(chargers=3)
    sessions = [replace(session(i), external_limit_a=cap) for i, cap in enumerate(evse_caps)]
    station = {f"cp-{i}": cap for i, cap in enumerate(station_caps) if cap is not None}
    snap = replace(snapshot(sessions, meter_a=meter), charger_limits_a=station)
    decision = decide(snap, config, get_policy(policy), {})
    assert violations(decision.problem, decision.allocation) == []
    for i, cap in enumerate(evse_caps):
        given_a = decision.allocation.connectors[f"cp-{i}/1"].current_a
        bounds = [c for c in (cap, station.get(f"cp-{i}")) if c is not None]
        assert given_a <= min(bounds, default=32.0) + 1e-6
