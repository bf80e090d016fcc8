"""The simulated EV: delayed response, onboard limit, the 6 A floor, phases, battery."""

from __future__ import annotations

import pytest

from hil.ev import EV


def test_ev_keeps_its_previous_target_until_the_delay_has_passed() -> None:
    """A new offer is followed only once it has stood for response_delay_s."""
    ev = EV(response_delay_s=2.0)
    assert ev.step(0.0, 16.0) == (0.0, 0.0, 0.0)
    assert ev.step(1.9, 16.0) == (0.0, 0.0, 0.0)
    assert ev.step(2.0, 16.0) == (16.0, 16.0, 16.0)
    assert ev.step(3.0, 10.0) == (16.0, 16.0, 16.0)  # reduction pending
    assert ev.step(5.0, 10.0) == (10.0, 10.0, 10.0)


def test_every_change_is_followed_each_after_its_delay() -> None:
    """The EV is a pure delay: offers changing faster than the delay are all followed, late."""
    ev = EV(response_delay_s=2.0)
    ev.step(0.0, 16.0)
    ev.step(1.0, 20.0)
    assert ev.step(1.9, 20.0) == (0.0, 0.0, 0.0)
    assert ev.step(2.5, 20.0) == (16.0, 16.0, 16.0)
    assert ev.step(3.0, 20.0) == (20.0, 20.0, 20.0)


def test_ev_never_draws_above_its_onboard_limit() -> None:
    """The draw is min(offered, max_current_a)."""
    ev = EV(max_current_a=16.0, response_delay_s=0.0)
    assert ev.step(0.0, 32.0) == (16.0, 16.0, 16.0)


@pytest.mark.parametrize("offered_a", [0.0, 3.0, 5.9])
def test_below_six_amps_the_ev_stops(offered_a: float) -> None:
    """IEC 61851: an offer below 6 A means no charging at all."""
    ev = EV(response_delay_s=0.0)
    assert ev.step(0.0, offered_a) == (0.0, 0.0, 0.0)
    assert ev.step(0.0, 6.0) == (6.0, 6.0, 6.0)


def test_single_phase_ev_draws_only_on_its_phase() -> None:
    """An EV on charger phase L2 only loads L2."""
    ev = EV(phases=(1,), response_delay_s=0.0)
    assert ev.step(0.0, 16.0) == (0.0, 16.0, 0.0)
    assert ev.power_w() == pytest.approx(16.0 * 230.0)


def test_energy_is_integrated_into_the_soc() -> None:
    """One hour at 16 A on three phases at 230 V adds 11.04 kWh."""
    ev = EV(battery_kwh=60.0, soc=0.3, response_delay_s=0.0)
    ev.step(0.0, 16.0)
    ev.step(3600.0, 16.0)
    assert ev.charged_wh == pytest.approx(11_040.0)
    assert ev.soc == pytest.approx(0.3 + 11.04 / 60.0)


def test_full_battery_stops_drawing() -> None:
    """The battery fills to exactly 1 and the EV then draws nothing."""
    ev = EV(battery_kwh=1.0, soc=0.99, response_delay_s=0.0)
    ev.step(0.0, 16.0)
    assert ev.step(3600.0, 16.0) == (0.0, 0.0, 0.0)
    assert ev.soc == 1.0
    assert ev.charged_wh == pytest.approx(10.0)


def test_same_inputs_same_outputs() -> None:
    """The model is deterministic: two EVs fed the same steps agree exactly."""
    steps = [(0.0, 16.0), (1.0, 16.0), (2.5, 8.0), (4.0, 8.0), (7.0, 32.0), (10.0, 32.0)]
    first, second = EV(), EV()
    assert [first.step(t, a) for t, a in steps] == [second.step(t, a) for t, a in steps]
    assert first.soc == second.soc
