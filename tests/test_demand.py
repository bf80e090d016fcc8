"""The demand-charge window: the billed 15-minute average held under its target."""

from __future__ import annotations

import pytest

from controller.decide import decide
from controller.demand import DemandWindow
from policies import get_policy
from tests.helpers import session, site_config, snapshot

T0 = 1_800_000_000.0  # an epoch second on a 15-minute boundary
assert T0 % 900 == 0


def test_window_starts_on_the_clock() -> None:
    """Windows are aligned to :00, :15, :30, :45."""
    window = DemandWindow()
    assert window.window_start(T0 + 899.0) == T0
    assert window.window_start(T0 + 900.0) == T0 + 900


def test_budget_left_is_spread_over_the_rest_of_the_window() -> None:
    """Drawing 60 kW for the first 5 minutes against a 40 kW target leaves 30 kW for 10 minutes."""
    window = DemandWindow()
    for t in range(0, 301):
        window.add(T0 + t, 60_000.0)
    assert window.energy_j == pytest.approx(60_000.0 * 300)
    assert window.allowed_power_w(T0 + 300, 40_000.0) == pytest.approx(30_000.0)


def test_a_new_window_starts_with_a_full_budget() -> None:
    """What was drawn in the last window does not count in the next one."""
    window = DemandWindow()
    window.add(T0 + 899.0, 80_000.0)
    window.add(T0 + 900.5, 80_000.0)
    assert window.energy_j == pytest.approx(80_000.0 * 0.5)
    assert window.allowed_power_w(T0 + 900.5, 40_000.0) == pytest.approx(
        (40_000.0 * 900 - 40_000.0) / 899.5
    )


def test_overspent_window_allows_nothing() -> None:
    """A budget already spent gives 0 W, never a negative limit."""
    window = DemandWindow()
    for t in range(0, 600):
        window.add(T0 + t, 100_000.0)
    assert window.allowed_power_w(T0 + 600, 40_000.0) == 0.0


def test_start_mid_window_counts_the_unknown_part_at_the_target() -> None:
    """After a restart 10 minutes into a window, the first 10 minutes count at the target."""
    window = DemandWindow()
    window.add(T0 + 600.0, 20_000.0)
    allowed = window.allowed_power_w(T0 + 600.0, 40_000.0)
    assert allowed == pytest.approx(40_000.0 * 300 / 300)


def test_demand_window_binds_and_says_so() -> None:
    """With 10 kW left on average, two 3-phase sessions share it and name the demand window."""
    config = site_config(chargers=2, demand_target_kw=40)
    decision = decide(
        snapshot([session(0), session(1)], meter_a=(5.0, 5.0, 5.0)),
        config,
        get_policy("weighted_fair"),
        {},
        demand_cap_w=5.0 * 3 * 230 + 2 * 3 * 230 * 7.0 + 3 * 2.0 * 230,
    )
    targets = [t.limit_a for t in decision.targets.values()]
    assert targets == [7.0, 7.0]
    assert {t.reason for t in decision.targets.values()} == {"demand window power"}


async def test_the_loop_applies_the_demand_target() -> None:
    """A running controller with a 10 kW demand target keeps a 32 A car near that average."""
    from hil.ev import EV
    from tests.rig import rig, until

    async with rig(site_keys={"demand_target_kw": 10}) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        loop = r.controller.loop
        await until(lambda: loop.last is not None and bool(loop.last.targets), 5, "a target")
        # 10 kW less the 10 A × 3 × 230 V base load and the margin leaves about 1.2 kW:
        # below a 3-phase car's 6 A minimum (4.1 kW), so it waits.
        await until(lambda: cp.offered_a(1) == 0.0, 5, "car paused by the demand window")
        assert loop.last is not None
        assert loop.last.targets["cp-0/1"].reason.startswith("paused")
