"""Sessions whose charger holds no limit we can count on are planned at the charger's rating."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.decide import decide
from controller.errors import ConfigError
from controller.untrusted import NO_LIMIT_YET, reserve_idle, unbounded
from policies import get_policy
from policies.verify import violations
from tests.helpers import session, site_config, snapshot

CONFIG = site_config(chargers=3)
FAIR = get_policy("weighted_fair")


def test_a_session_before_its_charger_accepted_any_limit_is_unbounded() -> None:
    """A car that plugs in while its charger's fail-safe default is still on its way may be
    offered the rating; once the fail-safe or its own setpoint is accepted it is bounded."""
    snap = replace(snapshot([session(0), session(1)]), failsafe_pending=frozenset({"cp-0"}))
    assert unbounded(snap, {}) == {"cp-0/1": NO_LIMIT_YET}
    assert unbounded(snap, {"cp-0/1": 10.0}) == {}
    assert unbounded(replace(snap, failsafe_pending=frozenset()), {}) == {}


def test_decide_reserves_the_rating_of_a_charger_without_a_limit() -> None:
    """63 A site, 10 A base: cp-0 may draw 32 A, so cp-1 and cp-2 share 63-2-10-32 = 19 A on
    the phases cp-0 loads, and cp-0 is told the fail-safe current."""
    sessions = [session(i) for i in range(3)]
    snap = replace(snapshot(sessions), failsafe_pending=frozenset({"cp-0"}))
    decision = decide(snap, CONFIG, FAIR, {})
    assert decision.targets["cp-0/1"].limit_a == 6.0
    assert "no limit acknowledged" in decision.targets["cp-0/1"].reason
    assert decision.targets["cp-1/1"].limit_a + decision.targets["cp-2/1"].limit_a <= 19.0
    assert decision.base_load_a == (42.0, 42.0, 42.0)
    assert violations(decision.problem, decision.allocation) == []


def test_an_untrusted_idle_charger_keeps_its_rating_reserved() -> None:
    """A charger that does not apply its fail-safe default lets the next car draw its rating
    at once, so its rating stays reserved while no car is plugged in; a session on it is
    reserved once, not twice."""
    snap = replace(snapshot([session(1)]), untrusted={"cp-0": "composite says 32 A"})
    assert reserve_idle(snap, CONFIG, (10.0, 10.0, 10.0), set()) == (42.0, 42.0, 42.0)
    assert reserve_idle(snap, CONFIG, (10.0, 10.0, 10.0), {"cp-0"}) == (10.0, 10.0, 10.0)
    decision = decide(snap, CONFIG, FAIR, {})
    assert decision.base_load_a == (42.0, 42.0, 42.0)
    assert decision.targets["cp-1/1"].limit_a == 19.0
    busy = replace(snapshot([session(0), session(1)]), untrusted={"cp-0": "composite says 32 A"})
    decision = decide(busy, CONFIG, FAIR, {"cp-0/1": 6.0})
    assert decision.base_load_a == (42.0, 42.0, 42.0)
    assert decision.targets["cp-0/1"].reason.startswith("non-compliant: charger untrusted")


def test_a_declared_building_peak_is_planned_as_the_least_base_load() -> None:
    """With ``site.building_peak_a`` 20 A, a measured 10 A base load is planned as 20 A, so
    the building can step to its peak without the site going over: three cars share
    63 − 2 − 20 = 41 A; a base load above the peak is planned as measured."""
    config = site_config(chargers=3, building_peak_a=20)
    decision = decide(snapshot([session(i) for i in range(3)]), config, FAIR, {})
    assert decision.base_load_a == (20.0, 20.0, 20.0)
    assert sum(t.limit_a for t in decision.targets.values()) <= 41.0
    high = snapshot([session(0)], meter_a=(30.0, 10.0, 10.0))
    assert decide(high, config, FAIR, {}).base_load_a == (30.0, 20.0, 20.0)


def test_a_building_peak_that_leaves_no_room_is_refused() -> None:
    """A peak at or above the limit less the margin would never let a car charge."""
    with pytest.raises(ConfigError, match="building_peak_a"):
        site_config(building_peak_a=[61, 0, 0])
