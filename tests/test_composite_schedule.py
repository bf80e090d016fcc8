"""GetCompositeSchedule: a charger's own word on what it enforces, checked against setpoints.

Pure parts (reading both versions' answers, planning checks, judging) with plain
data; then, over real websockets against the simulators of both versions, a
compliant charger agrees, a charger that stacks its profiles wrongly or ignores
them is flagged and its rating reserved, and a charger that cannot answer is
left to the measured-current check.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.clock import ManualClock
from controller.compliance import checks_due, judge_composite
from controller.dispatch import Change, ChangeKind, Held
from controller.dispatcher import Dispatcher
from controller.model import (
    CommandResult,
    CommandStatus,
    CompositeLimit,
    ProfileCommand,
    ScheduleStatus,
)
from controller.ocpp.composite import composite_request, read_composite
from controller.ocpp.profiles import wire_time
from controller.targets import Target
from hil.ev import EV
from hil.quirks import Quirks
from hil.smart_charging import ProfileStore, best_limit_a, composite_periods
from tests.rig import Rig, rig, until

READ = ScheduleStatus.READ
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def ocpp_keys(**extra: Any) -> dict[str, Any]:
    """The rig's ocpp section with composite-check settings."""
    return {"ocpp": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 2, **extra}}


# --- the wire ------------------------------------------------------------------------


def test_requests_name_the_connector_the_way_each_version_does() -> None:
    """1.6 asks by connectorId, 2.0.1 by evseId; both in the charger's unit."""
    assert composite_request("1.6", 2, 60, "A") == {
        "connectorId": 2,
        "duration": 60,
        "chargingRateUnit": "A",
    }
    assert composite_request("2.0.1", 1, 60, "W") == {
        "evseId": 1,
        "duration": 60,
        "chargingRateUnit": "W",
    }


def _schedule(unit: str, *periods: dict[str, Any]) -> dict[str, Any]:
    return {"chargingRateUnit": unit, "chargingSchedulePeriod": list(periods)}


@pytest.mark.parametrize(
    ("version", "answer", "expected"),
    [
        (
            "1.6",
            {
                "status": "Accepted",
                "chargingSchedule": _schedule("A", {"startPeriod": 0, "limit": 16}),
            },
            CompositeLimit(READ, 16.0, "16.0 A"),
        ),
        (
            "2.0.1",
            {
                "status": "Accepted",
                "schedule": {
                    "evseId": 1,
                    "duration": 60,
                    "scheduleStart": "2026-11-21T08:00:00Z",
                    **_schedule(
                        "W",
                        {"startPeriod": 30, "limit": 4140},
                        {"startPeriod": 0, "limit": 6900, "numberPhases": 1},
                    ),
                },
            },
            CompositeLimit(READ, 6900 / 230, "6900.0 W"),
        ),
        ("1.6", {"status": "Accepted"}, CompositeLimit(READ, None, "no schedule: no limit")),
        (
            "2.0.1",
            {"status": "Rejected", "statusInfo": {"reasonCode": "NotSupported"}},
            CompositeLimit(ScheduleStatus.UNSUPPORTED, None, "Rejected: NotSupported"),
        ),
    ],
)
def test_the_first_period_is_the_limit_in_force(
    version: Any, answer: dict[str, Any], expected: CompositeLimit
) -> None:
    """The period starting first is now; W becomes A per phase with its numberPhases
    (default 3); Rejected means the charger cannot answer; no schedule means no limit."""
    assert read_composite(version, answer, 230.0) == expected


@pytest.mark.parametrize(
    "answer",
    [
        ["Accepted"],
        {"status": "Accepted", "chargingSchedule": _schedule("A", {"limit": 16})},
        {"status": "Accepted", "chargingSchedule": _schedule("kW", {"startPeriod": 0, "limit": 1})},
        {
            "status": "Accepted",
            "chargingSchedule": _schedule("A", {"startPeriod": 0, "limit": "x"}),
        },
    ],
)
def test_an_unreadable_answer_is_a_failed_check_not_a_verdict(answer: Any) -> None:
    """A schedule we cannot read says nothing about the charger: FAILED, never a flag."""
    result = read_composite("1.6", answer, 230.0)
    assert result.status is ScheduleStatus.FAILED
    assert judge_composite(16.0, result, 0.5) is None


