"""Learning a car's phases and maximum from what it draws."""

from __future__ import annotations

from controller.learning import EvBelief, learn_phases, observe


def test_phases_follow_measured_current() -> None:
    """Phases carrying current are the car's phases; a car drawing too little teaches nothing."""
    assert learn_phases((15.8, 0.2, 0.1)) == (0,)
    assert learn_phases((10.0, 10.0, 10.0)) == (0, 1, 2)
    assert learn_phases((1.0, 0.0, None)) is None


def test_car_that_draws_less_than_offered_gets_a_lower_maximum() -> None:
    """After the settle time, a car drawing 10 A of 32 A offered is capped at 10 A + probe."""
    b = observe(EvBelief(), (10.0, 10.0, 10.0), 32.0, at=0.0, settle_s=10, probe_a=2)
    b = observe(b, (10.0, 10.0, 10.0), 32.0, at=5.0, settle_s=10, probe_a=2)
    assert b.ev_max_a is None  # still settling
    b = observe(b, (10.0, 10.0, 10.0), 32.0, at=10.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 12.0


def test_car_drawing_up_to_its_cap_is_probed_upward() -> None:
    """A car that takes everything it is offered under its cap gets the probe again."""
    b = EvBelief(phases=(0, 1, 2), ev_max_a=12.0, offered_a=12.0, offered_since=0.0)
    b = observe(b, (11.8, 11.8, 11.8), 12.0, at=20.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 14.0
    b = observe(b, (13.9, 13.9, 13.9), 12.0, at=25.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 14.0  # one probe per settle period


def test_changed_offer_restarts_the_settle_time() -> None:
    """A new offer the car may have to follow gives it time before anything is learned."""
    b = EvBelief(offered_a=32.0, offered_since=0.0)
    b = observe(b, (15.0, 15.0, 15.0), 16.0, at=50.0, settle_s=10, probe_a=2)
    assert b.ev_max_a is None
    assert b.offered_since == 50.0


def test_car_far_below_both_offers_keeps_its_settle_time() -> None:
    """A car drawing far below the old and the new offer is limited by itself either way:
    the offer changing does not make us wait again to learn it."""
    b = EvBelief(phases=(0, 1, 2), offered_a=32.0, offered_since=0.0)
    b = observe(b, (6.0, 6.0, 6.0), 20.0, at=5.0, settle_s=10, probe_a=2)
    assert b.offered_since == 0.0
    b = observe(b, (6.0, 6.0, 6.0), 20.0, at=10.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 8.0


def test_car_that_has_not_started_teaches_nothing() -> None:
    """A car slower than the charger's last one draws nothing past the settle time: it has not
    started, it does not want less (taken at 0 A + probe it was paused and never charged)."""
    b = observe(EvBelief(), (0.0, 0.0, 0.0), 9.5, at=0.0, settle_s=20, probe_a=2)
    b = observe(b, (0.0, 0.0, 0.0), 9.4, at=15.0, settle_s=20, probe_a=2)
    b = observe(b, (0.0, 0.0, 0.0), 9.4, at=21.7, settle_s=20, probe_a=2)
    assert b.ev_max_a is None


def test_settle_time_runs_from_when_a_late_car_starts() -> None:
    """A car that starts after its settle time ran out gets it again from its start."""
    b = observe(EvBelief(), (0.0, 0.0, 0.0), 32.0, at=0.0, settle_s=10, probe_a=2)
    b = observe(b, (4.0, 4.0, 4.0), 32.0, at=30.0, settle_s=10, probe_a=2)  # ramping up
    b = observe(b, (20.0, 20.0, 20.0), 32.0, at=35.0, settle_s=10, probe_a=2)
    assert b.ev_max_a is None
    b = observe(b, (20.0, 20.0, 20.0), 32.0, at=40.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 22.0


def test_car_that_charged_and_stopped_is_still_capped() -> None:
    """A car that has drawn and then stops (a full battery) still gives its share away."""
    b = observe(EvBelief(), (16.0, 16.0, 16.0), 16.0, at=0.0, settle_s=10, probe_a=2)
    b = observe(b, (0.0, 0.0, 0.0), 16.0, at=5.0, settle_s=10, probe_a=2)
    b = observe(b, (0.0, 0.0, 0.0), 16.0, at=10.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 2.0


def test_a_car_that_starts_on_time_keeps_its_settle_time() -> None:
    """A car that starts within its settle time is learned when that time, from its offer,
    has passed: no later than before."""
    b = observe(EvBelief(), (0.0, 0.0, 0.0), 32.0, at=0.0, settle_s=10, probe_a=2)
    b = observe(b, (10.0, 10.0, 10.0), 32.0, at=3.0, settle_s=10, probe_a=2)
    b = observe(b, (10.0, 10.0, 10.0), 32.0, at=10.0, settle_s=10, probe_a=2)
    assert b.ev_max_a == 12.0
