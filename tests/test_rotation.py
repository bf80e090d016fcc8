"""Rotation among paused sessions of equal weight (weighted_fair), hand-checked.

Each site has room for some minimums only: a 10 A site fits one three-phase
car at its 6 A minimum, a 16 A site two... Times are what the caller reports:
``ran`` = running_for_s, ``waited`` = paused_for_s; the problem's minimum run
and pause times are 300 s unless a test says otherwise.
"""

from __future__ import annotations

from dataclasses import replace

from policies import AllocationProblem, LimitNode, SessionDemand
from policies.verify import violations
from policies.weighted_fair import weighted_fair

PAUSED_1 = "paused: minimum not available, priority 1"


def car(
    key: str, ran: float | None = None, waited: float | None = None, weight: float = 1.0
) -> SessionDemand:
    """A three-phase car at the site that has run ``ran`` s or waited ``waited`` s."""
    return SessionDemand(key, "site", weight=weight, running_for_s=ran, paused_for_s=waited)


def running(site_a: float, *cars: SessionDemand, **times: float) -> set[str]:
    """The cars weighted_fair lets charge on a ``site_a`` site (checked against the invariants)."""
    problem = AllocationProblem((LimitNode("site", None, site_a),), cars, **times)
    answer = weighted_fair(problem)
    assert violations(problem, answer) == []
    for entry in answer.connectors.values():
        assert entry.current_a > 0 or entry.reason.startswith("paused")
    return {key for key, amps in answer.currents_a().items() if amps > 0}


def test_without_times_the_later_id_waits() -> None:
    """No times given: every car counts as just paused, so the fixed order holds."""
    assert running(10.0, car("a"), car("b")) == {"a"}


def test_a_long_wait_takes_the_turn_of_a_long_run() -> None:
    """a has charged 400 s (past 300 s), b has waited 400 s: b resumes and a yields."""
    assert running(10.0, car("a", ran=400.0), car("b", waited=400.0)) == {"b"}


def test_the_minimum_run_protects_a_car_that_just_started() -> None:
    """a has charged only 100 s: b, though it has waited 400 s, waits on."""
    assert running(10.0, car("a", ran=100.0), car("b", waited=400.0)) == {"a"}


def test_the_minimum_pause_keeps_a_car_that_just_paused_paused() -> None:
    """b paused 100 s ago: a (charged 400 s) keeps charging, no flapping back."""
    assert running(10.0, car("a", ran=400.0), car("b", waited=100.0)) == {"a"}


def test_the_longest_run_yields_first() -> None:
    """Room for two of three: a ran 900 s, b ran 400 s, c waited 600 s: a yields to c."""
    cars = (car("a", ran=900.0), car("b", ran=400.0), car("c", waited=600.0))
    assert running(16.0, *cars) == {"b", "c"}


def test_the_longest_wait_resumes_first() -> None:
    """Room for one of three: a ran 900 s; b waited 400 s, c waited 700 s: a yields, and of
    the two that waited past 300 s the longer wait, c, takes the place."""
    cars = (car("a", ran=900.0), car("b", waited=400.0), car("c", waited=700.0))
    assert running(10.0, *cars) == {"c"}


def test_priority_comes_before_turns() -> None:
    """A weight-2 car that has charged 900 s keeps charging; the weight-1 car that has
    waited 900 s waits on."""
    assert running(10.0, car("a", ran=900.0, weight=2.0), car("b", waited=900.0)) == {"a"}


def test_minimum_times_come_from_the_problem() -> None:
    """With a 60 s minimum run, a car that has charged 100 s yields to one waiting 400 s;
    with a 30 s minimum pause, a car that has waited 40 s takes the turn of one that has
    charged 400 s (with the default 300 s it would not)."""
    assert running(10.0, car("a", ran=100.0), car("b", waited=400.0), min_run_s=60.0) == {"b"}
    assert running(10.0, car("a", ran=400.0), car("b", waited=40.0), min_pause_s=30.0) == {"b"}
    assert running(10.0, car("a", ran=400.0), car("b", waited=40.0)) == {"a"}


def test_a_rotation_over_ticks_lets_every_car_charge() -> None:
    """Three equal cars, room for two, decisions every 100 s with the times fed back as a
    caller would: within 1,500 s every car has charged, and no car was paused before it
    had charged 300 s."""
    state = {"a": ("run", 0.0), "b": ("run", 0.0), "c": ("wait", 0.0)}
    charged: set[str] = set()
    for _ in range(15):
        cars = [car(k, ran=t) if m == "run" else car(k, waited=t) for k, (m, t) in state.items()]
        now = running(12.0, *cars)
        charged |= now
        for key, (mode, spent_s) in state.items():
            runs = key in now
            if mode == "run" and not runs:
                assert spent_s >= 300.0, f"{key} paused after charging only {spent_s} s"
            kept = runs == (mode == "run")
            state[key] = ("run" if runs else "wait", spent_s + 100.0 if kept else 100.0)
    assert charged == {"a", "b", "c"}


def test_times_do_not_change_who_runs_when_every_minimum_fits() -> None:
    """On a site with room for all, times change nothing."""
    cars = (car("a", ran=900.0), car("b", waited=900.0))
    roomy = AllocationProblem((LimitNode("site", None, 63.0),), cars)
    plain = replace(roomy, sessions=(car("a"), car("b")))
    assert weighted_fair(roomy).currents_a() == weighted_fair(plain).currents_a()