# --- planning and judging ----------------------------------------------------------------


def test_judging_the_composite() -> None:
    """Within the tolerance agrees; more, less or no limit at all contradicts."""
    assert judge_composite(16.0, CompositeLimit(READ, 16.3), 0.5) is None
    assert "says 32.0 A" in (judge_composite(16.0, CompositeLimit(READ, 32.0), 0.5) or "")
    assert "says 6.0 A" in (judge_composite(16.0, CompositeLimit(READ, 6.0), 0.5) or "")
    assert "no limit" in (judge_composite(16.0, CompositeLimit(READ, None), 0.5) or "")
    unsupported = CompositeLimit(ScheduleStatus.UNSUPPORTED, detail="Rejected")
    assert judge_composite(16.0, unsupported, 0.5) is None


def test_checks_are_due_once_per_session_then_on_the_interval() -> None:
    """A session not yet checked in its transaction is due at once; then only after the
    interval; a new transaction on the same connector is checked again."""
    held = {"cp-0/1": Held(16.0, 10.0, 7)}
    [check] = checks_due(held, {}, (), 10.0, 300.0)
    assert (check.charger_id, check.connector_id, check.held) == ("cp-0", 1, held["cp-0/1"])
    assert checks_due(held, {"cp-0/1": (7, 10.0)}, (), 300.0, 300.0) == []
    assert len(checks_due(held, {"cp-0/1": (7, 10.0)}, (), 310.0, 300.0)) == 1
    assert len(checks_due(held, {"cp-0/1": (6, 10.0)}, (), 20.0, 300.0)) == 1


def test_one_check_per_charger_the_unchecked_first_and_skips_honoured() -> None:
    """Two connectors of one charger: only one is asked at a time, the never-checked one;
    a skipped session or charger is never asked."""
    held = {"cp-0/1": Held(16.0, 1.0, 1), "cp-0/2": Held(10.0, 1.0, 2), "cp-1/1": Held(8, 1, 3)}
    checked = {"cp-0/1": (1, 0.0)}
    due = checks_due(held, checked, (), 500.0, 300.0)
    assert sorted(c.key for c in due) == ["cp-0/2", "cp-1/1"]
    assert [c.key for c in checks_due(held, checked, ("cp-1",), 500.0, 300.0)] == ["cp-0/2"]
    assert [c.key for c in checks_due(held, checked, ("cp-0/2",), 500.0, 300.0)] == [
        "cp-0/1",
        "cp-1/1",
    ]


# --- the simulators' answer ---------------------------------------------------------------


def _profile(pid: int, purpose: str, limit: float, lease_s: float | None) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        "startSchedule": wire_time(T0 - timedelta(seconds=5)),
    }
    profile = {
        "chargingProfileId": pid,
        "stackLevel": 0 if lease_s is None else 1,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": schedule,
    }
    if lease_s is not None:
        schedule["duration"] = int(lease_s + 5)
        profile["validTo"] = wire_time(T0 + timedelta(seconds=lease_s))
    return profile


def test_the_composite_shows_the_lease_then_the_fail_safe() -> None:
    """A 16 A lease of 20 s over a 6 A default: 16 A from now, 6 A once the lease ends."""
    store = ProfileStore(1)
    store.install(0, _profile(1, "TxDefaultProfile", 6.0, None), None)
    store.install(1, _profile(2, "TxDefaultProfile", 16.0, 20.0), None)

    def limit_at(at: datetime) -> float:
        return best_limit_a(store.all(), 1, at, None, 230.0) or 32.0

    assert composite_periods(limit_at, store.all(), T0, 60) == [(0, 16.0), (20, 6.0)]


# --- over real websockets, both versions ---------------------------------------------------


def near(value_a: float, expected_a: float) -> bool:
    """Within 1 A: the base-load estimate moves by a few tenths between decisions."""
    return abs(value_a - expected_a) <= 1.0


