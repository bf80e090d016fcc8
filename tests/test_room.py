"""Room for cars still settling (controller/room.py): no headroom handed out twice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.dispatch import Change, ChangeKind
from controller.room import committed_a, fit_increases
from controller.targets import Target
from policies import AllocationProblem, LimitNode
from policies.problem import SessionDemand

BASE_A = (20.0, 20.0, 20.0)


def site(*sessions: SessionDemand, feeder_a: float | None = None) -> AllocationProblem:
    """A 63 A site (1 A margin, 20 A base load), a 32 A charger per session, an optional
    feeder above charger ``b``."""
    nodes = [LimitNode("site", max_current_a=63.0, margin_a=1.0, base_load_a=BASE_A)]
    if feeder_a is not None:
        nodes.append(LimitNode("feeder", parent="site", max_current_a=feeder_a))
    for s in sessions:
        parent = "feeder" if feeder_a is not None and s.node == "b" else "site"
        nodes.append(LimitNode(s.node, parent=parent, max_current_a=32.0))
    return AllocationProblem(tuple(nodes), sessions)


def car(name: str, phases: tuple[int, ...] = (0, 1, 2)) -> SessionDemand:
    return SessionDemand(f"{name}/1", name, phases)


def increase(name: str, old_a: float, new_a: float) -> Change:
    return Change(f"{name}/1", Target(name, 1, 1, new_a, "site L1"), old_a, ChangeKind.INCREASE)


def test_a_ramping_car_counts_at_its_setpoint_not_its_draw() -> None:
    """a was given 21 A and still draws 6 A; b asks for 21 A: 42 A of room, a holds 21 of it."""
    committed = {"a/1": committed_a(21.0, 6.0, None, settling=True), "b/1": 6.0}
    assert committed["a/1"] == 21.0
    [change] = fit_increases(site(car("a"), car("b")), [increase("b", 6.0, 21.0)], committed, 0.5)
    assert change.target.limit_a == 21.0
    assert fit_increases(site(car("a"), car("b")), [increase("b", 6.0, 30.0)], committed, 0.5) == [
        Change(
            "b/1",
            Target("b", 1, 1, 21.0, "site L1 (room held by cars still settling)"),
            6.0,
            ChangeKind.INCREASE,
        )
    ]


def test_a_car_coming_down_counts_at_its_draw_until_it_follows() -> None:
    """a was told 10 A but still draws 21 A: b's increase to 32 A gets 42 − 21 = 21 A now."""
    committed = {"a/1": committed_a(10.0, 21.0, None, settling=True), "b/1": 6.0}
    [change] = fit_increases(site(car("a"), car("b")), [increase("b", 6.0, 32.0)], committed, 0.5)
    assert change.target.limit_a == 21.0
    followed = {"a/1": committed_a(10.0, 21.0, None, settling=False), "b/1": 6.0}
    [change] = fit_increases(site(car("a"), car("b")), [increase("b", 6.0, 32.0)], followed, 0.5)
    assert change.target.limit_a == 32.0


def test_an_increase_in_flight_holds_its_room() -> None:
    """A setpoint sent and not answered yet counts as if accepted."""
    assert committed_a(10.0, 8.0, 20.0, settling=False) == 20.0


def test_a_paused_car_gets_its_whole_target_or_waits() -> None:
    """From 0 A, a cut increase would be a step under the minimum or a partial start: wait."""
    committed = {"a/1": 30.0, "b/1": 0.0}
    assert fit_increases(site(car("a"), car("b")), [increase("b", 0.0, 16.0)], committed, 0.5) == []


def test_a_cut_under_the_deadband_waits() -> None:
    """Room for 0.3 A more is not worth a command."""
    committed = {"a/1": 32.0, "b/1": 9.7}
    assert fit_increases(site(car("a"), car("b")), [increase("b", 9.7, 16.0)], committed, 0.5) == []


def test_group_limits_bound_the_room_too() -> None:
    """b sits below a 20 A feeder: whatever the site allows, b gets 20 A."""
    committed = {"a/1": 6.0, "b/1": 6.0}
    problem = site(car("a"), car("b"), feeder_a=20.0)
    [change] = fit_increases(problem, [increase("b", 6.0, 32.0)], committed, 0.5)
    assert change.target.limit_a == 20.0


def test_decreases_and_renewals_pass_untouched() -> None:
    """Only increases are fitted."""
    down = Change("a/1", Target("a", 1, 1, 6.0, "site L1"), 30.0, ChangeKind.DECREASE)
    assert fit_increases(site(car("a")), [down], {"a/1": 60.0}, 0.5) == [down]


@given(
    st.lists(st.tuples(st.floats(0, 32), st.floats(0, 40), st.booleans()), min_size=1, max_size=4),
    st.lists(st.floats(0, 32), min_size=1, max_size=4),
)
def test_what_cars_may_draw_after_the_increases_stays_under_the_limit(
    cars: list[tuple[float, float, bool]], wants: list[float]
) -> None:
    """Invariant 1 for what the wires may carry: if the cars' committed currents fit, then
    after the increases are fitted, every car at the higher of its committed current and its
    new setpoint still fits (site less margin and base load, each charger's rating)."""
    names = [chr(ord("a") + i) for i in range(len(cars))]
    committed = {
        f"{n}/1": committed_a(level, draw, None, settling)
        for n, (level, draw, settling) in zip(names, cars, strict=True)
    }
    committed = {k: min(v, 32.0) for k, v in committed.items()}
    if sum(committed.values()) > 42.0:
        committed = {k: v * 42.0 / sum(committed.values()) for k, v in committed.items()}
    problem = site(*(car(n) for n in names))
    changes = [
        increase(n, committed[f"{n}/1"], min(32.0, committed[f"{n}/1"] + w))
        for n, w in zip(names, wants, strict=False)
    ]
    fitted = fit_increases(problem, changes, committed, 0.5)
    after = dict(committed)
    for c in fitted:
        after[c.key] = max(after[c.key], c.target.limit_a)
    assert sum(after.values()) <= 63.0 - 1.0 - 20.0 + 1e-6
    assert all(v <= 32.0 + 1e-9 for v in after.values())