def checks(r: Rig, result: str) -> float:
    """The composite checks counted with ``result`` so far."""
    value = r.controller.metrics.registry.get_sample_value(
        "headroom_composite_checks_total", {"site": "t", "result": result}
    )
    return value or 0.0


VERSIONS = pytest.mark.parametrize(
    "ocpp201", [frozenset(), frozenset({0, 1})], ids=["1.6", "2.0.1"]
)


@VERSIONS
async def test_a_compliant_charger_agrees_and_is_asked_again_on_the_interval(
    ocpp201: frozenset[int],
) -> None:
    """After its first accepted setpoint a charger is asked once; it agrees, nothing is
    flagged; the next check waits for the interval (2 s here)."""
    async with rig(
        ocpp201=ocpp201, config_keys=ocpp_keys(composite_check_interval_s=2), metrics=True
    ) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: checks(r, "agrees") >= 1, 10, "a first check that agrees")
        assert checks(r, "agrees") == 1  # once, not on every command
        await until(lambda: checks(r, "agrees") >= 2, 6, "the check on the interval")
        assert r.controller.loop.noncompliant == frozenset()
        assert checks(r, "contradicts") == 0


async def test_a_rebooted_charger_is_checked_again() -> None:
    """A charger that reboots holds nothing we can assume: after its setpoint is accepted
    again it is checked again, without waiting for the 300 s interval."""
    async with rig(metrics=True) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: checks(r, "agrees") >= 1, 10, "the first check")
        await cp.reconnect(reboot=True)
        await until(lambda: checks(r, "agrees") >= 2, 10, "a check after the reboot")


@VERSIONS
async def test_a_w_only_charger_is_asked_in_w_and_agrees(ocpp201: frozenset[int]) -> None:
    """A charger that takes only W reports its composite in W (three phases at 230 V):
    read back as the same amperes, it agrees with its setpoint."""
    async with rig(ocpp201=ocpp201, quirks={0: Quirks(w_only=True)}, metrics=True) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: checks(r, "agrees") >= 1, 10, "a check that agrees")
        assert checks(r, "contradicts") == 0
        assert r.controller.loop.noncompliant == frozenset()


@VERSIONS
async def test_a_charger_stacking_wrongly_is_flagged_by_its_composite(
    ocpp201: frozenset[int],
) -> None:
    """A charger that keeps its 6 A default under our TxProfile draws less than its
    setpoint, so the measured check never notices; its composite schedule shows 6 A
    against ours, it is flagged with that reason, and its 32 A rating is reserved:
    the other car gets 63 − 1 − 10 − 32 = 20 A."""
    async with rig(
        chargers=2,
        ocpp201=ocpp201,
        quirks={0: Quirks(stacks_wrongly=True)},
        compliance_timeout_s=600,
        metrics=True,
    ) as r:
        wrong, normal = r.charge_points
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: "cp-0/1" in r.controller.loop.noncompliant, 10, "cp-0 flagged")
        await until(lambda: near(normal.offered_a(1), 20.0), 5, "the other car at 20 A")
        assert wrong.offered_a(1) == 6.0
        decision = r.controller.loop.last
        assert decision is not None
        assert "composite schedule says 6.0 A" in decision.targets["cp-0/1"].reason
        assert checks(r, "contradicts") >= 1
        assert "cp-1/1" not in r.controller.loop.noncompliant
        text = r.controller.live.entries("cp-0", 1, {"ScheduleCheck"}, 0, 10)
        assert any("composite schedule says" in e.summary for e in text)


@VERSIONS
async def test_a_charger_ignoring_profiles_is_flagged_before_the_compliance_timeout(
    ocpp201: frozenset[int],
) -> None:
    """A charger that accepts profiles and installs none reports its 32 A rating: flagged
    from its composite at once, long before the measured check's 600 s timeout."""
    async with rig(
        chargers=2,
        ocpp201=ocpp201,
        quirks={0: Quirks(ignores_profiles=True)},
        compliance_timeout_s=600,
    ) as r:
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: "cp-0/1" in r.controller.loop.noncompliant, 10, "cp-0 flagged")
        checks_ = r.controller.checks
        assert checks_ is not None
        assert "says 32.0 A" in checks_.flagged["cp-0/1"]
        await until(lambda: near(r.charge_points[1].offered_a(1), 20.0), 5, "other car at 20 A")


@VERSIONS
async def test_a_charger_without_composite_schedules_is_not_asked_again(
    ocpp201: frozenset[int],
) -> None:
    """Rejected once: the charger is marked unsupported, never flagged for it, and not
    asked again however short the interval."""
    async with rig(
        ocpp201=ocpp201,
        quirks={0: Quirks(no_composite_schedule=True)},
        config_keys=ocpp_keys(composite_check_interval_s=1),
        metrics=True,
    ) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: checks(r, "unsupported") >= 1, 10, "an unsupported answer")
        await until(lambda: near(cp.offered_a(1), 32.0), 5, "the car at 32 A")
        await until(lambda: r.controller.loop.decisions >= 10, 10, "a few more decisions")
        assert checks(r, "unsupported") == 1
        assert r.controller.loop.noncompliant == frozenset()


async def test_turned_off_no_charger_is_asked() -> None:
    """``ocpp.composite_check: false``: no checks run, so a wrongly stacking charger goes
    unnoticed (it draws less than its setpoint)."""
    async with rig(
        quirks={0: Quirks(stacks_wrongly=True)},
        config_keys=ocpp_keys(composite_check=False),
        compliance_timeout_s=600,
    ) as r:
        assert r.controller.checks is None
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: r.controller.loop.decisions >= 10, 10, "some decisions")
        assert r.controller.loop.noncompliant == frozenset()


# --- the dispatcher's rule: one call in flight per charger, decreases first ---------------


class HeldUp:
    """A charger link whose answers wait until the test lets them go."""

    def __init__(self, charger_id: str) -> None:
        self.charger_id = charger_id
        self.release = asyncio.Event()

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        await self.release.wait()
        return CommandResult(command, CommandStatus.ACCEPTED, 0.0)

    async def prepare(self) -> None:
        return None


async def test_a_check_waits_for_the_charger_and_for_every_decrease() -> None:
    """``run_alone`` starts nothing on a charger with a call in flight, nor anywhere while a
    decrease is unanswered; once both are answered it starts."""
    links = {"a": HeldUp("a"), "b": HeldUp("b")}
    dispatcher = Dispatcher(links.get, ManualClock(), failsafe_a=6.0, lease_s=60.0)
    ran: list[str] = []

    async def work(name: str) -> None:
        ran.append(name)

    target = Target("a", 1, 7, 10.0, "test")
    dispatcher.submit([Change("a/1", target, 16.0, ChangeKind.DECREASE)])
    assert not dispatcher.run_alone("a", lambda: work("a"))  # its own call in flight
    assert not dispatcher.run_alone("b", lambda: work("b"))  # a decrease in flight elsewhere
    links["a"].release.set()
    await dispatcher.drain()
    assert dispatcher.run_alone("b", lambda: work("b"))
    await dispatcher.drain()
    assert ran == ["b"]


@VERSIONS
async def test_a_charger_ignoring_its_failsafe_is_untrusted_before_any_car(
    ocpp201: frozenset[int],
) -> None:
    """The fail-safe default is checked on boot: a charger that accepts it and applies none
    reports its 32 A rating, is untrusted before any car plugs in, and its rating stays
    reserved, so the first car on the other charger gets 63 − 2 − 10 − 32 = 19 A, not 32 A."""
    async with rig(
        chargers=2,
        ocpp201=ocpp201,
        quirks={0: Quirks(ignores_profiles=True)},
        compliance_timeout_s=600,
    ) as r:
        await until(lambda: "cp-0" in r.controller.state.snapshot(0.0).untrusted, 10, "untrusted")
        await r.charge_points[1].plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: near(r.charge_points[1].offered_a(1), 19.0), 5, "other car at 19 A")
